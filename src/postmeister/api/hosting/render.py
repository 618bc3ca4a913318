"""Response documents of the hosting dialect: their models and the pure renderers.

The pydantic models are the dialect's published OpenAPI schema for responses; the renderers
turn domain objects into them and nothing else (no query, no rule).

Where secrets appear: a password the server generated — for a mailbox created without one,
by `POST /email-addresses/{id}/password`, and every new application password — is returned
once, as `data.attributes.password` of that one response. No other response contains it,
and it is not stored in a readable form. (Every API response is sent with
`Cache-Control: no-store`, see `api/transport.py`.)

Links are relative references (`/email-addresses/42`), correct behind any proxy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from postmeister.api.hosting.requests import ListQuery
from postmeister.domain.addresses.service import ANTISPAM_POLICIES, AddressPage, Kind
from postmeister.domain.autoresponders.service import schedule_of
from postmeister.models import Address, AppPassword

BASE_PATH: Final = "/email-addresses"
JSONAPI_VERSION: Final = "1.1"

# ---------------------------------------------------------------------------- response models


class JsonApiObject(BaseModel):
    version: Literal["1.1"]


class SelfLink(BaseModel):
    self_: str = Field(alias="self")


class PageLinks(BaseModel):
    self_: str = Field(alias="self")
    first: str
    prev: str | None = Field(description="null on the first page")
    next: str | None = Field(description="null on the last page")


class Quota(BaseModel):
    limit: int | None = Field(description="bytes; null: no limit")
    usage: int = Field(description="bytes in use, as last reported by the mail server")


class AutoresponderState(BaseModel):
    text: str
    active: bool = Field(description="whether it answers now")
    activates: dt.date | None = Field(description="pending automatic activation, if any")
    expires: dt.date | None = Field(description="pending automatic deactivation, if any")


class EmailAddressAttributes(BaseModel):
    address: str
    address_type: Kind
    domain: str
    package_id: int
    description: str | None
    antispam: str = Field(json_schema_extra={"enum": list(ANTISPAM_POLICIES)})
    forward_to: list[str]
    quota: Quota | None = Field(default=None, description="mailboxes only")
    autoresponder: AutoresponderState | None = Field(default=None, description="mailboxes only")
    subaddress_extension: bool | None = Field(
        default=None,
        description="mailboxes only: mail to name+anything@domain is delivered here too",
    )
    password: str | None = Field(
        default=None,
        description="only in the one response that generated it; never shown again",
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class EmailAddressResource(BaseModel):
    type: Literal["email-address"]
    id: str
    attributes: EmailAddressAttributes
    links: SelfLink


class EmailAddressDocument(BaseModel):
    jsonapi: JsonApiObject
    data: EmailAddressResource
    links: SelfLink


class EmailAddressCollectionDocument(BaseModel):
    jsonapi: JsonApiObject
    data: list[EmailAddressResource]
    links: PageLinks


class ApplicationPasswordAttributes(BaseModel):
    device: str
    application: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    last_used_ip: str | None
    password: str | None = Field(
        default=None,
        description="only in the response that created it; never shown again",
    )


class ApplicationPasswordResource(BaseModel):
    type: Literal["application-password"]
    id: str
    attributes: ApplicationPasswordAttributes
    links: SelfLink


class ApplicationPasswordDocument(BaseModel):
    jsonapi: JsonApiObject
    data: ApplicationPasswordResource
    links: SelfLink


class ApplicationPasswordCollectionDocument(BaseModel):
    jsonapi: JsonApiObject
    data: list[ApplicationPasswordResource]
    links: SelfLink


# ---------------------------------------------------------------------------- renderers

Body = dict[str, Any]
VERSION = JsonApiObject(version=JSONAPI_VERSION)


def dump(model: BaseModel) -> Body:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _link(path: str) -> SelfLink:
    return SelfLink.model_validate({"self": path})


def email_address_path(address_id: int) -> str:
    return f"{BASE_PATH}/{address_id}"


def app_password_path(address_id: int, app_password_id: int) -> str:
    return f"{BASE_PATH}/{address_id}/application-passwords/{app_password_id}"


def _email_address(address: Address, today: dt.date, password: str | None) -> EmailAddressResource:
    values: dict[str, Any] = {
        "address": f"{address.local_part}@{address.domain.display_name}",
        "address_type": address.kind,
        "domain": address.domain.display_name,
        "package_id": address.domain.package_id,
        "description": address.description,
        "antispam": address.antispam,
        "forward_to": [target.target for target in address.forward_targets],
        "created_at": address.created_at,
        "updated_at": address.updated_at,
    }
    if address.kind == "mailbox":
        values["subaddress_extension"] = address.subaddress_extension
        values["quota"] = Quota(
            limit=address.quota_bytes, usage=address.usage.bytes if address.usage else 0
        )
        schedule = schedule_of(address.autoresponder).settled(today)
        values["autoresponder"] = AutoresponderState(
            text=address.autoresponder.text if address.autoresponder else "",
            active=schedule.answering(today),
            activates=schedule.activates,
            expires=schedule.expires,
        )
    if password is not None:
        values["password"] = password
    return EmailAddressResource(
        type="email-address",
        id=str(address.id),
        attributes=EmailAddressAttributes(**values),
        links=_link(email_address_path(address.id)),
    )


def email_address_document(
    address: Address, *, today: dt.date, password: str | None = None
) -> Body:
    """One address. `today` (local day) decides what the autoresponder shows; `password`
    is a password the server just generated, shown this once."""
    return dump(
        EmailAddressDocument(
            jsonapi=VERSION,
            data=_email_address(address, today, password),
            links=_link(email_address_path(address.id)),
        )
    )


def page_link(
    base: str,
    filters: Mapping[str, Any],
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
) -> str:
    """A relative link to one page of a list: its filters (those not None), the page size
    and at most one cursor. Every list of the dialect links its pages with this."""
    parameters = [
        (f"filter[{name}]", _query_value(value))
        for name, value in filters.items()
        if value is not None
    ]
    parameters.append(("page[size]", str(size)))
    if after is not None:
        parameters.append(("page[after]", str(after)))
    if before is not None:
        parameters.append(("page[before]", str(before)))
    return f"{base}?{urlencode(parameters, quote_via=quote, safe='@')}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _list_link(query: ListQuery, *, after: int | None = None, before: int | None = None) -> str:
    filters = {"package_id": query.package_id, "address": query.address, "domain": query.domain}
    return page_link(BASE_PATH, filters, size=query.size, after=after, before=before)


def email_address_collection(page: AddressPage, query: ListQuery, *, today: dt.date) -> Body:
    """One keyset page, with `next`/`prev` links that carry the filters and the page size."""
    items = page.addresses
    links = PageLinks.model_validate(
        {
            "self": _list_link(query, after=query.after, before=query.before),
            "first": _list_link(query),
            "prev": _list_link(query, before=items[0].id) if items and page.more_before else None,
            "next": _list_link(query, after=items[-1].id) if items and page.more_after else None,
        }
    )
    return dump(
        EmailAddressCollectionDocument(
            jsonapi=VERSION,
            data=[_email_address(address, today, None) for address in items],
            links=links,
        )
    )


def _app_password(app_password: AppPassword, secret: str | None) -> ApplicationPasswordResource:
    values: dict[str, Any] = {
        "device": app_password.device,
        "application": app_password.application,
        "created_at": app_password.created_at,
        "last_used_at": app_password.last_used_at,
        "last_used_ip": app_password.last_used_ip,
    }
    if secret is not None:
        values["password"] = secret
    return ApplicationPasswordResource(
        type="application-password",
        id=str(app_password.id),
        attributes=ApplicationPasswordAttributes(**values),
        links=_link(app_password_path(app_password.address_id, app_password.id)),
    )


def app_password_document(app_password: AppPassword, *, secret: str | None = None) -> Body:
    return dump(
        ApplicationPasswordDocument(
            jsonapi=VERSION,
            data=_app_password(app_password, secret),
            links=_link(app_password_path(app_password.address_id, app_password.id)),
        )
    )


def app_password_collection(address_id: int, app_passwords: list[AppPassword]) -> Body:
    """Every application password of a mailbox, without secrets (the service caps them)."""
    return dump(
        ApplicationPasswordCollectionDocument(
            jsonapi=VERSION,
            data=[_app_password(item, None) for item in app_passwords],
            links=_link(f"{email_address_path(address_id)}/application-passwords"),
        )
    )

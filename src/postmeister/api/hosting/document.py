"""JSON:API documents of the hosting dialect: request models, response models, renderers.

Everything here is pure: request documents become service inputs, domain objects become
response documents. The pydantic models are also the dialect's OpenAPI schema, so the
published document and the code cannot drift apart. Attribute *values* are validated by the
services, not here (one place for every rule); these models check only JSON types and the
document's structure.

Where secrets appear: a password the server generated — for a mailbox created without one,
by `POST /email-addresses/{id}/password`, and every new application password — is returned
once, as `data.attributes.password` of that one response. No other response contains it,
and it is not stored in a readable form.

Links are relative references (`/email-addresses/42`), correct behind any proxy.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlencode

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from postmeister.domain.addresses.service import (
    ANTISPAM_POLICIES,
    AddressChanges,
    AddressPage,
    AutoresponderChanges,
    Kind,
    NewAddress,
    split_address,
)
from postmeister.domain.autoresponders.service import schedule_of
from postmeister.errors import NotFound
from postmeister.models import Address, AppPassword

EMAIL_ADDRESS: Final = "email-address"
APPLICATION_PASSWORD: Final = "application-password"  # noqa: S105 - a type name
BASE_PATH: Final = "/email-addresses"
JSONAPI_VERSION: Final = "1.1"
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_ID: Final = 2**31 - 1  # ids are 32-bit integers in the database

# ---------------------------------------------------------------------------- request faults


class InvalidQueryParameter(Exception):
    """A query parameter is unknown, malformed or contradicts another one (400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class DocumentMismatch(Exception):
    """The document's `type` or `id` does not match the endpoint (409 in JSON:API)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


def parse_id(text: str, kind: str = EMAIL_ADDRESS) -> int:
    """A resource id from a URL: the canonical decimal form only, else `NotFound`."""
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()) or text[0] == "0":
        raise NotFound(kind, text)
    value = int(text)
    if value > MAX_ID:
        raise NotFound(kind, text)
    return value


def check_id(document_id: str, url_id: str) -> None:
    if document_id != url_id:
        raise DocumentMismatch(
            "/data/id",
            f"the id in the document ({document_id!r}) differs from the URL's ({url_id!r})",
        )


# ---------------------------------------------------------------------------- request models

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError(
            "iso_date", "must be a date in ISO 8601 form YYYY-MM-DD, such as 2026-03-05"
        )
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise PydanticCustomError("iso_date", "is not a valid calendar date") from exc


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Members = dict[str, Any]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(description: str, **extra: Any) -> Any:
    """An attribute that may be left out (then it stays unchanged) but not set to null
    unless its type allows it; the schema shows no default, since there is none."""
    schema_extra: dict[str, Any] = dict(extra)

    def _extra(schema: dict[str, Any]) -> None:
        _drop_default(schema)
        schema.update(schema_extra)

    return Field(default=None, description=description, json_schema_extra=_extra)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ANTISPAM_DESCRIPTION = (
    "spam policy: reject (at SMTP time), junk-folder (mailboxes only), subject-rewrite or none"
)


class EmailAddressCreateAttributes(_Strict):
    address: StrictStr = Field(
        description="the new address; must not exist, its domain must be one of yours",
        examples=["postfach@beispielkunde.info"],
    )
    address_type: Kind = Field(description="mailbox (stores mail) or forward (only forwards)")
    description: StrictStr | None = Field(default=None, description="free text; null for none")
    antispam: StrictStr = Field(
        default="reject",
        description=_ANTISPAM_DESCRIPTION,
        json_schema_extra={"enum": list(ANTISPAM_POLICIES)},
    )
    forward_to: list[StrictStr] = Field(
        default_factory=list,
        description="addresses every message is forwarded to; required for forwards",
    )
    password: StrictStr | None = Field(
        default=None,
        description=(
            "mailboxes only; leave out (recommended) to have a strong password generated "
            "and returned once as data.attributes.password of the response"
        ),
    )
    quota: QuotaWrite | None = Field(
        default=None, description="mailboxes only: {limit: bytes or null}; default no limit"
    )


class QuotaWrite(_Strict):
    limit: StrictInt | None = Field(description="storage limit in bytes; null: no limit")


class EmailAddressCreateResource(_Strict):
    type: Literal["email-address"]
    attributes: EmailAddressCreateAttributes
    meta: Members | None = None


class EmailAddressCreateDocument(_Strict):
    data: EmailAddressCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


class AutoresponderPatch(_Strict):
    text: StrictStr = _optional("the reply text")
    active: StrictBool = _optional("switch on or off now; cancels a pending activation date")
    activates: IsoDate | None = _optional(
        "switch on shortly after 00:00 (configured zone) on this day; null cancels it"
    )
    expires: IsoDate | None = _optional(
        "switch off shortly after 00:00 (configured zone) on this day; null cancels it"
    )


class EmailAddressPatchAttributes(_Strict):
    description: StrictStr | None = _optional("free text; null removes it")
    antispam: StrictStr = _optional(_ANTISPAM_DESCRIPTION, enum=list(ANTISPAM_POLICIES))
    forward_to: list[StrictStr] = _optional("replaces the whole list of forward targets")
    password: StrictStr = _optional("mailboxes only: a new password meeting the policy")
    quota: QuotaWrite = _optional("mailboxes only: {limit: bytes or null}")
    autoresponder: AutoresponderPatch = _optional(
        "mailboxes only: any of text, active, activates, expires"
    )


class EmailAddressPatchResource(_Strict):
    type: Literal["email-address"]
    id: StrictStr = Field(description="must equal the id in the URL")
    attributes: EmailAddressPatchAttributes = Field(
        default_factory=EmailAddressPatchAttributes,
        description="the attributes to change; all are applied or none",
    )
    meta: Members | None = None


class EmailAddressPatchDocument(_Strict):
    data: EmailAddressPatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


class ApplicationPasswordCreateAttributes(_Strict):
    device: StrictStr = Field(description="free text, not empty", examples=["Mobiltelefon"])
    application: StrictStr = Field(description="free text, not empty", examples=["Mail"])


class ApplicationPasswordCreateResource(_Strict):
    type: Literal["application-password"]
    attributes: ApplicationPasswordCreateAttributes
    meta: Members | None = None


class ApplicationPasswordCreateDocument(_Strict):
    data: ApplicationPasswordCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


# ---------------------------------------------------------------------------- request → service


def new_address(attributes: EmailAddressCreateAttributes) -> NewAddress:
    local_part, domain = split_address(attributes.address)
    return NewAddress(
        local_part=local_part,
        domain=domain,
        kind=attributes.address_type,
        description=attributes.description,
        antispam=attributes.antispam,
        forward_to=attributes.forward_to,
        password=attributes.password,
        quota_bytes=attributes.quota.limit if attributes.quota else None,
    )


def address_changes(attributes: EmailAddressPatchAttributes) -> AddressChanges:
    """Only the attributes present in the document; the others stay as they are."""
    given = attributes.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(attributes, name)
        for name in ("description", "antispam", "forward_to", "password")
        if name in given
    }
    if "quota" in given:
        changes["quota_bytes"] = attributes.quota.limit
    if "autoresponder" in given:
        responder = attributes.autoresponder
        changes["autoresponder"] = AutoresponderChanges(
            **{name: getattr(responder, name) for name in responder.model_fields_set}
        )
    return AddressChanges(**changes)


@dataclass(frozen=True)
class ListQuery:
    """The list request, canonical: every filter once, at most one cursor."""

    size: int = DEFAULT_PAGE_SIZE
    after: int | None = None
    before: int | None = None
    package_id: int | None = None
    address: str | None = None
    domain: str | None = None


def list_query(
    *,
    size: int,
    after: int | None,
    before: int | None,
    filters: dict[str, tuple[Any, Any]],
) -> ListQuery:
    """`filters` maps each filter name to (filter[name] value, bare name value)."""
    if after is not None and before is not None:
        raise InvalidQueryParameter("page[before]", "use page[after] or page[before], not both")
    chosen: dict[str, Any] = {}
    for name, (bracketed, bare) in filters.items():
        if bracketed is not None and bare is not None and bracketed != bare:
            raise InvalidQueryParameter(name, f"differs from filter[{name}]; give one of them")
        chosen[name] = bracketed if bracketed is not None else bare
    return ListQuery(size=size, after=after, before=before, **chosen)


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


class ErrorSource(BaseModel):
    pointer: str | None = Field(default=None, description="JSON pointer into the request")
    parameter: str | None = Field(default=None, description="the query parameter at fault")


class ErrorObject(BaseModel):
    status: str = Field(description="the HTTP status code, as a string")
    code: str = Field(description="stable name of the rule or fault, e.g. min_length")
    title: str
    detail: str
    source: ErrorSource | None = None


class ErrorDocument(BaseModel):
    jsonapi: JsonApiObject
    errors: list[ErrorObject]


# ---------------------------------------------------------------------------- renderers

Body = dict[str, Any]
_VERSION = JsonApiObject(version="1.1")


def _dump(model: BaseModel) -> Body:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _link(path: str) -> SelfLink:
    return SelfLink.model_validate({"self": path})


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; they are stored in UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


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
        "created_at": _utc(address.created_at),
        "updated_at": _utc(address.updated_at),
    }
    if address.kind == "mailbox":
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
    return _dump(
        EmailAddressDocument(
            jsonapi=_VERSION,
            data=_email_address(address, today, password),
            links=_link(email_address_path(address.id)),
        )
    )


def _list_link(query: ListQuery, *, after: int | None = None, before: int | None = None) -> str:
    parameters: list[tuple[str, str]] = [
        (f"filter[{name}]", str(value))
        for name, value in (
            ("package_id", query.package_id),
            ("address", query.address),
            ("domain", query.domain),
        )
        if value is not None
    ]
    parameters.append(("page[size]", str(query.size)))
    if after is not None:
        parameters.append(("page[after]", str(after)))
    if before is not None:
        parameters.append(("page[before]", str(before)))
    return f"{BASE_PATH}?{urlencode(parameters, quote_via=quote, safe='@')}"


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
    return _dump(
        EmailAddressCollectionDocument(
            jsonapi=_VERSION,
            data=[_email_address(address, today, None) for address in items],
            links=links,
        )
    )


def _app_password(app_password: AppPassword, secret: str | None) -> ApplicationPasswordResource:
    values: dict[str, Any] = {
        "device": app_password.device,
        "application": app_password.application,
        "created_at": _utc(app_password.created_at),
        "last_used_at": _utc(app_password.last_used_at) if app_password.last_used_at else None,
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
    return _dump(
        ApplicationPasswordDocument(
            jsonapi=_VERSION,
            data=_app_password(app_password, secret),
            links=_link(app_password_path(app_password.address_id, app_password.id)),
        )
    )


def app_password_collection(address_id: int, app_passwords: list[AppPassword]) -> Body:
    """Every application password of a mailbox, without secrets (the service caps them)."""
    return _dump(
        ApplicationPasswordCollectionDocument(
            jsonapi=_VERSION,
            data=[_app_password(item, None) for item in app_passwords],
            links=_link(f"{email_address_path(address_id)}/application-passwords"),
        )
    )


def error_document(errors: list[ErrorObject]) -> Body:
    return _dump(ErrorDocument(jsonapi=_VERSION, errors=errors))

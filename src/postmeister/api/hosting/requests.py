"""Request documents of the hosting dialect, and their translation into service inputs.

The pydantic models are the dialect's published OpenAPI schema for requests, so the document
and the code cannot drift apart. They check only JSON types and the document's structure;
attribute *values* are validated by the services (one place for every rule). Everything here
is pure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

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

from postmeister.api.errors import DocumentMismatch, InvalidQueryParameter
from postmeister.domain.addresses.service import (
    ANTISPAM_POLICIES,
    AddressChanges,
    AutoresponderChanges,
    Kind,
    NewAddress,
    split_address,
)
from postmeister.errors import NotFound

EMAIL_ADDRESS: Final = "email-address"
APPLICATION_PASSWORD: Final = "application-password"  # noqa: S105 - a type name
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_ID: Final = 2**31 - 1  # ids are 32-bit integers in the database

# ---------------------------------------------------------------------------- ids


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
    subaddress_extension: StrictBool = Field(
        default=False,
        description="mailboxes only: also deliver mail to name+anything@domain here",
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
    subaddress_extension: StrictBool = _optional(
        "mailboxes only: also deliver mail to name+anything@domain here"
    )
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
        subaddress_extension=attributes.subaddress_extension,
    )


def address_changes(attributes: EmailAddressPatchAttributes) -> AddressChanges:
    """Only the attributes present in the document; the others stay as they are."""
    given = attributes.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(attributes, name)
        for name in ("description", "antispam", "forward_to", "password", "subaddress_extension")
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

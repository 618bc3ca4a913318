"""Forms → the services' own inputs (`NewAddress`, `AddressChanges`, `TokenRequest`, ...).
Parsing only: what a field must be is decided by the services, which report every broken
rule by field."""

from __future__ import annotations

import datetime as dt

from starlette.datastructures import FormData

from postmeister.domain.addresses.schemas import (
    UNSET,
    AddressChanges,
    AutoresponderChanges,
    Kind,
    Maybe,
    NewAddress,
)
from postmeister.domain.packages.service import LIMITS
from postmeister.domain.tokens.service import TokenRequest
from postmeister.errors import FieldProblem, InvalidInput
from postmeister.models import Address, Autoresponder

MIB = 2**20


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def optional_text(form: FormData, name: str) -> str | None:
    value = text(form, name).strip()
    return value or None


def lines(form: FormData, name: str) -> list[str]:
    return [line.strip() for line in text(form, name).replace(",", "\n").splitlines()
            if line.strip()]  # fmt: skip


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("on", "true", "1")


def _quota(form: FormData, problems: list[FieldProblem]) -> int | None:
    raw = text(form, "quota_mib").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        problems.append(FieldProblem("quota", "a whole number of MiB", "format"))
        return None
    return int(raw) * MIB


def _date(form: FormData, name: str, problems: list[FieldProblem]) -> dt.date | None:
    raw = text(form, name).strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(FieldProblem(f"autoresponder.{name}", "a date such as 2026-12-24",
                                     "format"))  # fmt: skip
        return None


def new_address(form: FormData, *, domain: str) -> NewAddress:
    problems: list[FieldProblem] = []
    kind: Kind = "forward" if text(form, "kind") == "forward" else "mailbox"
    quota = _quota(form, problems) if kind == "mailbox" else None
    if problems:
        raise InvalidInput(problems)
    password = text(form, "password") if kind == "mailbox" else ""
    return NewAddress(
        local_part=text(form, "local_part").strip(),
        domain=domain,
        kind=kind,
        description=optional_text(form, "description"),
        antispam=text(form, "antispam") or "reject",
        forward_to=lines(form, "forward_to"),
        password=password or None,
        quota_bytes=quota,
    )


def autoresponder(
    form: FormData, problems: list[FieldProblem], current: Autoresponder | None
) -> AutoresponderChanges:
    """The autoresponder fields; those equal to what is stored stay UNSET, so that saving
    a form unchanged never re-judges a date that has since passed."""
    stored_text, stored_active, stored_activates, stored_expires = (
        (current.text, current.active, current.activates, current.expires)
        if current is not None
        else ("", False, None, None)
    )
    body = text(form, "autoresponder_text").replace("\r\n", "\n")
    active = checked(form, "autoresponder_active")
    activates = _date(form, "activates", problems)
    expires = _date(form, "expires", problems)
    return AutoresponderChanges(
        text=UNSET if body == stored_text else body,
        active=UNSET if active == stored_active else active,
        activates=UNSET if activates == stored_activates else activates,
        expires=UNSET if expires == stored_expires else expires,
    )


def address_changes(form: FormData, address: Address) -> AddressChanges:
    """The edit form of an address: every field it shows is set (a form sends them all)."""
    problems: list[FieldProblem] = []
    quota: Maybe[int | None] = UNSET
    responder: Maybe[AutoresponderChanges] = UNSET
    if address.kind == "mailbox":
        quota = _quota(form, problems)
        responder = autoresponder(form, problems, address.autoresponder)
    if problems:
        raise InvalidInput(problems)
    return AddressChanges(
        description=optional_text(form, "description"),
        antispam=text(form, "antispam") or "reject",
        forward_to=lines(form, "forward_to"),
        quota_bytes=quota,
        autoresponder=responder,
    )


def mailbox_settings(form: FormData, address: Address) -> AddressChanges:
    """What a mailbox owner may change: antispam and the autoresponder."""
    problems: list[FieldProblem] = []
    responder = autoresponder(form, problems, address.autoresponder)
    if problems:
        raise InvalidInput(problems)
    return AddressChanges(antispam=text(form, "antispam") or "reject", autoresponder=responder)


def checked_values(form: FormData, name: str) -> tuple[str, ...]:
    """Every value of a repeated field (a group of checkboxes)."""
    return tuple(v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip())


def typed_values(form: FormData, name: str) -> tuple[str, ...]:
    """The values typed into a text area, one per line or separated by commas."""
    return tuple(v.strip() for v in text(form, name).replace(",", "\n").splitlines() if v.strip())


def optional_number(form: FormData, name: str, problems: list[FieldProblem]) -> int | None:
    """A whole number field; empty is None (the service reads None as its own meaning)."""
    raw = text(form, name).strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 19:
        problems.append(FieldProblem(name, "a whole number", "format"))
        return None
    return int(raw)


def token_request(form: FormData, *, admin: bool) -> TokenRequest:
    """The token form. The expiry is a date: the token stops at the start of that day (UTC).
    Only an admin's form names the customer (or asks for an admin token)."""
    problems: list[FieldProblem] = []
    expires: dt.datetime | None = None
    raw = text(form, "expires").strip()
    if raw:
        try:
            expires = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        except ValueError:
            problems.append(FieldProblem("expires_at", "a date such as 2026-12-24", "format"))
    customer_id = optional_number(form, "customer_id", problems) if admin else None
    if problems:
        raise InvalidInput(problems)
    return TokenRequest(
        admin=admin and checked(form, "admin"),
        customer_id=customer_id,
        read_only=checked(form, "read_only"),
        # Ticked, or typed one per line (or separated by commas) when there are too many.
        domains=tuple(
            dict.fromkeys(checked_values(form, "domains") + typed_values(form, "domains_typed"))
        ),
        expires_at=expires,
        label=optional_text(form, "label"),
    )


def package_limits(form: FormData) -> dict[str, int | None]:
    """Every limit of the package form (it shows them all): empty is no limit; sizes are
    typed in MiB, counts as they are. The bounds are the service's to judge."""
    problems: list[FieldProblem] = []
    limits: dict[str, int | None] = {}
    for name in LIMITS:
        if name.endswith("_bytes"):
            mib = optional_number(form, name.removesuffix("_bytes") + "_mib", problems)
            limits[name] = None if mib is None else mib * MIB
        else:
            limits[name] = optional_number(form, name, problems)
    if problems:
        raise InvalidInput(problems)
    return limits

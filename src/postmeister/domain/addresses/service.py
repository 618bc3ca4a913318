"""Email addresses: every rule for mailboxes and forwards, shared by both API dialects.

Services validate, check ownership and flush; the caller commits. Input that breaks several
rules is reported in full (`InvalidInput` with one `FieldProblem` per rule) and nothing is
written: validation happens before the first change to the session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Literal, TypeAlias, TypeVar, Union

from sqlalchemy import BigInteger, delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from postmeister.domain.access import Actor, visible_domains
from postmeister.domain.addresses.syntax import (
    ParsedAddress,
    parse_address,
    parse_address_list,
    parse_local_part,
    parse_sender_patterns,
)
from postmeister.domain.autoresponders.schedule import (
    DateEdit,
    ScheduleEdit,
    apply_edit,
    edit_problems,
)
from postmeister.domain.autoresponders.service import schedule_of, store_schedule
from postmeister.domain.domains.service import get_domain
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import (
    AlreadyExists,
    Conflict,
    FieldProblem,
    InvalidInput,
    ManagedBySync,
    NotFound,
    PasswordPolicyViolation,
)
from postmeister.models import (
    Address,
    Autoresponder,
    Domain,
    ForwardTarget,
    MailboxUsage,
    Package,
    SenderPermission,
)

Kind = Literal["mailbox", "forward"]
KINDS: Final = ("mailbox", "forward")
ANTISPAM_POLICIES: Final = ("reject", "junk-folder", "subject-rewrite", "none")
MAX_DESCRIPTION = 1000
MAX_FORWARD_TARGETS = 100
MAX_AUTORESPONDER_TEXT = 65536


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET
T = TypeVar("T")
Maybe: TypeAlias = Union[T, _Unset]  # noqa: UP007 - the | form cannot make a generic alias


@dataclass(frozen=True)
class AutoresponderChanges:
    text: Maybe[str] = UNSET
    active: Maybe[bool] = UNSET
    activates: Maybe[dt.date | None] = UNSET
    expires: Maybe[dt.date | None] = UNSET


@dataclass(frozen=True)
class AddressChanges:
    """A partial update: UNSET fields stay as they are."""

    description: Maybe[str | None] = UNSET
    antispam: Maybe[str] = UNSET
    forward_to: Maybe[list[str]] = UNSET
    password: Maybe[str] = UNSET  # plain text, checked against the policy
    spoofing_whitelist: Maybe[list[str]] = UNSET
    submission_disabled: Maybe[bool] = UNSET
    quota_bytes: Maybe[int | None] = UNSET
    autoresponder: Maybe[AutoresponderChanges] = UNSET


@dataclass(frozen=True)
class NewAddress:
    local_part: str
    domain: str
    kind: Kind
    description: str | None = None
    antispam: str = "reject"
    forward_to: list[str] = field(default_factory=list)
    # Plain text; None on a mailbox means "generate one" (returned once in `Created`).
    password: str | None = None
    spoofing_whitelist: list[str] = field(default_factory=list)
    submission_disabled: bool = False
    quota_bytes: int | None = None


@dataclass(frozen=True)
class Created:
    address: Address
    generated_password: str | None


@dataclass(frozen=True)
class AddressPage:
    """One keyset page of addresses in id order, and whether more lie on either side."""

    addresses: list[Address]
    more_before: bool
    more_after: bool


def _loaded() -> tuple[Any, ...]:
    return (
        selectinload(Address.forward_targets),
        selectinload(Address.sender_permissions),
        selectinload(Address.autoresponder),
        selectinload(Address.domain),
        selectinload(Address.usage),
    )


# ---------------------------------------------------------------------------- reading


def _visible_addresses(actor: Actor, *, details: bool = True):  # type: ignore[no-untyped-def]
    domains = visible_domains(actor).with_only_columns(Domain.id).scalar_subquery()
    statement = select(Address).where(Address.domain_id.in_(domains))
    return statement.options(*_loaded()) if details else statement


def get_address(
    session: Session, actor: Actor, key: str | int, *, kind: Kind | None = None
) -> Address:
    """One visible address by its full address (any case/IDNA form) or its numeric id.

    An address of another kind than `kind` is reported missing: for the controller API an
    alias is not an account.
    """
    statement = _visible_addresses(actor)
    if isinstance(key, int):
        statement = statement.where(Address.id == key)
    else:
        try:
            canonical = parse_address(key).address
        except InvalidInput as exc:
            raise NotFound(kind or "address", key) from exc
        statement = statement.where(Address.address == canonical)
    found: Address | None = session.scalar(statement)
    if found is None or (kind is not None and found.kind != kind):
        raise NotFound(kind or "address", str(key))
    return found


def _cursor(value: int) -> Any:
    """A page cursor as a BIGINT parameter: a neighbour of the largest id (id + 1) must
    not overflow PostgreSQL's INTEGER; comparing INTEGER with BIGINT still uses the index."""
    return literal(value, BigInteger)


def list_addresses(
    session: Session,
    actor: Actor,
    *,
    kind: Kind | None = None,
    domain: str | None = None,
    package_id: int | None = None,
    address: str | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int | None = None,
    details: bool = True,
) -> list[Address]:
    """Visible addresses in id order; `after_id`/`before_id` + `limit` give keyset pages.

    With `before_id` the page is the `limit` addresses just before it (still in id order).
    `details=False` skips loading targets, permissions, autoresponder, domain and usage
    (five more statements): for callers that only ask whether there is any address.
    """
    statement = _visible_addresses(actor, details=details)
    if kind is not None:
        statement = statement.where(Address.kind == kind)
    if domain is not None:
        statement = statement.where(Address.domain_id == get_domain(session, actor, domain).id)
    if package_id is not None:
        package_domains = select(Domain.id).where(Domain.package_id == package_id)
        statement = statement.where(Address.domain_id.in_(package_domains))
    if address is not None:
        try:
            canonical = parse_address(address).address
        except InvalidInput:
            return []
        statement = statement.where(Address.address == canonical)
    if after_id is not None:
        statement = statement.where(Address.id > _cursor(after_id))
    if before_id is not None:
        statement = statement.where(Address.id < _cursor(before_id)).order_by(Address.id.desc())
        if limit is not None:
            statement = statement.limit(limit)
        return list(reversed(session.scalars(statement).all()))
    statement = statement.order_by(Address.id)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement).all())


def list_address_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after_id: int | None = None,
    before_id: int | None = None,
    kind: Kind | None = None,
    domain: str | None = None,
    package_id: int | None = None,
    address: str | None = None,
) -> AddressPage:
    """A page of at most `size` visible addresses after `after_id` or before `before_id`.

    Each page costs two index range scans whatever the page number: one for the page and
    one row more (is there a next page?), one row on the other side (is there a previous
    one?). No count, no offset, so page 20,000 of a million addresses is as fast as page 1.
    """
    filters: dict[str, Any] = {
        "kind": kind,
        "domain": domain,
        "package_id": package_id,
        "address": address,
    }
    found = list_addresses(
        session, actor, after_id=after_id, before_id=before_id, limit=size + 1, **filters
    )
    overflow = len(found) > size
    if before_id is not None:
        # Paging backwards: the extra row is the oldest one, before the page.
        page = found[1:] if overflow else found
        more_before = overflow
        more_after = bool(
            list_addresses(
                session, actor, after_id=before_id - 1, limit=1, details=False, **filters
            )
        )
    else:
        page = found[:size]
        more_after = overflow
        more_before = after_id is not None and bool(
            list_addresses(
                session, actor, before_id=after_id + 1, limit=1, details=False, **filters
            )
        )
    return AddressPage(addresses=page, more_before=more_before, more_after=more_after)


# ---------------------------------------------------------------------------- validation


def _check_antispam(value: str, kind: str, problems: list[FieldProblem]) -> None:
    if value not in ANTISPAM_POLICIES:
        problems.append(
            FieldProblem("antispam", f"must be one of {', '.join(ANTISPAM_POLICIES)}", "antispam")
        )
    elif value == "junk-folder" and kind != "mailbox":
        problems.append(
            FieldProblem("antispam", "junk-folder is only possible for mailboxes", "antispam")
        )


def check_text(value: str, field: str, *, multiline: bool) -> list[FieldProblem]:
    """Free text must be storable and displayable: no control characters (line breaks and
    tabs allowed in `multiline` text) and no lone UTF-16 surrogates, which JSON can carry
    but neither UTF-8 nor the databases can."""
    allowed = "\t\n\r" if multiline else ""
    if any(
        (ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
        for c in value
    ):
        what = "control characters other than line breaks" if multiline else "control characters"
        return [FieldProblem(field, f"must not contain {what} or unpaired surrogates", "charset")]
    return []


def _check_description(value: str | None, problems: list[FieldProblem]) -> None:
    if value is None:
        return
    if len(value) > MAX_DESCRIPTION:
        problems.append(
            FieldProblem("description", f"longer than {MAX_DESCRIPTION} characters", "length")
        )
    problems.extend(check_text(value, "description", multiline=True))


def _collect(problems: list[FieldProblem], call, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return call(*args, **kwargs)
    except InvalidInput as exc:
        problems.extend(exc.problems)
        return None


def _check_targets(
    values: list[str], own: str, kind: str, problems: list[FieldProblem]
) -> list[str] | None:
    targets: list[str] | None = _collect(problems, parse_address_list, values, field="forward_to")
    if targets is None:
        return None
    if len(targets) > MAX_FORWARD_TARGETS:
        problems.append(
            FieldProblem("forward_to", f"more than {MAX_FORWARD_TARGETS} targets", "length")
        )
    if own in targets:
        problems.append(FieldProblem("forward_to", "an address cannot forward to itself", "loop"))
    if kind == "forward" and not targets:
        problems.append(
            FieldProblem("forward_to", "a forward needs at least one target", "required")
        )
    return targets


MAX_QUOTA_BYTES = 2**50  # 1 PiB: far above any mailbox, far below the BIGINT range


def _check_quota(value: int | None, problems: list[FieldProblem]) -> None:
    if value is not None and not 0 <= value <= MAX_QUOTA_BYTES:
        problems.append(
            FieldProblem("quota", f"must be between 0 and {MAX_QUOTA_BYTES} bytes", "range")
        )


def _mailbox_only(name: str, kind: str, problems: list[FieldProblem]) -> None:
    if kind != "mailbox":
        problems.append(FieldProblem(name, "only mailboxes have this setting", "mailbox_only"))


def _require_writable(actor: Actor, domain: Domain, *, via_sync: bool) -> None:
    actor.require_write()
    if domain.sync_source_id is not None and not via_sync:
        raise ManagedBySync(domain.display_name, domain.sync_source_id)


# ---------------------------------------------------------------------------- writing


def create_address(
    session: Session,
    actor: Actor,
    new: NewAddress,
    *,
    passwords: Passwords,
    password_hash: str | None = None,
    via_sync: bool = False,
) -> Created:
    """Create a mailbox or forward. `password_hash` (already validated) is for imports."""
    problems: list[FieldProblem] = []
    local_part = _collect(problems, parse_local_part, new.local_part, field="name")
    domain = get_domain(session, actor, new.domain)
    _require_writable(actor, domain, via_sync=via_sync)
    if new.kind not in KINDS:
        problems.append(FieldProblem("address_type", "must be mailbox or forward", "kind"))
    own = ParsedAddress(local_part or "", domain.name)
    if local_part is not None and len(own.address.encode()) > 254:
        problems.append(FieldProblem("address", "address longer than 254 octets", "length"))
    _check_antispam(new.antispam, new.kind, problems)
    _check_description(new.description, problems)
    targets = _check_targets(new.forward_to, own.address, new.kind, problems) or []
    _check_quota(new.quota_bytes, problems)
    patterns: list[str] = (
        _collect(
            problems, parse_sender_patterns, new.spoofing_whitelist, field="spoofing_whitelist"
        )
        or []
    )
    if new.kind == "forward":
        for name, present in (
            ("password", new.password is not None or password_hash is not None),
            ("spoofing_whitelist", bool(new.spoofing_whitelist)),
            ("submission_disabled", new.submission_disabled),
            ("quota", new.quota_bytes is not None),
        ):
            if present:
                _mailbox_only(name, new.kind, problems)
    generated: str | None = None
    hashed = password_hash
    if new.kind == "mailbox" and hashed is None and local_part is not None:
        if new.password is None:
            generated = passwords.generate(local_part=local_part, domain=domain.name)
        else:
            problems.extend(
                passwords.problems(new.password, local_part=local_part, domain=domain.name)
            )
    if problems:
        raise _invalid(problems)
    existing = session.scalar(select(Address.kind).where(Address.address == own.address))
    if existing is not None:
        raise AlreadyExists("address", own.address, _exists_detail(own.address, existing))
    _check_package_limit(session, domain)
    # Hash last: it is the one expensive step, wasted on a request that fails anyway.
    if new.kind == "mailbox" and hashed is None:
        plain = generated if generated is not None else new.password
        assert plain is not None
        hashed = passwords.hashing.hash(plain)

    address = Address(
        domain_id=domain.id,
        address=own.address,
        local_part=own.local_part,
        kind=new.kind,
        description=new.description,
        antispam=new.antispam,
        password_hash=hashed if new.kind == "mailbox" else None,
        quota_bytes=new.quota_bytes,
        submission_disabled=new.submission_disabled,
        forward_targets=[ForwardTarget(position=i, target=t) for i, t in enumerate(targets)],
        sender_permissions=[
            SenderPermission(position=i, pattern=p) for i, p in enumerate(patterns)
        ],
    )
    session.add(address)
    try:
        session.flush()
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same address.
        raise AlreadyExists("address", own.address) from exc
    session.refresh(address)
    return Created(address=address, generated_password=generated)


def _invalid(problems: list[FieldProblem]) -> InvalidInput:
    if all(p.field == "password" for p in problems):
        return PasswordPolicyViolation(problems)
    return InvalidInput(problems)


def _exists_detail(address: str, kind: str) -> str:
    what = "a mailbox (account)" if kind == "mailbox" else "a forward (alias)"
    return f"{address} already exists as {what}"


def _check_package_limit(session: Session, domain: Domain) -> None:
    limit = session.scalar(select(Package.max_addresses).where(Package.id == domain.package_id))
    if limit is None:
        return
    used = session.scalar(
        select(func.count(Address.id))
        .join(Domain, Address.domain_id == Domain.id)
        .where(Domain.package_id == domain.package_id)
    )
    if (used or 0) >= limit:
        raise Conflict(f"the package allows at most {limit} addresses")


def update_address(
    session: Session,
    actor: Actor,
    address: Address,
    changes: AddressChanges,
    *,
    passwords: Passwords,
    via_sync: bool = False,
    today: dt.date | None = None,
) -> Address:
    """Apply every change or none: all fields are validated before the first one is set.

    `today` is the local day in the configured time zone; autoresponder dates are judged by
    it, so it is required whenever `changes.autoresponder` is set.
    """
    _require_writable(actor, address.domain, via_sync=via_sync)
    responder_changes: AutoresponderChanges | None = None
    if changes.autoresponder is not UNSET:
        if today is None:
            raise ValueError("autoresponder changes need today's date in the configured zone")
        responder_changes = changes.autoresponder
    problems: list[FieldProblem] = []
    kind = address.kind
    if changes.antispam is not UNSET:
        _check_antispam(changes.antispam, kind, problems)
    if changes.description is not UNSET:
        _check_description(changes.description, problems)
    targets: list[str] | None = None
    if changes.forward_to is not UNSET:
        targets = _check_targets(changes.forward_to, address.address, kind, problems)
    patterns: list[str] | None = None
    if changes.spoofing_whitelist is not UNSET:
        _mailbox_only("spoofing_whitelist", kind, problems)
        patterns = _collect(
            problems, parse_sender_patterns, changes.spoofing_whitelist, field="spoofing_whitelist"
        )
    if changes.submission_disabled is not UNSET:
        _mailbox_only("submission_disabled", kind, problems)
    if changes.quota_bytes is not UNSET:
        _mailbox_only("quota", kind, problems)
        _check_quota(changes.quota_bytes, problems)
    if changes.password is not UNSET:
        _mailbox_only("password", kind, problems)
        if kind == "mailbox":
            problems.extend(
                passwords.problems(
                    changes.password, local_part=address.local_part, domain=address.domain.name
                )
            )
    if responder_changes is not None and today is not None:
        _mailbox_only("autoresponder", kind, problems)
        _check_autoresponder(responder_changes, address.autoresponder, today, problems)
    if problems:
        raise _invalid(problems)

    if changes.antispam is not UNSET:
        address.antispam = changes.antispam
    if changes.description is not UNSET:
        address.description = changes.description
    if targets is not None:
        address.forward_targets = [
            ForwardTarget(position=i, target=t) for i, t in enumerate(targets)
        ]
    if patterns is not None:
        address.sender_permissions = [
            SenderPermission(position=i, pattern=p) for i, p in enumerate(patterns)
        ]
    if changes.submission_disabled is not UNSET:
        address.submission_disabled = changes.submission_disabled
    if changes.quota_bytes is not UNSET:
        address.quota_bytes = changes.quota_bytes
    if changes.password is not UNSET:
        address.password_hash = passwords.hashing.hash(changes.password)
    if responder_changes is not None and today is not None:
        _apply_autoresponder(address, responder_changes, today)
    address.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return address


def _schedule_edit(changes: AutoresponderChanges) -> ScheduleEdit:
    return ScheduleEdit(
        active=None if changes.active is UNSET else changes.active,
        activates=None if changes.activates is UNSET else DateEdit(changes.activates),
        expires=None if changes.expires is UNSET else DateEdit(changes.expires),
    )


def _check_autoresponder(
    changes: AutoresponderChanges,
    current: Autoresponder | None,
    today: dt.date,
    problems: list[FieldProblem],
) -> None:
    if changes.text is not UNSET:
        if len(changes.text) > MAX_AUTORESPONDER_TEXT:
            problems.append(
                FieldProblem(
                    "autoresponder.text", f"longer than {MAX_AUTORESPONDER_TEXT} characters"
                )
            )
        problems.extend(check_text(changes.text, "autoresponder.text", multiline=True))
    problems.extend(edit_problems(schedule_of(current), _schedule_edit(changes), today=today))


def _apply_autoresponder(address: Address, changes: AutoresponderChanges, today: dt.date) -> None:
    responder = address.autoresponder
    if responder is None:
        responder = Autoresponder(text="", active=False)
        address.autoresponder = responder
    if changes.text is not UNSET and responder.text != changes.text:
        responder.text = changes.text
        responder.updated_at = dt.datetime.now(dt.UTC)
    store_schedule(
        responder, apply_edit(schedule_of(responder), _schedule_edit(changes), today=today)
    )


def reset_password(
    session: Session, actor: Actor, address: Address, *, passwords: Passwords
) -> str:
    """Give the mailbox a new random password that passes the policy; return it (once)."""
    if address.kind != "mailbox":
        _require_writable(actor, address.domain, via_sync=False)
        raise Conflict(f"{address.address} is a forward; only mailboxes have a password")
    generated = passwords.generate(local_part=address.local_part, domain=address.domain.name)
    update_address(session, actor, address, AddressChanges(password=generated), passwords=passwords)
    return generated


def split_address(value: str, *, field: str = "address") -> tuple[str, str]:
    """`local@domain` as its two parts as typed (each is validated by `create_address`)."""
    if value.count("@") != 1:
        raise InvalidInput.single(field, "must be a full email address such as name@example.com")
    local_part, _, domain = value.partition("@")
    return local_part, domain


def add_forward_target(
    session: Session, actor: Actor, address: Address, target: str, *, passwords: Passwords
) -> Address:
    """Add one target; adding one already there changes nothing (but still needs write
    access, so a read-only token learns that it cannot write)."""
    _require_writable(actor, address.domain, via_sync=False)
    current = [t.target for t in address.forward_targets]
    canonical = parse_address(target, field="forward_to").address
    if canonical in current:
        return address  # already there: adding is idempotent
    return update_address(
        session,
        actor,
        address,
        AddressChanges(forward_to=[*current, canonical]),
        passwords=passwords,
    )


def remove_forward_target(
    session: Session, actor: Actor, address: Address, target: str, *, passwords: Passwords
) -> Address:
    _require_writable(actor, address.domain, via_sync=False)
    current = [t.target for t in address.forward_targets]
    try:
        canonical = parse_address(target, field="forward_to").address
    except InvalidInput as exc:
        raise NotFound("forward target", target) from exc
    if canonical not in current:
        raise NotFound("forward target", target)
    remaining = [t for t in current if t != canonical]
    return update_address(
        session, actor, address, AddressChanges(forward_to=remaining), passwords=passwords
    )


def delete_address(
    session: Session, actor: Actor, address: Address, *, via_sync: bool = False
) -> None:
    _require_writable(actor, address.domain, via_sync=via_sync)
    session.execute(delete(MailboxUsage).where(MailboxUsage.username == address.address))
    session.delete(address)
    session.flush()

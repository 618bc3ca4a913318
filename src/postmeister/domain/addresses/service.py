"""Email addresses: one object's changes, with every rule shared by both API dialects.

Services validate, check ownership and flush; the caller commits. Input that breaks several
rules is reported in full (`InvalidInput` with one `FieldProblem` per rule) and nothing is
written: validation happens before the first change to the session. The rules themselves
are pure functions in `rules.py`, which the sync bulk writer (`bulk.py`) applies too; the
visible queries are in `queries.py` and the request/response shapes in `schemas.py` (all
re-exported here, so `service.X` keeps working for the API layers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, null, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from postmeister.config import AddressSettings
from postmeister.domain.access import Actor, hosted_elsewhere, visible_domains
from postmeister.domain.addresses import rules
from postmeister.domain.addresses.limits import LIMIT_COLUMNS, load_limits, load_usage
from postmeister.domain.addresses.queries import (
    count_addresses,
    get_address,
    list_address_page,
    list_address_slice,
    list_addresses,
    search_address_page,
    stream_addresses,
    visible_addresses,
)
from postmeister.domain.addresses.rules import (
    MAX_AUTORESPONDER_TEXT,
    MAX_DESCRIPTION,
    MAX_FORWARD_TARGETS,
    MAX_QUOTA_BYTES,
    AddressExists,
    PackageLimits,
    PackageUsage,
    check_text,
)
from postmeister.domain.addresses.schemas import (
    ANTISPAM_POLICIES,
    KINDS,
    UNSET,
    AddressChanges,
    AddressPage,
    AutoresponderChanges,
    Created,
    Kind,
    Maybe,
    NewAddress,
)
from postmeister.domain.addresses.syntax import (
    ParsedAddress,
    normalise_domain,
    parse_address,
    parse_local_part,
    parse_sender_patterns,
)
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.autoresponders.schedule import (
    DateEdit,
    ScheduleEdit,
    apply_edit,
    edit_problems,
)
from postmeister.domain.autoresponders.service import schedule_of, store_schedule
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.placement import service as placement
from postmeister.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    LimitReached,
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

__all__ = [
    "ANTISPAM_POLICIES",
    "KINDS",
    "MAX_AUTORESPONDER_TEXT",
    "MAX_DESCRIPTION",
    "MAX_FORWARD_TARGETS",
    "MAX_QUOTA_BYTES",
    "UNSET",
    "AddressChanges",
    "AddressExists",
    "AddressPage",
    "AutoresponderChanges",
    "Created",
    "Kind",
    "Maybe",
    "NewAddress",
    "add_forward_target",
    "check_text",
    "count_addresses",
    "create_address",
    "delete_address",
    "get_address",
    "list_address_page",
    "list_address_slice",
    "list_addresses",
    "remove_forward_target",
    "reset_password",
    "search_address_page",
    "split_address",
    "stream_addresses",
    "update_address",
    "visible_addresses",
]

# The class default; callers pass `Settings.addresses.max_quota_bytes` to honour the
# environment (POSTMEISTER_ADDRESSES__MAX_QUOTA_BYTES).
DEFAULT_MAX_QUOTA_BYTES = AddressSettings().max_quota_bytes


def _collect(problems: list[FieldProblem], call, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return call(*args, **kwargs)
    except InvalidInput as exc:
        problems.extend(exc.problems)
        return None


def quota_limit_for(actor: Actor, max_quota_bytes: int) -> int | None:
    """The largest quota this actor may set; None (no bound) for admins."""
    return None if actor.is_admin else max_quota_bytes


def _sender_patterns(
    session: Session, values: Sequence[str], customer_id: int, problems: list[FieldProblem]
) -> list[str] | None:
    """The canonical whitelist, or None after recording its problems: syntax first, then
    the tenancy rule (no other customer's address or domain)."""
    patterns: list[str] | None = _collect(
        problems, parse_sender_patterns, list(values), field="spoofing_whitelist"
    )
    if not patterns:
        return patterns
    named = {d for d in map(rules.sender_domain, patterns) if d is not None}
    foreign = set(session.scalars(hosted_elsewhere(customer_id, named))) if named else set()
    found = rules.foreign_sender_problems(patterns, foreign)
    problems.extend(found)
    return None if found else patterns


def _require_writable(actor: Actor, domain: Domain, *, via_sync: bool) -> None:
    actor.require_write()
    if domain.sync_source_id is not None and not via_sync:
        raise ManagedBySync(domain.display_name, domain.sync_source_id)


def create_address(
    session: Session,
    actor: Actor,
    new: NewAddress,
    *,
    passwords: Passwords,
    password_hash: str | None = None,
    via_sync: bool = False,
    max_quota_bytes: int = DEFAULT_MAX_QUOTA_BYTES,
) -> Created:
    """Create a mailbox or forward. `password_hash` (already validated) is for imports.

    A customer's mailbox created without a quota gets `max_quota_bytes`; an admin's is
    unlimited (see `rules.quota_problems`).
    """
    problems: list[FieldProblem] = []
    local_part = _collect(problems, parse_local_part, new.local_part, field="name")
    domain, package, existing = _destination(session, actor, new.domain, local_part)
    _require_writable(actor, domain, via_sync=via_sync)
    problems.extend(rules.kind_problems(new.kind))
    own = ParsedAddress(local_part or "", domain.name)
    if local_part is not None:
        problems.extend(rules.address_problems(own.address))
    problems.extend(rules.antispam_problems(new.antispam, new.kind))
    problems.extend(rules.description_problems(new.description))
    targets, target_problems = rules.check_targets(new.forward_to, own=own.address, kind=new.kind)
    problems.extend(target_problems)
    limit = quota_limit_for(actor, max_quota_bytes)
    quota = new.quota_bytes
    if new.kind == "mailbox" and quota is None:
        quota = rules.default_quota(limit, package)
    if new.quota_bytes is not None:
        problems.extend(rules.quota_problems(new.quota_bytes, limit=limit))
    if new.kind == "mailbox":
        problems.extend(rules.package_quota_problems(quota, package))
    patterns = _sender_patterns(session, new.spoofing_whitelist, domain.customer_id, problems)
    if new.kind == "forward":
        for name, present in (
            ("password", new.password is not None or password_hash is not None),
            ("spoofing_whitelist", bool(new.spoofing_whitelist)),
            ("submission_disabled", new.submission_disabled),
            ("subaddress_extension", new.subaddress_extension),
            ("quota", new.quota_bytes is not None),
        ):
            if present:
                problems.extend(rules.mailbox_only(name, new.kind))
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
    if existing is not None:
        raise AddressExists(own.address, existing)
    delta = rules.usage_of(new.kind, quota if new.kind == "mailbox" else None)
    _check_package(session, domain, package, delta, field="address")
    # Hash last: it is the one expensive step, wasted on a request that fails anyway (the
    # API's copy of `passwords` made it before the transaction: see `Passwords.ahead`).
    if new.kind == "mailbox" and hashed is None:
        plain = generated if generated is not None else new.password
        assert plain is not None
        hashed = passwords.hash(plain)

    address = Address(
        domain=domain,
        address=own.address,
        local_part=own.local_part,
        kind=new.kind,
        description=new.description,
        antispam=new.antispam,
        password_hash=hashed if new.kind == "mailbox" else None,
        quota_bytes=quota if new.kind == "mailbox" else None,
        submission_disabled=new.submission_disabled,
        subaddress_extension=new.subaddress_extension,
        # Evaluated inside the INSERT: no statement of its own (placement's rule).
        home_node_id=placement.home_for_new_mailbox() if new.kind == "mailbox" else None,
        forward_targets=[ForwardTarget(position=i, target=t) for i, t in enumerate(targets)],
        sender_permissions=[
            SenderPermission(position=i, pattern=p) for i, p in enumerate(patterns or [])
        ],
    )
    session.add(address)
    try:
        session.flush()
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same address.
        raise AddressExists(own.address) from exc
    # Everything the answer shows is in memory now (the INSERT returned the id): a new
    # address has no autoresponder and no quota usage yet, so nothing is read back.
    set_committed_value(address, "autoresponder", None)
    set_committed_value(address, "usage", None)
    audit.changed(session, snapshots.ADDRESS, address, "created")
    return Created(address=address, generated_password=generated)


def _destination(
    session: Session, actor: Actor, domain_name: str, local_part: str | None
) -> tuple[Domain, PackageLimits, str | None]:
    """The visible domain a new address goes into (`NotFound` otherwise, as `get_domain`),
    its package's limits, and the kind of an address already stored under the new one's
    name (None: free): one statement where there were three."""
    alabel = normalise_domain(domain_name)
    taken = (
        select(Address.kind).where(Address.address == f"{local_part}@{alabel}").scalar_subquery()
        if local_part is not None
        else null()
    )
    row = session.execute(
        visible_domains(actor)
        .where(Domain.name == alabel)
        .outerjoin(Package, Package.id == Domain.package_id)
        .add_columns(taken, *LIMIT_COLUMNS)
    ).first()
    if row is None:
        raise NotFound("domain", domain_name)
    domain, existing, *limits = row
    return domain, PackageLimits(*limits), existing


def _invalid(problems: list[FieldProblem]) -> InvalidInput:
    if all(p.field == "password" for p in problems):
        return PasswordPolicyViolation(problems)
    return InvalidInput(problems)


def _limits_of(session: Session, domain: Domain) -> PackageLimits:
    return load_limits(session, [domain.package_id]).get(domain.package_id, PackageLimits())


def _check_package(
    session: Session, domain: Domain, limits: PackageLimits, delta: PackageUsage, *, field: str
) -> None:
    """Raise `LimitReached` naming every package limit that adding `delta` breaks."""
    if limits == PackageLimits():
        return  # no limits: no need to count
    before = load_usage(session, [domain.package_id]).get(domain.package_id, PackageUsage())
    problems = rules.package_problems(limits, before, before + delta, field=field)
    if problems:
        raise LimitReached(problems)


def update_address(
    session: Session,
    actor: Actor,
    address: Address,
    changes: AddressChanges,
    *,
    passwords: Passwords,
    via_sync: bool = False,
    today: dt.date | None = None,
    max_quota_bytes: int = DEFAULT_MAX_QUOTA_BYTES,
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
        problems.extend(rules.antispam_problems(changes.antispam, kind))
    if changes.description is not UNSET:
        problems.extend(rules.description_problems(changes.description))
    targets: list[str] | None = None
    if changes.forward_to is not UNSET:
        checked, target_problems = rules.check_targets(
            changes.forward_to, own=address.address, kind=kind
        )
        problems.extend(target_problems)
        targets = None if target_problems else checked
    patterns: list[str] | None = None
    if changes.spoofing_whitelist is not UNSET:
        problems.extend(rules.mailbox_only("spoofing_whitelist", kind))
        patterns = _sender_patterns(
            session, changes.spoofing_whitelist, address.domain.customer_id, problems
        )
    if changes.submission_disabled is not UNSET:
        problems.extend(rules.mailbox_only("submission_disabled", kind))
    if changes.subaddress_extension is not UNSET:
        problems.extend(rules.mailbox_only("subaddress_extension", kind))
    package: PackageLimits | None = None
    if changes.quota_bytes is not UNSET:
        problems.extend(rules.mailbox_only("quota", kind))
        problems.extend(
            rules.quota_problems(changes.quota_bytes, limit=quota_limit_for(actor, max_quota_bytes))
        )
        package = _limits_of(session, address.domain)
        if kind == "mailbox":
            problems.extend(rules.package_quota_problems(changes.quota_bytes, package))
    if changes.password is not UNSET:
        problems.extend(rules.mailbox_only("password", kind))
        if kind == "mailbox":
            problems.extend(
                passwords.problems(
                    changes.password, local_part=address.local_part, domain=address.domain.name
                )
            )
    if responder_changes is not None and today is not None:
        problems.extend(rules.mailbox_only("autoresponder", kind))
        _check_autoresponder(responder_changes, address.autoresponder, today, problems)
    if problems:
        raise _invalid(problems)
    if package is not None and kind == "mailbox" and changes.quota_bytes is not UNSET:
        delta = rules.usage_of(kind, changes.quota_bytes) + -rules.usage_of(
            kind, address.quota_bytes
        )
        _check_package(session, address.domain, package, delta, field="quota")

    before = snapshots.address(address)
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
    if changes.subaddress_extension is not UNSET:
        address.subaddress_extension = changes.subaddress_extension
    if changes.quota_bytes is not UNSET:
        address.quota_bytes = changes.quota_bytes
    if changes.password is not UNSET:
        address.password_hash = passwords.hash(changes.password)
    if responder_changes is not None and today is not None:
        _apply_autoresponder(address, responder_changes, today)
    address.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    audit.changed(session, snapshots.ADDRESS, address, "updated", before=before)
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
    before = snapshots.address(address)
    session.execute(delete(MailboxUsage).where(MailboxUsage.username == address.address))
    session.delete(address)
    session.flush()
    audit.changed(session, snapshots.ADDRESS, address, "deleted", before=before, gone=True)

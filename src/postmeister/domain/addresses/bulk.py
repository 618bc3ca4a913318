"""The set-based address writer behind sync: many addresses in a few statements.

Sync documents are large (the benchmark: 150,000 addresses), so one service call per
address is not an option. This module is the same write path in bulk, not a second one:
- domains are resolved through `access.visible_domains` for the customer, so another
  customer's domain is exactly as absent as one that does not exist, and every statement
  that reads or writes addresses is scoped by that same statement again;
- entries are checked with `rules.py` (the document parser calls the per-entry rules with
  its JSON pointers; the package limit, which needs the database, is judged here by
  `rules.package_exceeded` over the whole plan);
- a mailbox a customer creates gets the same default quota as through the API;
- a spoofing whitelist passes the same tenancy rule as through the API
  (`rules.foreign_sender_problems` over `access.hosted_elsewhere`), judged for the
  whitelists the changes write.

Mail-relevant fields that a change does not carry (antispam, quota, autoresponder,
description, app passwords, a mailbox's own forwarding) are left untouched on update.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, hosted_elsewhere, visible_domains
from postmeister.domain.addresses import rules
from postmeister.domain.addresses.limits import load_limits, load_usage
from postmeister.domain.addresses.rules import PackageLimits, PackageUsage
from postmeister.domain.addresses.schemas import Change, CurrentAddress, Kind
from postmeister.domain.audit import service as audit
from postmeister.domain.audit.schemas import Event
from postmeister.domain.placement import service as placement
from postmeister.errors import FieldProblem
from postmeister.models import (
    Address,
    Domain,
    ForwardTarget,
    MailboxUsage,
    SenderPermission,
)

CHUNK = 500  # keeps IN (...) lists and executemany batches well inside driver limits
EVENT_BATCH = 2_000  # audit events built and written at a time (`_record`)
Progress = Callable[[int], None]
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Sync writes in its own unit of work, with no Address objects loaded: skip ORM session
# synchronisation (it would have to fetch every affected row first).
_UNSYNCED: Final = {"synchronize_session": False}


def _scope(actor: Actor) -> Any:
    """`Address.domain_id IN (the actor's visible domains)`: the tenancy of every write."""
    return Address.domain_id.in_(visible_domains(actor).with_only_columns(Domain.id))


def resolve_domains(
    session: Session, actor: Actor, fields: Mapping[str, str]
) -> tuple[dict[str, Domain], list[FieldProblem]]:
    """The visible domains among `fields` (A-label -> the caller's field name for it), and a
    problem for each of the others, in the same words whether the domain is unknown or
    another customer's (one statement, no second look at the rest)."""
    found: dict[str, Domain] = {}
    for chunk in _chunks(list(fields)):
        for row in session.scalars(visible_domains(actor).where(Domain.name.in_(chunk))):
            found[row.name] = row
    problems = [
        FieldProblem(field, f"the domain {name} does not belong to this customer", "domain")
        for name, field in fields.items()
        if name not in found
    ]
    return found, problems


def load_current(
    session: Session, actor: Actor, domain_ids: Iterable[int]
) -> dict[str, CurrentAddress]:
    """Every address of the given (visible) domains, with its recipients and whitelist, in
    three queries per chunk of domains (a no-op sync of 150,000 entries spends most of its
    time here, so rows are read as plain tuples)."""
    current: dict[str, CurrentAddress] = {}
    scope = _scope(actor)
    session.flush()  # the reads below go past the ORM, which would flush first
    for chunk in _chunks(list(domain_ids), 200):
        where = (Address.domain_id.in_(chunk), scope)
        targets = _lists_of(session, ForwardTarget, ForwardTarget.target, where)
        patterns = _lists_of(session, SenderPermission, SenderPermission.pattern, where)
        # Through the connection: plain rows, without the ORM's per-row loading.
        rows = (
            session.connection()
            .execute(
                select(
                    Address.id,
                    Address.address,
                    Address.kind,
                    Address.password_hash,
                    Address.subaddress_extension,
                ).where(*where)
            )
            .all()
        )  # one fetchall: iterating would fetch row by row
        for address_id, address, kind, password_hash, subaddress in rows:
            current[address] = CurrentAddress(
                address,
                cast(Kind, kind),
                password_hash,
                targets.get(address_id, ()),
                bool(subaddress),
                patterns.get(address_id, ()),
            )
    return current


def _lists_of(
    session: Session,
    model: type[ForwardTarget | SenderPermission],
    column: Any,
    where: tuple[ColumnElement[bool], ...],
) -> dict[int, tuple[str, ...]]:
    """The ordered list rows (targets or whitelist entries) of the addresses `where`
    selects, by address id: one statement, joined to the addresses (with their tenancy)."""
    lists: dict[int, list[str]] = {}
    rows = (
        session.connection()
        .execute(
            select(model.address_id, column)
            .join(Address, Address.id == model.address_id)
            .where(*where)
            .order_by(model.address_id, model.position)
        )
        .all()
    )
    for address_id, value in rows:
        values = lists.get(address_id)
        if values is None:
            lists[address_id] = [value]
        else:
            values.append(value)
    return {address_id: tuple(values) for address_id, values in lists.items()}


def sender_problems(
    session: Session, customer_id: int, changes: Sequence[Change], fields: Mapping[str, str]
) -> list[FieldProblem]:
    """Whitelist entries that the changes write for `customer_id`'s mailboxes and that name
    another customer's address or domain, each at the field of its mailbox in `fields`
    (address -> the caller's field name). A whitelist a change leaves alone is not judged
    again: another customer adding a domain must not break this customer's next sync."""
    written = [c for c in changes if c.sender_patterns]
    named = sorted(
        {d for c in written for d in map(rules.sender_domain, c.sender_patterns or ()) if d}
    )
    foreign: set[str] = set()
    for chunk in _chunks(named):
        foreign.update(session.scalars(hosted_elsewhere(customer_id, chunk)))
    if not foreign:
        return []
    problems: list[FieldProblem] = []
    for change in written:
        problems.extend(
            rules.foreign_sender_problems(
                change.sender_patterns or (), foreign, field=fields[change.address]
            )
        )
    return problems


def new_mailbox_quotas(
    session: Session, domains: Mapping[str, Domain], actor_limit: int | None
) -> dict[str, int | None]:
    """The quota of a mailbox created in each domain without one: as through the API
    (`rules.default_quota` of the caller's limit and the domain's package)."""
    limits = load_limits(session, {d.package_id for d in domains.values()})
    return {
        name: rules.default_quota(actor_limit, limits.get(domain.package_id, PackageLimits()))
        for name, domain in domains.items()
    }


def limit_problems(
    session: Session,
    actor: Actor,
    changes: Sequence[Change],
    domains: Mapping[str, Domain],
    fields: Mapping[str, str],
    *,
    quota_bytes: int | None,
) -> list[FieldProblem]:
    """The package limits the changes would break, counted over each whole package: its
    addresses in domains the changes do not touch too, plus creates (new mailboxes with the
    quota `write` gives them, see `new_mailbox_quotas`), minus deletes (with their stored
    quota). One problem per broken limit, at the field of the package's first domain in
    `fields`."""
    package_of = {name: domain.package_id for name, domain in domains.items()}
    limits = {
        package: limit
        for package, limit in load_limits(session, set(package_of.values())).items()
        if limit != PackageLimits()
    }
    if not limits:
        return []
    quotas = new_mailbox_quotas(session, domains, quota_bytes)
    deleted = [c.address for c in changes if c.action == "delete" and c.kind == "mailbox"]
    stored: dict[str, int | None] = {}
    scope = _scope(actor)
    for chunk in _chunks(deleted):
        rows = session.execute(
            select(Address.address, Address.quota_bytes).where(Address.address.in_(chunk), scope)
        )
        stored.update((row.address, row.quota_bytes) for row in rows)
    delta: dict[int, PackageUsage] = {}
    for change in changes:
        package = package_of[change.domain]
        if change.action == "create":
            usage = rules.usage_of(change.kind, quotas[change.domain])
        elif change.action == "delete":
            usage = -rules.usage_of(change.kind, stored.get(change.address))
        else:
            continue
        delta[package] = delta.get(package, PackageUsage()) + usage
    before = load_usage(session, list(limits))
    problems: list[FieldProblem] = []
    for package, limit in limits.items():
        used = before.get(package, PackageUsage())
        field = next(fields[name] for name, p in package_of.items() if p == package)
        after = used + delta.get(package, PackageUsage())
        problems.extend(rules.package_problems(limit, used, after, field=field))
    return problems


def write(
    session: Session,
    actor: Actor,
    changes: Sequence[Change],
    domains: Mapping[str, Domain],
    *,
    quota_bytes: int | None,
    progress: Progress | None = None,
    current: Mapping[str, CurrentAddress] | None = None,
) -> None:
    """Write the changes: deletes, then updates, then creates (so a change of kind works),
    with one audit event per change (`current`: the addresses as they were, for the events'
    "before").

    `domains` are the rows from `resolve_domains`; `quota_bytes` is the largest quota the
    caller may give (`service.quota_limit_for`): each new mailbox gets the quota a mailbox
    created through the API without one gets (`new_mailbox_quotas`).
    """
    now = dt.datetime.now(dt.UTC)
    by_action: dict[str, list[Change]] = {"delete": [], "update": [], "create": []}
    for change in changes:
        by_action[change.action].append(change)
    scope = _scope(actor)
    ids = _delete(session, by_action["delete"], scope, progress)
    ids.update(_update(session, by_action["update"], scope, now, progress))
    quotas = new_mailbox_quotas(session, domains, quota_bytes) if by_action["create"] else {}
    created = _create(session, by_action["create"], domains, quotas, now, progress)
    session.flush()
    _record(session, changes, current or {}, domains, {**ids, **created}, quotas, now)


# The audit trail's words for the bulk writer's actions (the services' words).
_PAST: Final = {"create": "created", "update": "updated", "delete": "deleted"}


def _shown(
    state: Change | CurrentAddress, *, quota: int | None = None, new: bool = False
) -> dict[str, Any]:
    """The fields of `snapshots.address` that the bulk writer reads or writes."""
    if state.kind == "forward":
        return {"address": state.address, "kind": "forward", "forward_to": list(state.targets)}
    shown: dict[str, Any] = {
        "address": state.address,
        "kind": "mailbox",
        "password": state.password_hash,
        "subaddress_extension": state.subaddress_extension,
    }
    if state.sender_patterns is not None:
        shown["spoofing_whitelist"] = list(state.sender_patterns)
    if new:
        shown.update(antispam="reject", quota_bytes=quota, submission_disabled=False)
    return shown


def _record(
    session: Session,
    changes: Sequence[Change],
    current: Mapping[str, CurrentAddress],
    domains: Mapping[str, Domain],
    ids: Mapping[str, int],
    quotas: Mapping[str, int | None],
    now: dt.datetime,
) -> None:
    """One audit event per change, in the same transaction, an executemany per
    `EVENT_BATCH` events: a sync of 150,000 new addresses held every event and its row at
    once (671 MiB peak against 174 MiB without the audit trail)."""
    who = audit.actor_fields()
    events: list[Event] = []
    for change in changes:
        if change.address not in ids:
            continue  # a delete of a row that was already gone: nothing happened
        have = current.get(change.address)
        before = _shown(have) if have is not None and change.action != "create" else None
        if change.action == "update" and before is not None and change.sender_patterns is None:
            before.pop("spoofing_whitelist", None)  # left as it was: not compared
        after = None
        if change.action != "delete":
            new = change.action == "create"
            after = _shown(change, quota=quotas.get(change.domain), new=new)
        domain = domains.get(change.domain)
        events.append(
            audit.event(
                resource="address",
                resource_id=ids[change.address],
                action=_PAST[change.action],
                customer_id=domain.customer_id if domain is not None else None,
                domain_id=domain.id if domain is not None else None,
                name=change.address,
                before=before,
                after=after,
                when=now,
                actor=who,
            )
        )
        if len(events) >= EVENT_BATCH:
            _record_batch(session, events)
    _record_batch(session, events)


def _record_batch(session: Session, events: list[Event]) -> None:
    """Record and forget `events` (an update that changed nothing is no event)."""
    audit.record_many(session, [e for e in events if e.action != "updated" or e.changes])
    events.clear()


def _ids_of(session: Session, addresses: Sequence[str], scope: Any) -> dict[str, int]:
    return {
        row.address: row.id
        for row in session.execute(
            select(Address.id, Address.address).where(Address.address.in_(addresses), scope)
        )
    }


def _delete(
    session: Session, changes: list[Change], scope: Any, progress: Progress | None
) -> dict[str, int]:
    """Delete; the ids of the addresses that were deleted."""
    gone: dict[str, int] = {}
    for chunk in _chunks([c.address for c in changes]):
        # ON DELETE CASCADE removes targets, permissions, app passwords, autoresponders.
        rows = session.execute(
            delete(Address)
            .where(Address.address.in_(chunk), scope)
            .returning(Address.id, Address.address),
            execution_options=_UNSYNCED,
        ).all()
        gone.update((row.address, row.id) for row in rows)
        deleted = [row.address for row in rows]
        if deleted:
            session.execute(
                delete(MailboxUsage).where(MailboxUsage.username.in_(deleted)),
                execution_options=_UNSYNCED,
            )
        if progress:
            progress(len(chunk))
    return gone


def _update(
    session: Session,
    changes: list[Change],
    scope: Any,
    now: dt.datetime,
    progress: Progress | None,
) -> dict[str, int]:
    """Update; the ids of the addresses updated."""
    updated: dict[str, int] = {}
    for chunk in _chunks(changes):
        ids = _ids_of(session, [c.address for c in chunk], scope)
        updated.update(ids)
        mailboxes = [c for c in chunk if c.kind == "mailbox"]
        if mailboxes:
            table = Address.__table__
            assert isinstance(table, Table)
            session.connection().execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(
                    password_hash=bindparam("hash"),
                    subaddress_extension=bindparam("subaddress"),
                    updated_at=now,
                ),
                [
                    {
                        "row_id": ids[c.address],
                        "hash": c.password_hash,
                        "subaddress": c.subaddress_extension,
                    }
                    for c in mailboxes
                ],
            )
            whitelists = [c for c in mailboxes if c.sender_patterns is not None]
            if whitelists:
                session.execute(
                    delete(SenderPermission).where(
                        SenderPermission.address_id.in_([ids[c.address] for c in whitelists])
                    ),
                    execution_options=_UNSYNCED,
                )
                _insert_whitelists(session, [(ids[c.address], c) for c in whitelists])
        forwards = [c for c in chunk if c.kind == "forward"]
        if forwards:
            forward_ids = [ids[c.address] for c in forwards]
            session.execute(
                delete(ForwardTarget).where(ForwardTarget.address_id.in_(forward_ids)),
                execution_options=_UNSYNCED,
            )
            session.execute(
                update(Address).where(Address.id.in_(forward_ids)).values(updated_at=now),
                execution_options=_UNSYNCED,
            )
            _insert_targets(session, [(ids[c.address], c.targets) for c in forwards])
        if progress:
            progress(len(chunk))
    return updated


def _create(
    session: Session,
    changes: list[Change],
    domains: Mapping[str, Domain],
    quotas: Mapping[str, int | None],
    now: dt.datetime,
    progress: Progress | None,
) -> dict[str, int]:
    """Create; the ids of the new addresses."""
    created: dict[str, int] = {}
    # One placement decision for the whole batch (placement's rule, counting as it goes).
    homes = iter(
        placement.homes_for_new_mailboxes(session, sum(c.kind == "mailbox" for c in changes))
    )
    for chunk in _chunks(changes):
        rows: list[dict[str, Any]] = [
            {
                "domain_id": domains[c.domain].id,
                "address": c.address,
                "local_part": c.local_part,
                "kind": c.kind,
                "antispam": "reject",
                "password_hash": c.password_hash if c.kind == "mailbox" else None,
                "quota_bytes": quotas[c.domain] if c.kind == "mailbox" else None,
                "submission_disabled": False,
                "subaddress_extension": c.subaddress_extension if c.kind == "mailbox" else False,
                "home_node_id": next(homes) if c.kind == "mailbox" else None,
                "created_at": now,
                "updated_at": now,
            }
            for c in chunk
        ]
        # RETURNING gives the new ids directly. Selecting them back would be quadratic on
        # PostgreSQL: inside this transaction the planner has no statistics for the rows
        # just inserted and scans the whole table for every chunk. Each returned row names
        # its address, so the rows may come back in any order: asking SQLAlchemy for the
        # parameters' order (`sort_by_parameter_order`) made it send one INSERT per row on
        # SQLite (30,000 statements for 30,000 addresses), which doubled an initial import.
        inserted = session.execute(insert(Address).returning(Address.id, Address.address), rows)
        ids = {row.address: row.id for row in inserted}
        created.update(ids)
        forwards = [c for c in chunk if c.kind == "forward"]
        if forwards:
            _insert_targets(session, [(ids[c.address], c.targets) for c in forwards])
        _insert_whitelists(session, [(ids[c.address], c) for c in chunk if c.kind == "mailbox"])
        if progress:
            progress(len(chunk))
    return created


def _insert_whitelists(session: Session, items: list[tuple[int, Change]]) -> None:
    rows = [
        {"address_id": address_id, "position": position, "pattern": pattern}
        for address_id, change in items
        for position, pattern in enumerate(change.sender_patterns or ())
    ]
    if rows:
        session.execute(insert(SenderPermission), rows)


def _insert_targets(session: Session, items: list[tuple[int, tuple[str, ...]]]) -> None:
    rows = [
        {"address_id": address_id, "position": position, "target": target}
        for address_id, targets in items
        for position, target in enumerate(targets)
    ]
    if rows:
        session.execute(insert(ForwardTarget), rows)

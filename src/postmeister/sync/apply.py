"""Read the current state of the covered domains and write a plan to the database.

Sync documents are large (the benchmark: 150,000 addresses), so this module works in bulk:
a few set-based statements instead of one service call per address. The rules are the same
as in `domain.addresses.service` because the inputs were validated by the same syntax
module (`sync.document`); what only the database can answer — does the customer own these
domains, is a domain managed by another source — is checked here, before any write.

Mail-relevant fields that the document does not carry (antispam, quota, autoresponder,
description, app passwords, a mailbox's own forwarding) are left untouched on update.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from postmeister.errors import ProblemList
from postmeister.models import Address, Domain, ForwardTarget, MailboxUsage
from postmeister.sync.document import SyncDocument
from postmeister.sync.plan import Change, CurrentAddress, Plan

CHUNK = 500  # keeps IN (...) lists and executemany batches well inside driver limits
Progress = Callable[[int], None]
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resolve_domains(
    session: Session, *, customer_id: int, document: SyncDocument, source_id: int | None
) -> dict[str, Domain]:
    """The document's domains as rows; every foreign, unknown or otherwise managed one is
    reported (an unknown domain and another customer's look the same)."""
    names = list(document.domains)
    found: dict[str, Domain] = {}
    for chunk in _chunks(names):
        for domain in session.scalars(select(Domain).where(Domain.name.in_(chunk))):
            found[domain.name] = domain
    problems = ProblemList()
    for name in names:
        row = found.get(name)
        if row is None or domain.customer_id != customer_id:
            problems.add(
                f"/{name}", f"the domain {name} does not belong to this customer", "domain"
            )
        elif (
            source_id is not None
            and row.sync_source_id is not None
            and row.sync_source_id != source_id
        ):
            problems.add(
                f"/{name}",
                f"the domain {name} is managed by another sync source ({row.sync_source_id})",
                "managed",
            )
    problems.raise_if_any()
    return found


def load_current(session: Session, domain_ids: Iterable[int]) -> dict[str, CurrentAddress]:
    """Every address of the given domains, with its recipients, in two queries per chunk."""
    current: dict[str, CurrentAddress] = {}
    for chunk in _chunks(list(domain_ids), 200):
        rows = session.execute(
            select(Address.id, Address.address, Address.kind, Address.password_hash).where(
                Address.domain_id.in_(chunk)
            )
        ).all()
        targets: dict[int, list[str]] = {}
        ids = [row.id for row in rows]
        for id_chunk in _chunks(ids):
            for target in session.execute(
                select(ForwardTarget.address_id, ForwardTarget.target)
                .where(ForwardTarget.address_id.in_(id_chunk))
                .order_by(ForwardTarget.address_id, ForwardTarget.position)
            ):
                targets.setdefault(target.address_id, []).append(target.target)
        for row in rows:
            current[row.address] = CurrentAddress(
                address=row.address,
                kind=row.kind,
                password_hash=row.password_hash,
                targets=tuple(targets.get(row.id, ())),
            )
    return current


def apply_plan(
    session: Session,
    plan: Plan,
    domains: dict[str, Domain],
    *,
    progress: Progress | None = None,
) -> None:
    """Write the plan: deletes, then updates, then creates (the plan's order)."""
    now = dt.datetime.now(dt.UTC)
    by_action: dict[str, list[Change]] = {"delete": [], "update": [], "create": []}
    for change in plan.changes:
        by_action[change.action].append(change)
    _delete(session, by_action["delete"], progress)
    _update(session, by_action["update"], now, progress)
    _create(session, by_action["create"], domains, now, progress)
    session.flush()


def _ids_of(session: Session, addresses: Sequence[str]) -> dict[str, int]:
    return {
        row.address: row.id
        for row in session.execute(
            select(Address.id, Address.address).where(Address.address.in_(addresses))
        )
    }


def _delete(session: Session, changes: list[Change], progress: Progress | None) -> None:
    for chunk in _chunks([c.address for c in changes]):
        # ON DELETE CASCADE removes targets, permissions, app passwords, autoresponders.
        session.execute(delete(Address).where(Address.address.in_(chunk)))
        session.execute(delete(MailboxUsage).where(MailboxUsage.username.in_(chunk)))
        if progress:
            progress(len(chunk))


def _update(
    session: Session, changes: list[Change], now: dt.datetime, progress: Progress | None
) -> None:
    for chunk in _chunks(changes):
        ids = _ids_of(session, [c.address for c in chunk])
        passwords = [
            {"row_id": ids[c.address], "hash": c.password_hash}
            for c in chunk
            if c.kind == "mailbox"
        ]
        if passwords:
            table = Address.__table__
            assert isinstance(table, Table)
            session.connection().execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(password_hash=bindparam("hash"), updated_at=now),
                passwords,
            )
        forwards = [c for c in chunk if c.kind == "forward"]
        if forwards:
            forward_ids = [ids[c.address] for c in forwards]
            session.execute(delete(ForwardTarget).where(ForwardTarget.address_id.in_(forward_ids)))
            session.execute(
                update(Address).where(Address.id.in_(forward_ids)).values(updated_at=now)
            )
            _insert_targets(session, [(ids[c.address], c.targets) for c in forwards])
        if progress:
            progress(len(chunk))


def _create(
    session: Session,
    changes: list[Change],
    domains: dict[str, Domain],
    now: dt.datetime,
    progress: Progress | None,
) -> None:
    for chunk in _chunks(changes):
        rows: list[dict[str, Any]] = [
            {
                "domain_id": domains[c.domain].id,
                "address": c.address,
                "local_part": c.local_part,
                "kind": c.kind,
                "antispam": "reject",
                "password_hash": c.password_hash if c.kind == "mailbox" else None,
                "submission_disabled": False,
                "created_at": now,
                "updated_at": now,
            }
            for c in chunk
        ]
        # RETURNING gives the new ids directly. Selecting them back would be quadratic on
        # PostgreSQL: inside this transaction the planner has no statistics for the rows
        # just inserted and scans the whole table for every chunk.
        inserted = session.execute(
            insert(Address).returning(Address.id, Address.address, sort_by_parameter_order=True),
            rows,
        )
        ids = {row.address: row.id for row in inserted}
        forwards = [c for c in chunk if c.kind == "forward"]
        if forwards:
            _insert_targets(session, [(ids[c.address], c.targets) for c in forwards])
        if progress:
            progress(len(chunk))


def _insert_targets(session: Session, items: list[tuple[int, tuple[str, ...]]]) -> None:
    rows = [
        {"address_id": address_id, "position": position, "target": target}
        for address_id, targets in items
        for position, target in enumerate(targets)
    ]
    if rows:
        session.execute(insert(ForwardTarget), rows)

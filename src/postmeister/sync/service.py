"""One Basic JSON sync: parse → check ownership → plan → (hold | apply) → record.

`sync_document` is the transactional core, used by the CLI (`postmeister sync run`) and by
the scheduler's polling job (`run_source`). The caller owns the transaction; `run_source`
is such a caller: it fetches outside any transaction (network time must never hold a
database lock), applies in one unit of work, and records the outcome in another, so that a
failed or rejected document leaves the last good state exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import SyncSettings
from postmeister.db import unit_of_work
from postmeister.errors import InvalidInput
from postmeister.models import Domain, SyncRun, SyncSource
from postmeister.sync.apply import Progress, apply_plan, load_current, resolve_domains
from postmeister.sync.document import parse_document
from postmeister.sync.fetch import FetchFailed, fetch_document
from postmeister.sync.plan import Plan, make_plan

Result = Literal["applied", "unchanged", "planned", "held", "rejected", "failed"]


@dataclass(frozen=True)
class SyncOutcome:
    result: Result
    plan: Plan | None = None
    errors: list[str] = field(default_factory=list)
    deletion_share: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result in ("applied", "unchanged", "planned")


def document_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def sync_document(
    session: Session,
    *,
    customer_id: int,
    raw: bytes,
    settings: SyncSettings,
    source: SyncSource | None = None,
    dry_run: bool = False,
    allow_mass_deletion: bool = False,
    on_plan: Callable[[Plan], Progress | None] | None = None,
) -> SyncOutcome:
    """Make the customer's covered domains match the document; raises `InvalidInput`.

    A plan that deletes more than `settings.max_delete_share` of the covered addresses is
    held unless `allow_mass_deletion`, or the source's operator confirmed this very document.
    """
    document = parse_document(raw)
    domains = resolve_domains(
        session, customer_id=customer_id, document=document, source_id=source.id if source else None
    )
    current = load_current(session, [d.id for d in domains.values()])
    plan = make_plan(document, current)
    share = plan.deletion_share(len(current))
    if dry_run:
        return SyncOutcome("planned", plan, deletion_share=share)
    digest = document_digest(raw)
    confirmed = source is not None and source.confirmed_document_sha256 == digest
    if share > settings.max_delete_share and not (allow_mass_deletion or confirmed):
        if source is not None:
            source.pending_document_sha256 = digest
        message = (
            f"the document would delete {plan.deleted} of {len(current)} addresses "
            f"({share:.0%}, more than the allowed {settings.max_delete_share:.0%}); "
            "it waits for an operator's confirmation"
        )
        return SyncOutcome("held", plan, [message], share)
    if source is not None:
        _take_over_domains(session, source, list(domains.values()))
        source.pending_document_sha256 = None
        source.confirmed_document_sha256 = None
    if plan.is_empty:
        return SyncOutcome("unchanged", plan, deletion_share=share)
    progress = on_plan(plan) if on_plan else None
    apply_plan(session, plan, domains, progress=progress)
    return SyncOutcome("applied", plan, deletion_share=share)


def _take_over_domains(session: Session, source: SyncSource, domains: list[Domain]) -> None:
    """The source manages exactly the domains of its latest applied document."""
    ids = [d.id for d in domains]
    session.execute(
        update(Domain)
        .where(Domain.sync_source_id == source.id, Domain.id.not_in(ids))
        .values(sync_source_id=None)
    )
    for domain in domains:
        domain.sync_source_id = source.id


def record_run(
    session: Session,
    *,
    customer_id: int,
    source_id: int | None,
    outcome: SyncOutcome,
    started_at: dt.datetime,
) -> SyncRun:
    plan = outcome.plan
    applied = outcome.result == "applied"
    run = SyncRun(
        source_id=source_id,
        customer_id=customer_id,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC),
        result=outcome.result,
        created=plan.created if plan and applied else 0,
        updated=plan.updated if plan and applied else 0,
        deleted=plan.deleted if plan and applied else 0,
        errors=json.dumps(outcome.errors) if outcome.errors else None,
    )
    session.add(run)
    session.flush()
    return run


def _problems_of(exc: InvalidInput) -> list[str]:
    return [f"{p.field or '/'}: {p.message}" for p in exc.problems]


def run_source(
    sessions: sessionmaker[Session],
    source_id: int,
    *,
    settings: SyncSettings,
    now: dt.datetime | None = None,
) -> SyncOutcome:
    """Fetch one source and apply its document; always records the run and the next poll."""
    started = now or dt.datetime.now(dt.UTC)
    with unit_of_work(sessions, write=False) as session:
        source = session.get(SyncSource, source_id)
        if source is None:
            raise LookupError(f"sync source {source_id} does not exist")
        url, etag, modified = source.url, source.etag, source.last_modified
        customer_id, interval = source.customer_id, source.interval_seconds
    next_run = started + dt.timedelta(seconds=interval)
    try:
        fetched = fetch_document(
            url,
            etag=etag,
            last_modified=modified,
            ca_bundle=settings.ca_bundle,
            timeout=settings.timeout_seconds,
            max_bytes=settings.max_document_bytes,
            allow_private_networks=settings.allow_private_networks,
        )
    except FetchFailed as exc:
        return _finish(
            sessions,
            source_id,
            customer_id,
            SyncOutcome("failed", errors=[exc.reason]),
            started,
            next_run,
        )
    if fetched.not_modified:
        return _finish(
            sessions, source_id, customer_id, SyncOutcome("unchanged"), started, next_run
        )
    try:
        with unit_of_work(sessions) as session:
            source = session.get(SyncSource, source_id)
            assert source is not None
            outcome = sync_document(
                session, customer_id=customer_id, raw=fetched.body, settings=settings, source=source
            )
            if outcome.result != "held":
                # Remember the validators only for a document we acted on; a held document
                # must be fetched again in full once it is confirmed.
                source.etag, source.last_modified = fetched.etag, fetched.last_modified
            source.next_run_at = next_run
            record_run(
                session,
                customer_id=customer_id,
                source_id=source_id,
                outcome=outcome,
                started_at=started,
            )
            return outcome
    except InvalidInput as exc:
        rejected = SyncOutcome("rejected", errors=_problems_of(exc))
        return _finish(sessions, source_id, customer_id, rejected, started, next_run)


def _finish(
    sessions: sessionmaker[Session],
    source_id: int,
    customer_id: int,
    outcome: SyncOutcome,
    started: dt.datetime,
    next_run: dt.datetime,
) -> SyncOutcome:
    with unit_of_work(sessions) as session:
        session.execute(
            update(SyncSource).where(SyncSource.id == source_id).values(next_run_at=next_run)
        )
        record_run(
            session,
            customer_id=customer_id,
            source_id=source_id,
            outcome=outcome,
            started_at=started,
        )
    return outcome


def claim_due_sources(session: Session, now: dt.datetime) -> list[int]:
    """Ids of the sources due for a poll, each pushed one interval ahead in the same
    transaction, so that another controller ticking meanwhile does not poll it too."""
    due = list(
        session.scalars(
            select(SyncSource)
            .where((SyncSource.next_run_at.is_(None)) | (SyncSource.next_run_at <= now))
            .order_by(SyncSource.id)
        )
    )
    for source in due:
        source.next_run_at = now + dt.timedelta(seconds=source.interval_seconds)
    session.flush()
    return [source.id for source in due]

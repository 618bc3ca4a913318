"""One Basic JSON sync: parse → check ownership → plan → check → (hold | apply) → record.

The document is the customer's, so it is applied as the customer (`Actor.for_customer`)
whoever triggers it (the scheduler, the CLI operator): the same tenancy statement and the
same address rules as the customer's API requests, through the bulk writer.

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
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import SyncSettings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.service import DEFAULT_MAX_QUOTA_BYTES, quota_limit_for
from postmeister.domain.audit import service as audit
from postmeister.domain.sync_sources.service import poll_interval
from postmeister.errors import InvalidInput
from postmeister.models import Domain, SyncRun, SyncSource
from postmeister.ops import context
from postmeister.sync.apply import Progress, apply_plan, check_plan, load_current, resolve_domains
from postmeister.sync.document import parse_document
from postmeister.sync.fetch import FetchFailed, fetch_document
from postmeister.sync.plan import Plan, make_plan
from postmeister.sync.unchanged import unchanged_domains

Result = Literal["applied", "unchanged", "planned", "held", "rejected", "failed"]
# The runs that the audit trail records (an unchanged poll every few minutes is no news;
# the changes of an applied run are recorded one address at a time besides).
RECORDED_RESULTS: Final = frozenset({"applied", "held", "rejected", "failed"})

log = logging.getLogger(__name__)


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
    max_quota_bytes: int = DEFAULT_MAX_QUOTA_BYTES,
) -> SyncOutcome:
    """Make the customer's covered domains match the document; raises `InvalidInput`.

    Every problem is found before anything is held or written, and a dry run reports it
    too: a document naming a domain that is not the customer's, breaking an address rule
    or overfilling a package is rejected whole. A plan that deletes more than
    `settings.max_delete_share` of the covered addresses is held unless
    `allow_mass_deletion`, or the source's operator confirmed this very document. New
    mailboxes get the quota a customer's new mailbox gets through the API
    (`max_quota_bytes`, the `POSTMEISTER_ADDRESSES__MAX_QUOTA_BYTES` setting).
    """
    actor = Actor.for_customer(customer_id)
    document = parse_document(raw)
    domains = resolve_domains(session, actor, document, source_id=source.id if source else None)
    # Only the domains that differ from the document are read row by row and planned.
    same = unchanged_domains(session, actor, document, {n: d.id for n, d in domains.items()})
    current = load_current(session, actor, [d.id for n, d in domains.items() if n not in same])
    plan = make_plan(document.without(same), current, unchanged=sum(same.values()))
    managed = len(current) + sum(same.values())
    quota_bytes = quota_limit_for(actor, max_quota_bytes)
    check_plan(session, actor, plan, domains, document, quota_bytes=quota_bytes)
    share = plan.deletion_share(managed)
    if dry_run:
        return SyncOutcome("planned", plan, deletion_share=share)
    digest = document_digest(raw)
    confirmed = source is not None and source.confirmed_document_sha256 == digest
    if share > settings.max_delete_share and not (allow_mass_deletion or confirmed):
        if source is not None:
            source.pending_document_sha256 = digest
        message = (
            f"the document would delete {plan.deleted} of {managed} addresses "
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
    apply_plan(
        session,
        actor,
        plan,
        domains,
        quota_bytes=quota_bytes,
        progress=progress,
        current=current,
    )
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
    if run.result in RECORDED_RESULTS:
        audit.record_many(
            session,
            [
                audit.event(
                    resource="sync_run",
                    resource_id=run.id,
                    action=run.result,
                    customer_id=customer_id,
                    name=f"sync source {source_id}" if source_id is not None else "sync document",
                    after={
                        "source_id": source_id,
                        "created": run.created,
                        "updated": run.updated,
                        "deleted": run.deleted,
                        "errors": outcome.errors or None,
                    },
                )
            ],
        )
    return run


def _problems_of(exc: InvalidInput) -> list[str]:
    return [f"{p.field or '/'}: {p.message}" for p in exc.problems]


def run_source(
    sessions: sessionmaker[Session],
    source_id: int,
    *,
    settings: SyncSettings,
    max_quota_bytes: int = DEFAULT_MAX_QUOTA_BYTES,
    now: dt.datetime | None = None,
) -> SyncOutcome:
    """Fetch one source and apply its document; always records the run and the next poll.

    Never raises: whatever goes wrong with this one source (its fetch, its document, a
    database error on its rows, a bug) becomes its `failed` run, so the polling job goes on
    with the other sources due in the same tick.
    """
    started = now or dt.datetime.now(dt.UTC)
    # Its changes are the source's in the audit trail, whoever asked for the poll.
    with context.acting("sync", origin_id=str(source_id), label=f"sync source {source_id}"):
        try:
            return _poll(
                sessions,
                source_id,
                settings=settings,
                max_quota_bytes=max_quota_bytes,
                started=started,
            )
        except Exception as exc:
            log.exception("sync source %s failed", source_id)
            outcome = SyncOutcome("failed", errors=[_internal_error(exc)])
            _record_failure(sessions, source_id, outcome, started, settings)
            return outcome


def _poll(
    sessions: sessionmaker[Session],
    source_id: int,
    *,
    settings: SyncSettings,
    max_quota_bytes: int,
    started: dt.datetime,
) -> SyncOutcome:
    with unit_of_work(sessions, write=False) as session:
        source = session.get(SyncSource, source_id)
        if source is None:  # deleted since it was claimed
            return SyncOutcome("failed", errors=[f"sync source {source_id} does not exist"])
        url, etag, modified = source.url, source.etag, source.last_modified
        customer_id = source.customer_id
        next_run = started + poll_interval(source.interval_seconds, settings)
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
                session,
                customer_id=customer_id,
                raw=fetched.body,
                settings=settings,
                max_quota_bytes=max_quota_bytes,
                source=source,
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


def _internal_error(exc: BaseException) -> str:
    # Shown to the customer: the kind of failure, not its details (SQL, paths, internals).
    return (
        f"the sync failed inside the controller ({type(exc).__name__}); "
        "the operator's log has the details"
    )


def _record_failure(
    sessions: sessionmaker[Session],
    source_id: int,
    outcome: SyncOutcome,
    started: dt.datetime,
    settings: SyncSettings,
) -> None:
    """Record a failed run and the next poll, best effort: if even that fails (the database
    is down), the log has it and the source is simply due again."""
    try:
        with unit_of_work(sessions) as session:
            source = session.get(SyncSource, source_id)
            if source is None:
                return
            source.next_run_at = started + poll_interval(source.interval_seconds, settings)
            record_run(
                session,
                customer_id=source.customer_id,
                source_id=source_id,
                outcome=outcome,
                started_at=started,
            )
    except Exception:
        log.exception("recording the failed run of sync source %s failed too", source_id)


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


def claim_due_sources(session: Session, now: dt.datetime, *, settings: SyncSettings) -> list[int]:
    """Ids of the sources due for a poll, each pushed one interval ahead in the same
    transaction, so that another controller ticking meanwhile does not poll it too.

    Each source is claimed in a savepoint of its own: one that cannot be claimed (a database
    error on its row) gets a failed run recorded and stays due; the others are claimed.
    """
    due = session.execute(
        select(SyncSource.id, SyncSource.customer_id, SyncSource.interval_seconds)
        .where((SyncSource.next_run_at.is_(None)) | (SyncSource.next_run_at <= now))
        .order_by(SyncSource.id)
    ).all()
    claimed: list[int] = []
    for source_id, customer_id, interval in due:
        try:
            with session.begin_nested():
                session.execute(
                    update(SyncSource)
                    .where(SyncSource.id == source_id)
                    .values(next_run_at=now + poll_interval(interval, settings))
                )
        except Exception as exc:
            log.exception("sync source %s could not be claimed", source_id)
            failed = SyncOutcome("failed", errors=[_internal_error(exc)])
            with session.begin_nested():
                record_run(
                    session,
                    customer_id=customer_id,
                    source_id=source_id,
                    outcome=failed,
                    started_at=now,
                )
            continue
        claimed.append(source_id)
    return claimed

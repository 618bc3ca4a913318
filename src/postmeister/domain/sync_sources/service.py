"""Sync sources: a customer's Basic JSON URLs, and the record of their runs.

Sources belong to a customer as a whole, so a token limited to some domains does not see
them (it could otherwise take over domains outside its limit).
"""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postmeister.config import SyncSettings
from postmeister.domain.access import Actor, visible_sync_sources
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.customers.service import get_customer
from postmeister.errors import Conflict, InvalidInput, NotFound, ProblemList
from postmeister.models import Domain, SyncRun, SyncSource


def _owner(actor: Actor, customer_id: int | None) -> int:
    if actor.is_admin:
        if customer_id is None:
            raise InvalidInput.single("customer_id", "an admin token must name the customer")
        return customer_id
    if customer_id is not None and customer_id != actor.customer_id:
        raise NotFound("customer", str(customer_id))
    assert actor.customer_id is not None
    return actor.customer_id


def check_url(url: str, problems: ProblemList) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        problems.add("url", "not a valid URL", "url")
        return
    if parsed.scheme != "https":
        problems.add("url", "sync sources are fetched over HTTPS only", "https")
    elif not parsed.host:
        problems.add("url", "the URL has no host", "url")
    if len(url) > 2048:
        problems.add("url", "longer than 2048 characters", "length")


def check_interval(seconds: int, settings: SyncSettings, problems: ProblemList) -> None:
    """The poll interval lies in the configured range (60 s to 7 days by default).

    The upper bound keeps every "now + interval" a representable time on both databases; an
    interval of 10**15 seconds once overflowed inside the shared polling job on every tick.
    """
    low, high = settings.min_interval_seconds, settings.max_interval_seconds
    if not low <= seconds <= high:
        problems.add("interval_seconds", f"must be between {low} and {high} seconds", "range")


def poll_interval(seconds: int, settings: SyncSettings) -> dt.timedelta:
    """The time to the next poll for a stored interval, clamped into the configured range:
    a row written before the range existed (or before an operator narrowed it) still polls,
    instead of failing the shared polling job with an overflow."""
    low, high = settings.min_interval_seconds, settings.max_interval_seconds
    return dt.timedelta(seconds=min(max(seconds, low), high))


def create_source(
    session: Session,
    actor: Actor,
    *,
    url: str,
    interval_seconds: int | None,
    settings: SyncSettings,
    customer_id: int | None = None,
) -> SyncSource:
    actor.require_write()
    if actor.domain_ids is not None:
        raise NotFound("customer", str(customer_id or actor.customer_id))
    owner = _owner(actor, customer_id)
    get_customer(session, owner)
    problems = ProblemList()
    check_url(url, problems)
    interval = (
        interval_seconds if interval_seconds is not None else settings.default_interval_seconds
    )
    check_interval(interval, settings, problems)
    problems.raise_if_any()
    source = SyncSource(customer_id=owner, url=url, interval_seconds=interval)
    session.add(source)
    session.flush()
    audit.changed(session, snapshots.SYNC_SOURCE, source, "created")
    return source


def list_sources(session: Session, actor: Actor) -> list[SyncSource]:
    return list(session.scalars(visible_sync_sources(actor).order_by(SyncSource.id)))


MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on every database


def get_source(session: Session, actor: Actor, source_id: int) -> SyncSource:
    if not 1 <= source_id <= MAX_ID:
        raise NotFound("sync source", str(source_id))
    source: SyncSource | None = session.scalar(
        visible_sync_sources(actor).where(SyncSource.id == source_id)
    )
    if source is None:
        raise NotFound("sync source", str(source_id))
    return source


def delete_source(session: Session, actor: Actor, source: SyncSource) -> None:
    """Its domains become API-managed again; their addresses stay as they are."""
    actor.require_write()
    before = snapshots.sync_source(source)
    session.delete(source)
    session.flush()
    audit.changed(session, snapshots.SYNC_SOURCE, source, "deleted", before=before, gone=True)


def confirm_held_document(
    session: Session, actor: Actor, source: SyncSource, *, now: dt.datetime | None = None
) -> SyncSource:
    """Allow the held document to be applied, and poll the source at once."""
    actor.require_write()
    if source.pending_document_sha256 is None:
        raise Conflict(f"sync source {source.id} has no document waiting for confirmation")
    before = snapshots.sync_source(source)
    source.confirmed_document_sha256 = source.pending_document_sha256
    source.next_run_at = now or dt.datetime.now(dt.UTC)
    session.flush()
    audit.changed(session, snapshots.SYNC_SOURCE, source, "confirmed", before=before)
    return source


def recent_runs(session: Session, source: SyncSource, *, limit: int = 20) -> list[SyncRun]:
    return list(
        session.scalars(
            select(SyncRun)
            .where(SyncRun.source_id == source.id)
            .order_by(SyncRun.id.desc())
            .limit(limit)
        )
    )


def managed_domains(session: Session, source: SyncSource) -> list[str]:
    return list(
        session.scalars(
            select(Domain.display_name)
            .where(Domain.sync_source_id == source.id)
            .order_by(Domain.name)
        )
    )


# The runs after which a source needs someone: its document was refused or could not be
# fetched, or a mass deletion waits for confirmation.
FAILING_RESULTS = ("failed", "rejected", "held")


def failing_sources(
    session: Session, actor: Actor, *, limit: int = 100
) -> list[tuple[SyncSource, SyncRun]]:
    """The visible sources whose latest run is one of `FAILING_RESULTS`, with that run
    (newest first; one statement, not one per source)."""
    latest = (
        select(SyncRun.source_id, func.max(SyncRun.id).label("run_id"))
        .where(SyncRun.source_id.is_not(None))
        .group_by(SyncRun.source_id)
        .subquery()
    )
    visible = visible_sync_sources(actor).subquery()
    rows = session.execute(
        select(SyncSource, SyncRun)
        .join(visible, visible.c.id == SyncSource.id)
        .join(latest, latest.c.source_id == SyncSource.id)
        .join(SyncRun, SyncRun.id == latest.c.run_id)
        .where(SyncRun.result.in_(FAILING_RESULTS))
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [(source, run) for source, run in rows]

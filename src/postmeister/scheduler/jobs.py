"""The registry: every periodic job, in one readable place.

A job must be idempotent (running it twice, or late, does no harm), because a controller
runs every job once at start to catch up on what it missed while it was down, and a job
that failed half way is simply run again at the next tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.domain.audit.service import prune as prune_audit_events
from postmeister.domain.autoresponders.service import settle_due
from postmeister.domain.dkim.service import ensure_keys, remove_expired
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.sending_limits.service import report_limit_hits
from postmeister.domain.webhooks.quota import warn_quotas
from postmeister.scheduler.clock import Calendar
from postmeister.store import gather_statistics
from postmeister.sync.service import claim_due_sources, run_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    now: dt.datetime  # aware
    today: dt.date  # the local day in the configured zone
    sessions: sessionmaker[Session]  # for follow-up work that needs its own transactions
    settings: Settings


@dataclass(frozen=True)
class Daily:
    """Once per local day: at the first tick after local midnight (or the first after start).

    Compares local dates, not instants, so a day of 23 or 25 hours (DST) or a zone whose
    midnight does not exist on some day changes nothing.
    """

    def is_due(self, last_run: dt.datetime | None, now: dt.datetime, calendar: Calendar) -> bool:
        return last_run is None or calendar.local_day(now) > calendar.local_day(last_run)


@dataclass(frozen=True)
class Every:
    """At the first tick once `interval` has passed since the last run."""

    interval: dt.timedelta

    def is_due(self, last_run: dt.datetime | None, now: dt.datetime, calendar: Calendar) -> bool:
        return last_run is None or now - last_run >= self.interval


@dataclass(frozen=True)
class Job:
    name: str  # stable: it keys the job's row in `job_state` and its lock
    timing: Daily | Every
    run: Callable[[Session, JobContext], object]  # flushes only; the runner commits
    description: str
    # Work that must not run inside the job's transaction (network I/O, transactions of its
    # own); called after the commit with what `run` returned.
    after_commit: Callable[[Any, JobContext], object] | None = None


def _settle_autoresponders(session: Session, context: JobContext) -> int:
    return settle_due(session, today=context.today)


def _forget_old_audit_events(session: Session, context: JobContext) -> int:
    keep = dt.timedelta(days=context.settings.audit.retention_days)
    return prune_audit_events(session, older_than=context.now - keep)


def _claim_sync_sources(session: Session, context: JobContext) -> list[int]:
    return claim_due_sources(session, context.now, settings=context.settings.sync)


def _poll_sync_sources(claimed: list[int], context: JobContext) -> dict[str, int]:
    """Poll each claimed source in turn. One source's failure is its own recorded run
    (`run_source` never raises) and never keeps the sources after it from running."""
    results: dict[str, int] = {}
    for source_id in claimed:
        try:
            result = run_source(
                context.sessions,
                source_id,
                settings=context.settings.sync,
                max_quota_bytes=context.settings.addresses.max_quota_bytes,
                now=context.now,
            ).result
        except Exception:  # a bug in run_source's own containment: still go on
            log.exception("polling sync source %s failed", source_id)
            result = "failed"
        results[result] = results.get(result, 0) + 1
    return results


def _warn_quotas(session: Session, context: JobContext) -> int:
    return warn_quotas(session, now=context.now)


def _report_sending_limits(session: Session, context: JobContext) -> int:
    settings = context.settings
    disable = settings.sending_limits.disable_submission
    return report_limit_hits(
        session,
        now=context.now,
        disable_submission=Passwords(settings.passwords) if disable else None,
    )


# Domains given their first DKIM keys per run: an RSA 2048 key costs ~90 ms of CPU, made
# while the job's transaction (on SQLite: the write lock) is open, so a big backlog (every
# domain after the upgrade to 0013) is worked off in small turns, about 1,200 an hour.
DKIM_KEYS_PER_RUN = 20


def _gather_statistics(session: Session, context: JobContext) -> str:
    del context  # nothing but the database
    return "analyzed" if gather_statistics(session) else "left to PostgreSQL's autovacuum"


def _maintain_dkim_keys(session: Session, context: JobContext) -> dict[str, int]:
    removed = remove_expired(session, now=context.now)
    created = ensure_keys(session, context.settings.dkim, now=context.now, limit=DKIM_KEYS_PER_RUN)
    return {"removed": removed, "created": created}


JOBS: tuple[Job, ...] = (
    Job(
        name="autoresponder-dates",
        timing=Daily(),
        run=_settle_autoresponders,
        description="switch autoresponders on and off on their activation and expiry dates",
    ),
    Job(
        name="audit-retention",
        timing=Daily(),
        run=_forget_old_audit_events,
        description="remove audit events older than the retention period",
    ),
    Job(
        name="sync-sources",
        timing=Every(dt.timedelta(seconds=15)),
        run=_claim_sync_sources,
        after_commit=_poll_sync_sources,
        description="fetch and apply the Basic JSON documents of the sync sources that are due",
    ),
    Job(
        name="quota-warnings",
        timing=Every(dt.timedelta(minutes=1)),
        run=_warn_quotas,
        description="report mailboxes at 90 % of their quota (webhook mailbox.quota_warning)",
    ),
    Job(
        name="sending-limits",
        timing=Every(dt.timedelta(seconds=15)),
        run=_report_sending_limits,
        description=(
            "report messages the mail nodes deferred at a sending limit (webhook"
            " mailbox.sending_limit_reached) and forget the counters of past days"
        ),
    ),
    Job(
        name="database-statistics",
        # Hourly: a sync may add 100,000 addresses to an empty database in a minute.
        timing=Every(dt.timedelta(hours=1)),
        run=_gather_statistics,
        description="refresh SQLite's planner statistics (sampled ANALYZE)",
    ),
    Job(
        name="dkim-keys",
        timing=Every(dt.timedelta(minutes=1)),
        run=_maintain_dkim_keys,
        description="give domains without a DKIM key their keys; remove keys past their overlap",
    ),
)

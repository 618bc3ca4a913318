"""Run the registered jobs: each in its own transaction, once at a time across controllers.

Exclusion: on PostgreSQL a transaction-scoped advisory lock per job (a controller that does
not get it skips the job: another one is running it); on SQLite the write transaction
(`BEGIN IMMEDIATE`) already serialises every writer of the one database file. Inside that
exclusion the job's row in `job_state` says when it last ran, so a job due once a day runs
once a day however many controllers tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Literal

import anyio.to_thread
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import advisory_key, unit_of_work
from postmeister.models import JobLock
from postmeister.ops import context, metrics
from postmeister.scheduler.clock import Calendar
from postmeister.scheduler.jobs import JOBS, Job, JobContext

log = logging.getLogger(__name__)

Outcome = Literal["ran", "not-due", "locked", "failed"]


@dataclass(frozen=True)
class JobOutcome:
    name: str
    outcome: Outcome


def advisory_lock_key(name: str) -> int:
    """The key of a job's `pg_try_advisory_xact_lock`, derived from its name."""
    return advisory_key("job", name)


def _locked(session: Session, name: str) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": advisory_lock_key(name)}
    )
    return bool(got)


class Scheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        calendar: Calendar,
        jobs: Sequence[Job] = JOBS,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.sessions = sessions
        self.calendar = calendar
        self.jobs = tuple(jobs)
        self.settings = settings or Settings()
        # The background loop while `running` runs it (what readiness looks at).
        self.task: asyncio.Task[None] | None = None

    def problem(self) -> str | None:
        """Why the background loop is not running, or None while it runs."""
        if self.task is None:
            return "not started"
        if not self.task.done():
            return None
        if self.task.cancelled():
            return "stopped"
        error = self.task.exception()
        return f"stopped by {type(error).__name__}" if error else "stopped"

    def run_due(self, *, force: bool = False) -> list[JobOutcome]:
        """Run every job that is due (every job, with `force`); never raises for a job."""
        outcomes = []
        for job in self.jobs:
            started = time.monotonic()
            outcome = self._run(job, force=force)
            metrics.observe_job(job.name, outcome, time.monotonic() - started)
            outcomes.append(JobOutcome(job.name, outcome))
        return outcomes

    def _run(self, job: Job, *, force: bool) -> Outcome:
        with context.acting("scheduler", origin_id=job.name, label=job.description):
            return self._run_as_job(job, force=force)

    def _run_as_job(self, job: Job, *, force: bool) -> Outcome:
        try:
            with unit_of_work(self.sessions) as session:
                if not _locked(session, job.name):
                    return "locked"
                state = session.get(JobLock, job.name)
                now = self.calendar.now()
                last_run = state.last_run_at if state is not None else None
                if not force and not job.timing.is_due(last_run, now, self.calendar):
                    return "not-due"
                context = JobContext(
                    now=now,
                    today=self.calendar.local_day(now),
                    sessions=self.sessions,
                    settings=self.settings,
                )
                result = job.run(session, context)
                if state is None:
                    state = JobLock(name=job.name)
                    session.add(state)
                state.last_run_at = now
            if job.after_commit is not None:
                result = job.after_commit(result, context)
            log.info("job %s ran at %s: %s", job.name, now.isoformat(), result)
            return "ran"
        except Exception:
            # A failing job must not stop the others or the controller; it stays due and
            # is tried again at the next tick.
            log.exception("job %s failed", job.name)
            return "failed"

    async def run_forever(self, tick_seconds: float) -> None:
        """Check for due jobs every `tick_seconds`, in a worker thread (the database is
        synchronous), until cancelled."""
        while True:
            await asyncio.sleep(tick_seconds)
            await anyio.to_thread.run_sync(self.run_due)


@asynccontextmanager
async def running(scheduler: Scheduler, *, tick_seconds: float) -> AsyncIterator[None]:
    """Catch up once (every job that is due, before the block starts), then tick in the
    background until the block ends. Shutdown waits for a job in progress to finish its
    transaction.

    The catch-up is not forced: a job that already ran in its period (by another controller,
    another worker process of this one, or before a restart) is not run again, so a job runs
    once per due time however many processes start."""
    await anyio.to_thread.run_sync(scheduler.run_due)
    task = asyncio.create_task(scheduler.run_forever(tick_seconds))
    scheduler.task = task
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            # Cancelled, or already ended by an error that readiness reported.
            await task

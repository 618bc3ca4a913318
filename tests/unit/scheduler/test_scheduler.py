"""The job runner on both databases: due logic by local day (across DST changes), once per
day however often it ticks, exclusion across controllers, failures contained."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from tests.conftest import fast_password_settings
from tests.support.clock import ControlledClock
from tests.support.factories import make_tenant

from postmeister.db import make_engine, make_session_factory, unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.service import NewAddress, create_address
from postmeister.domain.passwords.service import Passwords
from postmeister.models import AuditEvent, Autoresponder, JobLock
from postmeister.scheduler.clock import Calendar
from postmeister.scheduler.jobs import JOBS, Daily, Every, Job, JobContext
from postmeister.scheduler.runner import Scheduler, advisory_lock_key

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.days: list[dt.date] = []

    def __call__(self, session: Session, context: JobContext) -> int:
        self.days.append(context.today)
        return len(self.days)


@pytest.mark.parametrize(
    ("last_run", "now", "due"),
    [
        (None, at(2026, 3, 28, 12, 0), True),
        (at(2026, 3, 28, 0, 5), at(2026, 3, 28, 22, 59, 59), False),  # 23:59:59 CET
        (at(2026, 3, 28, 0, 5), at(2026, 3, 28, 23, 0, 0), True),  # 00:00 on the 29th
        (at(2026, 3, 28, 23, 0, 1), at(2026, 3, 29, 21, 59, 59), False),  # the 23-hour day
        (at(2026, 3, 28, 23, 0, 1), at(2026, 3, 29, 22, 0, 0), True),  # 00:00 CEST, 30th
        (at(2026, 10, 24, 8, 0), at(2026, 10, 24, 21, 59, 59), False),  # 23:59:59 CEST
        (at(2026, 10, 24, 8, 0), at(2026, 10, 24, 22, 0, 0), True),  # 00:00 on the 25th
        (at(2026, 10, 24, 22, 0, 1), at(2026, 10, 25, 22, 59, 59), False),  # the 25-hour day
        (at(2026, 10, 24, 22, 0, 1), at(2026, 10, 25, 23, 0, 0), True),
        (at(2026, 3, 29, 10, 0), at(2026, 3, 28, 23, 30), False),  # a clock behind the last run
    ],
)
def test_daily_is_due_once_per_local_day(
    last_run: dt.datetime | None, now: dt.datetime, due: bool
) -> None:
    calendar = Calendar(BERLIN)
    assert Daily().is_due(last_run, now, calendar) is due


def test_every_interval() -> None:
    calendar = Calendar(BERLIN)
    every = Every(dt.timedelta(minutes=5))
    assert every.is_due(None, at(2026, 1, 1, 0, 0), calendar)
    assert not every.is_due(at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 4, 59), calendar)
    assert every.is_due(at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 5), calendar)
    # Stored times come back aware (UtcDateTime); a naive one is a bug, not a guess.
    with pytest.raises(ValueError, match="aware"):
        Daily().is_due(dt.datetime(2026, 1, 1), at(2026, 1, 2), calendar)


def test_the_calendar_uses_its_zone_not_the_hosts() -> None:
    clock = ControlledClock(at(2026, 10, 24, 22, 30))
    assert Calendar(BERLIN, clock).today() == dt.date(2026, 10, 25)
    assert Calendar(ZoneInfo("America/New_York"), clock).today() == dt.date(2026, 10, 24)
    with pytest.raises(ValueError, match="aware"):
        Calendar(BERLIN, lambda: dt.datetime(2026, 1, 1)).now()


def test_the_registry_names_each_job_once() -> None:
    names = [job.name for job in JOBS]
    assert "autoresponder-dates" in names
    assert len(names) == len(set(names))


def test_a_daily_job_runs_once_a_day_however_often_it_ticks(
    sessions: sessionmaker[Session],
) -> None:
    recorder = Recorder()
    clock = ControlledClock(at(2026, 3, 28, 12, 0))
    job = Job(name="test-daily", timing=Daily(), run=recorder, description="records")
    scheduler = Scheduler(sessions, Calendar(BERLIN, clock), [job])
    other_controller = Scheduler(sessions, Calendar(BERLIN, clock), [job])

    assert [o.outcome for o in scheduler.run_due()] == ["ran"]
    for tick in range(3):
        clock.advance(dt.timedelta(minutes=30))
        assert [o.outcome for o in other_controller.run_due()] == ["not-due"], tick
    clock.set(at(2026, 3, 28, 23, 0, 30))  # 00:00:30 on the 29th, the spring-forward day
    assert [o.outcome for o in other_controller.run_due()] == ["ran"]
    assert [o.outcome for o in scheduler.run_due()] == ["not-due"]
    assert recorder.days == [dt.date(2026, 3, 28), dt.date(2026, 3, 29)]
    with sessions() as session:
        state = session.get(JobLock, "test-daily")
        assert state is not None and state.last_run_at is not None
    # At start, every job runs once whatever its last run (catching up is idempotent).
    assert [o.outcome for o in scheduler.run_due(force=True)] == ["ran"]


def test_a_failing_job_does_not_stop_the_others_and_stays_due(
    sessions: sessionmaker[Session],
) -> None:
    def broken(session: Session, context: JobContext) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    clock = ControlledClock(at(2026, 5, 1, 12, 0))
    scheduler = Scheduler(
        sessions,
        Calendar(BERLIN, clock),
        [
            Job(name="broken", timing=Daily(), run=broken, description="fails"),
            Job(name="fine", timing=Daily(), run=recorder, description="records"),
        ],
    )
    assert [o.outcome for o in scheduler.run_due()] == ["failed", "ran"]
    assert [o.outcome for o in scheduler.run_due()] == ["failed", "not-due"]
    with sessions() as session:
        assert session.get(JobLock, "broken") is None


def test_the_autoresponder_job_settles_due_rows_on_the_local_day(
    sessions: sessionmaker[Session],
) -> None:
    tenant = make_tenant(sessions, name="T", domain="t.example")
    with unit_of_work(sessions) as session:
        actor = Actor(customer_id=tenant.customer_id)
        passwords = Passwords(fast_password_settings())
        for local, activates, expires in (
            ("starts", dt.date(2026, 10, 25), None),
            ("ends", None, dt.date(2026, 10, 25)),
            ("later", dt.date(2026, 10, 26), dt.date(2026, 10, 30)),
        ):
            created = create_address(
                session,
                actor,
                NewAddress(local_part=local, domain="t.example", kind="mailbox"),
                passwords=passwords,
            )
            session.add(
                Autoresponder(
                    address_id=created.address.id,
                    text=local,
                    active=True,
                    activates=activates,
                    expires=expires,
                )
            )
    clock = ControlledClock(at(2026, 10, 24, 21, 59, 59))  # 23:59:59 CEST
    scheduler = Scheduler(sessions, Calendar(BERLIN, clock))

    def rows() -> dict[str, tuple[bool, dt.date | None, dt.date | None]]:
        with sessions() as session:
            found = session.scalars(select(Autoresponder)).all()
            return {r.text: (r.active, r.activates, r.expires) for r in found}

    unchanged = rows()
    scheduler.run_due()
    assert rows() == unchanged
    clock.set(at(2026, 10, 24, 22, 0, 1))  # 00:00:01 CEST on the 25th
    scheduler.run_due()
    assert rows() == {
        "starts": (True, None, None),
        "ends": (False, None, None),
        "later": (True, dt.date(2026, 10, 26), dt.date(2026, 10, 30)),
    }
    # Each switch is the job's change in the audit trail, field by field.
    with sessions() as session:
        switched = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource == "address", AuditEvent.action == "updated")
            .order_by(AuditEvent.resource_name)
        ).all()
    assert [(e.resource_name, e.actor_kind, e.actor_id) for e in switched] == [
        ("ends@t.example", "scheduler", "autoresponder-dates"),
        ("starts@t.example", "scheduler", "autoresponder-dates"),
    ]
    assert switched[0].changes == {
        "autoresponder_active": [True, False],
        "autoresponder_expires": ["2026-10-25", None],
    }
    assert switched[1].changes == {"autoresponder_activates": ["2026-10-25", None]}


def test_on_postgresql_a_job_locked_by_another_controller_is_skipped(
    pg_database_url: str,
) -> None:
    """(SQLite needs no lock: it has one writer at a time by construction, BEGIN IMMEDIATE,
    and the once-a-day test above shows what that guarantees.)"""
    recorder = Recorder()
    job = Job(name="test-locked", timing=Daily(), run=recorder, description="records")
    engine = make_engine(pg_database_url)
    other = make_engine(pg_database_url)
    clock = ControlledClock(at(2026, 1, 5, 9, 0))
    scheduler = Scheduler(make_session_factory(engine), Calendar(BERLIN, clock), [job])
    try:
        with other.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_lock_key(job.name)}
            )
            assert [o.outcome for o in scheduler.run_due(force=True)] == ["locked"]
        assert [o.outcome for o in scheduler.run_due(force=True)] == ["ran"]
    finally:
        other.dispose()
        engine.dispose()
    assert recorder.days == [dt.date(2026, 1, 5)]

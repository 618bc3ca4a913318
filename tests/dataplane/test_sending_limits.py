"""The sender milter's sending limits against the real database (SQLite and PostgreSQL):
what is counted, what is deferred, what the controller's job reports afterwards."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.dataplane.milter.limits import UNAVAILABLE, SendingLimiter
from postmeister.dataplane.milter.lookups import ContractLookups, SqliteDatabase
from postmeister.db import unit_of_work
from postmeister.domain.customers.service import create_customer
from postmeister.domain.domains.service import add_domain
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.sending_limits.service import report_limit_hits
from postmeister.domain.webhooks.rules import event_types
from postmeister.models import (
    Address,
    AuditEvent,
    Domain,
    Package,
    SendingCounter,
    SendingLimitHit,
    SendingLimitOverride,
)
from tests.conftest import fast_password_settings
from tests.dataplane.test_sender_tenancy import milter_database

NOW = dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC)


def _seed(sessions: sessionmaker[Session], **package_limits: int | None) -> dict[str, int]:
    """Alice with two mailboxes in alice.example; Bob with one in bob.example."""
    ids: dict[str, int] = {}
    with unit_of_work(sessions) as session:
        for customer_name, domain_name, locals_ in (
            ("Alice", "alice.example", ("info", "sales")),
            ("Bob", "bob.example", ("ceo",)),
        ):
            customer = create_customer(session, name=customer_name)
            domain = add_domain(session, customer_id=customer.id, name=domain_name)
            if package_limits:
                session.execute(
                    update(Package).where(Package.id == domain.package_id).values(**package_limits)
                )
            for local in locals_:
                address = Address(
                    domain_id=domain.id,
                    address=f"{local}@{domain_name}",
                    local_part=local,
                    kind="mailbox",
                    password_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                )
                session.add(address)
                session.flush()
                ids[address.address] = address.id
    return ids


@pytest.fixture
def limiter(database_url: str) -> SendingLimiter:
    return SendingLimiter(ContractLookups(milter_database(database_url)), clock=lambda: NOW)


def _counter(sessions: sessionmaker[Session], subject: str, period: str) -> tuple[int, int]:
    with unit_of_work(sessions) as session:
        row = session.get(SendingCounter, (subject, period))
        return (0, 0) if row is None else (row.messages, row.recipients)


def test_messages_are_counted_for_the_mailbox_and_its_domain_per_hour_and_day(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    _seed(sessions)
    assert limiter.admit("info@alice.example", 3).accept
    assert limiter.admit("sales@alice.example", 2).accept
    assert _counter(sessions, "info@alice.example", "2026-12-01T22") == (1, 3)
    assert _counter(sessions, "info@alice.example", "2026-12-01") == (1, 3)
    assert _counter(sessions, "@alice.example", "2026-12-01T22") == (2, 5)
    assert _counter(sessions, "@alice.example", "2026-12-01") == (2, 5)
    assert _counter(sessions, "ceo@bob.example", "2026-12-01") == (0, 0)


def test_the_message_over_the_hourly_limit_is_deferred_and_not_counted(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    _seed(sessions, mailbox_messages_per_hour=2)
    assert limiter.admit("info@alice.example", 1).accept
    assert limiter.admit("info@alice.example", 1).accept
    refused = limiter.admit("info@alice.example", 1)
    assert not refused.accept
    assert refused.reply == (
        "451 4.7.1 Sending limit reached: 2 messages per hour for info@alice.example;"
        " try again later"
    )
    assert _counter(sessions, "info@alice.example", "2026-12-01T22") == (2, 2)
    # Another mailbox of the same domain, and another customer's, are unaffected.
    assert limiter.admit("sales@alice.example", 1).accept
    assert limiter.admit("ceo@bob.example", 1).accept
    # The deferral is recorded once, however often the client retries.
    for _ in range(3):
        assert not limiter.admit("info@alice.example", 1).accept
    with unit_of_work(sessions) as session:
        hits = session.scalars(select(SendingLimitHit)).all()
        assert [(h.login, h.subject, h.period, h.limit_name, h.limit_value) for h in hits] == [
            ("info@alice.example", "info@alice.example", "2026-12-01T22", "messages_per_hour", 2)
        ]


def test_recipients_count_and_a_message_too_big_for_the_limit_is_refused_for_good(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    _seed(sessions, mailbox_recipients_per_hour=10)
    assert limiter.admit("info@alice.example", 8).accept
    later = limiter.admit("info@alice.example", 3)
    assert later.reply.startswith("451 4.7.1 Sending limit reached: 10 recipients per hour")
    never = limiter.admit("info@alice.example", 11)
    assert never.reply.startswith("550 5.7.1 Too many recipients")
    assert limiter.admit("info@alice.example", 2).accept  # exactly 10


def test_the_domain_limit_holds_all_its_mailboxes_together(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    _seed(sessions, domain_messages_per_day=3)
    assert limiter.admit("info@alice.example", 1).accept
    assert limiter.admit("sales@alice.example", 1).accept
    assert limiter.admit("info@alice.example", 1).accept
    refused = limiter.admit("sales@alice.example", 1)
    assert refused.reply == (
        "451 4.7.1 Sending limit reached: 3 messages per day for the domain alice.example;"
        " try again later"
    )
    assert limiter.admit("ceo@bob.example", 1).accept


def test_a_mailboxs_own_limit_replaces_its_packages(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    ids = _seed(sessions, mailbox_messages_per_hour=1)
    with unit_of_work(sessions) as session:
        session.add(SendingLimitOverride(address_id=ids["info@alice.example"], messages_per_hour=3))
    assert all(limiter.admit("info@alice.example", 1).accept for _ in range(3))
    assert not limiter.admit("info@alice.example", 1).accept
    assert limiter.admit("sales@alice.example", 1).accept
    assert not limiter.admit("sales@alice.example", 1).accept


def test_a_new_hour_starts_from_zero_but_the_day_goes_on(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    _seed(sessions, mailbox_messages_per_hour=1, mailbox_messages_per_day=2)
    morning = NOW.replace(hour=9)
    now = [morning]
    limiter = SendingLimiter(ContractLookups(milter_database(database_url)), clock=lambda: now[0])
    assert limiter.admit("info@alice.example", 1).accept
    assert not limiter.admit("info@alice.example", 1).accept
    now[0] = morning + dt.timedelta(hours=1)
    assert limiter.admit("info@alice.example", 1).accept
    now[0] = morning + dt.timedelta(hours=2)
    refused = limiter.admit("info@alice.example", 1)
    assert "2 messages per day" in refused.reply
    now[0] = morning + dt.timedelta(days=1)  # a new UTC day
    assert limiter.admit("info@alice.example", 1).accept


def test_concurrent_submissions_never_exceed_the_limit(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    """Eight connections at once (as from several mail nodes): exactly the limit passes."""
    _seed(sessions, mailbox_messages_per_hour=10)
    results: list[bool] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(3):
            accepted = limiter.admit("info@alice.example", 1).accept
            with lock:
                results.append(accepted)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 10
    assert _counter(sessions, "info@alice.example", "2026-12-01T22") == (10, 10)


# SQLite only: PostgreSQL's writers lock rows, never the whole database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_long_controller_write_lets_mail_through_uncounted_instead_of_waiting(
    sessions: sessionmaker[Session], limiter: SendingLimiter, database_url: str
) -> None:
    """SQLite: a writer holding the lock (a big sync) must not hold up submission; readers
    go on in WAL mode, and the count waits half a second at most."""
    _seed(sessions, mailbox_messages_per_hour=1)
    path = database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert limiter.admit("info@alice.example", 1).accept
        assert time.monotonic() - started < 1.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _counter(sessions, "info@alice.example", "2026-12-01T22") == (0, 0)
    # Once the lock is free, counting and the limit work again.
    assert limiter.admit("info@alice.example", 1).accept
    assert not limiter.admit("info@alice.example", 1).accept


def test_an_unreadable_database_defers_rather_than_lets_mail_through(tmp_path: object) -> None:
    broken = SendingLimiter(ContractLookups(SqliteDatabase("/nonexistent/db.sqlite3")))
    refused = broken.admit("info@alice.example", 1)
    assert (refused.accept, refused.reply) == (False, UNAVAILABLE)


def test_the_job_audits_each_deferral_once_and_queues_the_webhook(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    ids = _seed(sessions, mailbox_messages_per_hour=1)
    limiter.admit("info@alice.example", 1)
    limiter.admit("info@alice.example", 1)
    with unit_of_work(sessions) as session:
        assert report_limit_hits(session, now=NOW, disable_submission=None) == 1
    with unit_of_work(sessions) as session:
        assert report_limit_hits(session, now=NOW, disable_submission=None) == 0
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "sending_limit_reached")
        ).all()
        assert len(events) == 1
        (event,) = events
        assert event.resource_id == str(ids["info@alice.example"])
        assert event.resource_name == "info@alice.example"
        assert event.changes["limit"] == [None, "messages_per_hour"]
        assert event.changes["limit_value"] == [None, 1]
        # Alice's own row (a package's first row has no order: updated rows move on PostgreSQL).
        alice = session.scalar(select(Domain.customer_id).where(Domain.name == "alice.example"))
        assert event.customer_id == alice
        # Still able to send once the hour is over: submission is not switched off.
        assert session.get_one(Address, ids["info@alice.example"]).submission_disabled is False
    from postmeister.domain.audit.schemas import Event  # the webhook mapping of the event

    assert "mailbox.sending_limit_reached" in event_types(
        Event(
            resource="mailbox", resource_id="1", resource_name=None,
            action="sending_limit_reached", changes={}, customer_id=None, domain_id=None,
            occurred_at=NOW, actor_kind="system", actor_id=None, actor_label=None,
            request_id=None, client_address=None,
        )
    )  # fmt: skip


def test_the_job_can_switch_submission_off_and_forgets_old_counters(
    sessions: sessionmaker[Session], limiter: SendingLimiter
) -> None:
    ids = _seed(sessions, mailbox_messages_per_hour=1)
    limiter.admit("info@alice.example", 1)
    limiter.admit("info@alice.example", 1)
    with unit_of_work(sessions) as session:
        session.add(SendingCounter(subject="info@alice.example", period="2026-11-29", messages=9))
    with unit_of_work(sessions) as session:
        report_limit_hits(session, now=NOW, disable_submission=Passwords(fast_password_settings()))
    with unit_of_work(sessions) as session:
        assert session.get_one(Address, ids["info@alice.example"]).submission_disabled is True
        assert session.get_one(Address, ids["sales@alice.example"]).submission_disabled is False
        assert session.get(SendingCounter, ("info@alice.example", "2026-11-29")) is None
        assert session.get(SendingCounter, ("info@alice.example", "2026-12-01")) is not None
        switched = session.scalars(select(AuditEvent).where(AuditEvent.resource == "address")).all()
        assert [e.changes for e in switched][-1] == {"submission_disabled": [False, True]}

"""The outbox and the dispatcher's bookkeeping on both databases: a batch of events costs
one lookup and one insert, a rolled-back change queues nothing, a claimed delivery is not
claimed twice until its lease expires, and a mailbox's quota crossing is reported once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import WebhookSettings
from postmeister.db import unit_of_work
from postmeister.domain.audit import service as audit
from postmeister.domain.webhooks.dispatch import Attempt, PassResult, claim, deliver_due, settle
from postmeister.domain.webhooks.quota import warn_quotas
from postmeister.models import Address, MailboxUsage, WebhookDelivery
from tests.api.hosting.jsonapi import mailbox
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.hookreceiver import Receiver
from tests.webhooks.conftest import register


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _count(sessions: sessionmaker[Session]) -> int:
    with unit_of_work(sessions, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def test_a_batch_of_events_is_one_lookup_and_one_insert(
    client: TestClient,
    sessions: sessionmaker[Session],
    engine: Engine,
    receiver: Receiver,
    alice: Tenant,
    admin_auth: dict[str, str],
) -> None:
    register(client, alice.auth, receiver.url(), ["address.created", "address.deleted"])
    register(client, admin_auth, receiver.url(), ["address.created"])
    with unit_of_work(sessions) as session:
        events = [
            audit.event(
                resource="address",
                resource_id=n,
                action="created",
                customer_id=alice.customer_id,
                name=f"a{n}@alice.example",
            )
            for n in range(1, 2001)
        ]
        with statements(engine) as seen:
            audit.record_many(session, events)
    webhook_statements = [s for s in seen if "webhook" in s]
    assert len(webhook_statements) == 2, webhook_statements  # one SELECT, one INSERT
    assert _count(sessions) == 4000  # each event to both endpoints


def test_a_change_that_rolls_back_queues_nothing(
    client: TestClient, sessions: sessionmaker[Session], receiver: Receiver, alice: Tenant
) -> None:
    register(client, alice.auth, receiver.url(), ["address.created"])

    def failing_change() -> None:
        with unit_of_work(sessions) as session:
            audit.record(
                session,
                audit.event(
                    resource="address",
                    resource_id=1,
                    action="created",
                    customer_id=alice.customer_id,
                ),
            )
            raise RuntimeError("the change fails after its event was recorded")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _count(sessions) == 0


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_expires(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    register(client, alice.auth, receiver.url(), ["address.created"])
    mailbox(client, alice, "info", password=STRONG_PASSWORD)
    start = _now()
    (first,) = claim(sessions, hooks, start)
    assert claim(sessions, hooks, start) == []  # another dispatcher finds nothing
    # Its controller died while sending: once the lease is over, it is due again.
    later = start + dt.timedelta(seconds=hooks.lease_seconds + hooks.timeout_seconds + 1)
    (again,) = claim(sessions, hooks, later)
    assert again.message_id == first.message_id
    assert again.lease_id != first.lease_id
    # The first dispatcher's late result does not count: the lease is no longer its own.
    settle(sessions, hooks, first, Attempt(200, None), later, PassResult())
    with unit_of_work(sessions, write=False) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts, row.lease_id) == ("pending", 0, again.lease_id)
    # The second one died too; after its lease the delivery goes out, once.
    deliver_due(sessions, hooks, now=later + dt.timedelta(seconds=3600))
    assert [r.headers["webhook-id"] for r in receiver.received] == [first.message_id]
    with unit_of_work(sessions, write=False) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts) == ("delivered", 1)


def test_a_quota_crossing_is_reported_once_per_crossing(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    register(client, alice.auth, receiver.url(), ["mailbox.quota_warning"])
    info = mailbox(client, alice, "info", password=STRONG_PASSWORD, quota={"limit": 1000})

    def use(amount: int) -> int:
        with unit_of_work(sessions) as session:
            usage = session.get(MailboxUsage, "info@alice.example")
            if usage is None:
                session.add(MailboxUsage(username="info@alice.example", bytes=amount))
            else:
                usage.bytes = amount
            session.flush()
            return warn_quotas(session, now=_now())

    assert use(899) == 0
    assert use(900) == 1
    assert use(950) == 0  # still above: reported already
    assert use(100) == 0  # below again: forgotten
    assert use(990) == 1  # a new crossing

    deliver_due(sessions, hooks)
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b["type"] for b in bodies] == ["mailbox.quota_warning"] * 2
    assert bodies[0]["data"]["id"] == info["id"]
    assert bodies[0]["data"]["name"] == "info@alice.example"
    assert bodies[0]["data"]["changes"]["usage_percent"] == [None, 90.0]
    assert bodies[1]["data"]["changes"]["usage_bytes"] == [None, 990]
    with unit_of_work(sessions, write=False) as session:
        assert session.scalar(select(Address.quota_bytes).where(Address.id == int(info["id"])))

"""Deliveries to a real HTTPS receiver on loopback, on both databases: signed the Standard
Webhooks way, in order per resource, retried with backoff, the endpoint disabled after the
last failed attempt, only ever to the endpoints that may see the event, and refused when the
URL leads into a private network."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from postmeister.config import WebhookSettings
from postmeister.db import unit_of_work
from postmeister.domain.webhooks.dispatch import deliver_due
from postmeister.models import AuditEvent
from tests.api.hosting.jsonapi import mailbox, patch
from tests.support import secrets
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant
from tests.support.hookreceiver import Received, Receiver
from tests.support.processes import free_port
from tests.webhooks.conftest import deliveries, jsonapi, patch_webhook, register


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _endpoint(client: TestClient, auth: dict[str, str], url: str, types: list[str]) -> Any:
    response = register(client, auth, url, types)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _independent_signature(secret: str, received: Received) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}."
    digest = hmac.new(key, signed.encode() + received.body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_deliveries_are_signed_and_their_signatures_verify(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    endpoint = _endpoint(
        client, alice.auth, receiver.url(), ["address.created", "address.password_changed"]
    )
    secret = endpoint["attributes"]["secret"]
    assert secret.startswith("whsec_")
    info = mailbox(client, alice, "info", password=STRONG_PASSWORD)
    assert patch(client, alice, info["id"], {"password": OTHER_STRONG_PASSWORD}).status_code == 200
    assert receiver.received == []  # nothing is sent inside the request

    outcome = deliver_due(sessions, hooks)

    assert outcome.delivered == 2
    got = receiver.received
    assert [json.loads(r.body)["type"] for r in got] == [
        "address.created",
        "address.password_changed",
    ]
    for request in got:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"].startswith("msg_")
        assert abs(int(request.headers["webhook-timestamp"]) - _now().timestamp()) < 60
        # The maintained library and our own HMAC agree.
        assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == info["id"]
        assert request.headers["webhook-signature"] == _independent_signature(secret, request)
        # Tampering is noticed.
        with pytest.raises(Exception, match="signature"):
            Webhook(secret).verify(request.body.replace(b"info", b"evil"), request.headers)
        for value in (secret, STRONG_PASSWORD, OTHER_STRONG_PASSWORD):
            assert value.encode() not in request.body
    changed = json.loads(got[1].body)["data"]
    assert changed["changes"]["password"] == ["[redacted]", "[redacted]"]
    assert changed["name"] == "info@alice.example"
    assert changed["actor"]["kind"] == "token"
    log = deliveries(client, alice.auth, endpoint["id"])
    assert [d["attributes"]["status"] for d in log] == ["delivered", "delivered"]
    assert [d["attributes"]["attempts"] for d in log] == [1, 1]
    assert {d["attributes"]["message_id"] for d in log} == {r.headers["webhook-id"] for r in got}
    assert deliver_due(sessions, hooks).delivered == 0  # delivered once, not again


def test_the_changes_of_one_address_arrive_in_order_even_across_a_failure(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    _endpoint(
        client,
        alice.auth,
        receiver.url(),
        ["address.created", "address.updated", "address.deleted"],
    )
    info = mailbox(client, alice, "info", password=STRONG_PASSWORD)
    other = mailbox(client, alice, "other", password=STRONG_PASSWORD)
    for number in range(1, 4):
        assert patch(client, alice, info["id"], {"description": f"v{number}"}).status_code == 200
    deleted = client.delete(f"/email-addresses/{info['id']}", headers=jsonapi(alice.auth))
    assert deleted.status_code == 204
    receiver.answer(500, 204)  # the first attempt fails, everything after succeeds
    start = _now()

    deliver_due(sessions, hooks, now=start)

    first = [json.loads(r.body)["data"] for r in receiver.received]
    # info's creation failed, so none of info's later changes went out; other's did.
    assert [(d["id"], d["action"]) for d in first] == [
        (info["id"], "created"),
        (other["id"], "created"),
    ]
    deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=2))
    after = [json.loads(r.body)["data"] for r in receiver.received[2:]]
    assert [(d["action"], d["changes"].get("description", [None, None])[1]) for d in after] == [
        ("created", None),
        ("updated", "v1"),
        ("updated", "v2"),
        ("updated", "v3"),
        ("deleted", None),
    ]
    assert {d["id"] for d in after} == {info["id"]}


def test_a_failing_receiver_gets_retries_with_backoff_then_the_endpoint_is_disabled(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    endpoint = _endpoint(client, alice.auth, receiver.url(), ["address.created"])
    receiver.answer(500)
    mailbox(client, alice, "info", password=STRONG_PASSWORD)
    start = _now()

    deliver_due(sessions, hooks, now=start)
    (first,) = deliveries(client, alice.auth, endpoint["id"])
    attributes = first["attributes"]
    assert attributes["status"] == "pending"
    assert attributes["attempts"] == 1
    assert attributes["last_status"] == 500
    assert attributes["last_error"].startswith("HTTP 500")
    due = dt.datetime.fromisoformat(attributes["next_attempt_at"])
    assert due - start == dt.timedelta(seconds=1)  # backoff_seconds

    deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=0.5))
    assert len(receiver.received) == 1  # not yet due
    deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=1))
    (second,) = deliveries(client, alice.auth, endpoint["id"])
    assert second["attributes"]["attempts"] == 2
    assert dt.datetime.fromisoformat(
        second["attributes"]["next_attempt_at"]
    ) == start + dt.timedelta(seconds=1 + 2)  # doubled
    deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=3))

    assert len(receiver.received) == 3  # max_attempts
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # same message
    (last,) = deliveries(client, alice.auth, endpoint["id"])
    assert last["attributes"]["status"] == "failed"
    assert last["attributes"]["attempts"] == 3
    shown = client.get(f"/webhooks/{endpoint['id']}", headers=jsonapi(alice.auth)).json()["data"]
    assert shown["attributes"]["enabled"] is False
    assert "failed 3 times" in shown["attributes"]["disabled_reason"]
    assert shown["attributes"]["consecutive_failures"] == 3
    with unit_of_work(sessions, write=False) as session:
        disabled = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource == "webhook", AuditEvent.action == "disabled"
            )
        ).all()
        assert [(e.resource_id, e.changes["enabled"]) for e in disabled] == [
            (endpoint["id"], [True, False])
        ]
    # Disabled: later changes are not queued for it; enabling again clears the count.
    mailbox(client, alice, "later", password=STRONG_PASSWORD)
    deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=60))
    assert len(receiver.received) == 3
    enabled = patch_webhook(client, alice.auth, endpoint["id"], {"enabled": True})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["data"]["attributes"]["consecutive_failures"] == 0
    assert enabled.json()["data"]["attributes"]["disabled_reason"] is None


def test_a_receiver_that_is_down_gets_the_retries_then_the_endpoint_is_disabled(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    alice: Tenant,
) -> None:
    down = f"https://127.0.0.1:{free_port()}/hook"  # nothing listens there
    endpoint = _endpoint(client, alice.auth, down, ["address.created"])
    mailbox(client, alice, "info", password=STRONG_PASSWORD)
    start = _now()
    for seconds in (0, 1, 3):
        deliver_due(sessions, hooks, now=start + dt.timedelta(seconds=seconds))
    (log,) = deliveries(client, alice.auth, endpoint["id"])
    assert log["attributes"]["status"] == "failed"
    assert log["attributes"]["attempts"] == 3
    assert log["attributes"]["last_status"] is None
    assert "refused" in log["attributes"]["last_error"]
    shown = client.get(f"/webhooks/{endpoint['id']}", headers=jsonapi(alice.auth)).json()["data"]
    assert shown["attributes"]["enabled"] is False


def test_an_endpoint_hears_only_of_the_events_it_may_see(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
    bob: Tenant,
    admin_auth: dict[str, str],
) -> None:
    types = ["address.created"]
    _endpoint(client, alice.auth, receiver.url("/alice"), types)
    _endpoint(client, bob.auth, receiver.url("/bob"), types)
    _endpoint(client, admin_auth, receiver.url("/admin"), types)
    mailbox(client, alice, "info", password=STRONG_PASSWORD)
    mailbox(client, bob, "info", password=STRONG_PASSWORD)
    mailbox(client, bob, "sales", password=STRONG_PASSWORD)

    deliver_due(sessions, hooks)

    heard: dict[str, list[str]] = {}
    for request in receiver.received:
        heard.setdefault(request.path, []).append(json.loads(request.body)["data"]["name"])
    assert heard == {
        "/alice": ["info@alice.example"],
        "/bob": ["info@bob.example", "sales@bob.example"],
        "/admin": ["info@alice.example", "info@bob.example", "sales@bob.example"],
    }


def test_delivery_refuses_a_url_that_now_leads_into_a_private_network(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
) -> None:
    """Registered while loopback was allowed; the default rule holds again at delivery."""
    endpoint = _endpoint(client, alice.auth, receiver.url(), ["address.created"])
    mailbox(client, alice, "info", password=STRONG_PASSWORD)
    strict = hooks.model_copy(update={"allow_private_networks": False})

    deliver_due(sessions, strict)

    assert receiver.received == []
    (log,) = deliveries(client, alice.auth, endpoint["id"])
    assert log["attributes"]["status"] == "pending"
    assert "non-public address 127.0.0.1" in log["attributes"]["last_error"]


def test_credentials_in_the_url_are_sent_but_never_logged_or_in_the_audit_trail(
    client: TestClient,
    sessions: sessionmaker[Session],
    hooks: WebhookSettings,
    receiver: Receiver,
    alice: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    password = "receiver-password-7f3a9c"
    secrets.remember(password, "webhook URL password")
    url = receiver.url().replace("https://", f"https://hooks:{password}@")
    endpoint = _endpoint(client, alice.auth, url, ["address.created"])
    mailbox(client, alice, "info", password=STRONG_PASSWORD)

    deliver_due(sessions, hooks)

    (got,) = receiver.received
    expected = base64.b64encode(f"hooks:{password}".encode()).decode()
    assert got.headers["authorization"] == f"Basic {expected}"
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if password in r.getMessage()]  # the client's log
    with unit_of_work(sessions, write=False) as session:
        (created,) = session.scalars(
            select(AuditEvent).where(AuditEvent.resource == "webhook")
        ).all()
        assert created.resource_id == endpoint["id"]
        assert password not in repr(created.changes)
        assert password not in (created.resource_name or "")
        assert created.changes["url"] == [None, receiver.url()]

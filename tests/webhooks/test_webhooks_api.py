"""`/webhooks` over HTTP on both databases: the secret shown once and redacted in the trail,
paging, the tenancy matrix (another customer's endpoint is a 404, as is a missing one),
domain-limited and read-only tokens, event types, and the SSRF rule at registration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings, WebhookSettings
from postmeister.db import unit_of_work
from postmeister.models import AuditEvent
from tests.support.factories import Tenant, make_token
from tests.support.hookreceiver import Receiver
from tests.webhooks.conftest import deliveries, jsonapi, patch_webhook, register


def test_the_secret_is_shown_once_and_never_in_the_audit_trail(
    client: TestClient, sessions: sessionmaker[Session], receiver: Receiver, alice: Tenant
) -> None:
    created = register(client, alice.auth, receiver.url(), ["address.created"])
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    secret = data["attributes"]["secret"]
    assert created.headers["location"] == f"/webhooks/{data['id']}"
    assert data["attributes"]["customer_id"] == alice.customer_id
    assert data["attributes"]["enabled"] is True
    shown = client.get(f"/webhooks/{data['id']}", headers=jsonapi(alice.auth))
    assert shown.status_code == 200
    assert "secret" not in shown.json()["data"]["attributes"]
    listed = client.get("/webhooks", headers=jsonapi(alice.auth)).json()
    assert ["secret" in item["attributes"] for item in listed["data"]] == [False]
    changed = patch_webhook(client, alice.auth, data["id"], {"event_types": ["address.deleted"]})
    assert changed.json()["data"]["attributes"]["event_types"] == ["address.deleted"]
    assert client.delete(f"/webhooks/{data['id']}", headers=jsonapi(alice.auth)).status_code == 204
    with unit_of_work(sessions, write=False) as session:
        trail = session.scalars(
            select(AuditEvent).where(AuditEvent.resource == "webhook").order_by(AuditEvent.id)
        ).all()
        assert [e.action for e in trail] == ["created", "updated", "deleted"]
        assert trail[0].changes["secret"] == [None, "[redacted]"]
        assert trail[1].changes == {"event_types": [["address.created"], ["address.deleted"]]}
        for event in trail:
            assert secret not in repr(event.changes)
            assert event.customer_id == alice.customer_id


def test_the_list_is_keyset_paged(client: TestClient, receiver: Receiver, alice: Tenant) -> None:
    ids = [
        register(client, alice.auth, receiver.url(f"/{n}"), ["address.created"]).json()["data"][
            "id"
        ]
        for n in range(3)
    ]
    first = client.get("/webhooks?page[size]=2", headers=jsonapi(alice.auth)).json()
    assert [item["id"] for item in first["data"]] == ids[:2]
    following = client.get(first["links"]["next"], headers=jsonapi(alice.auth)).json()
    assert [item["id"] for item in following["data"]] == ids[2:]
    assert following["links"]["next"] is None


def test_another_customers_endpoint_is_a_404_like_a_missing_one(
    client: TestClient, receiver: Receiver, alice: Tenant, bob: Tenant
) -> None:
    mine = register(client, alice.auth, receiver.url(), ["address.created"]).json()["data"]["id"]
    body = {"data": {"type": "webhook", "id": mine, "attributes": {"enabled": False}}}
    for webhook_id in (mine, "999999"):
        body["data"]["id"] = webhook_id
        answers = [
            client.get(f"/webhooks/{webhook_id}", headers=jsonapi(bob.auth)),
            client.patch(f"/webhooks/{webhook_id}", json=body, headers=jsonapi(bob.auth)),
            client.delete(f"/webhooks/{webhook_id}", headers=jsonapi(bob.auth)),
            client.get(f"/webhooks/{webhook_id}/deliveries", headers=jsonapi(bob.auth)),
        ]
        assert [a.status_code for a in answers] == [404, 404, 404, 404], webhook_id
    assert client.get("/webhooks", headers=jsonapi(bob.auth)).json()["data"] == []
    # Bob cannot register one for Alice either.
    theirs = register(
        client, bob.auth, receiver.url(), ["address.created"], customer_id=alice.customer_id
    )
    assert theirs.status_code == 404
    # And Alice's is untouched.
    shown = client.get(f"/webhooks/{mine}", headers=jsonapi(alice.auth)).json()["data"]
    assert shown["attributes"]["enabled"] is True


def test_admins_see_every_endpoint_and_may_register_one_for_a_customer(
    client: TestClient,
    receiver: Receiver,
    alice: Tenant,
    admin_auth: dict[str, str],
) -> None:
    own = register(client, admin_auth, receiver.url(), ["sync_run.failed"]).json()["data"]
    assert own["attributes"]["customer_id"] is None
    for_alice = register(
        client, admin_auth, receiver.url(), ["address.created"], customer_id=alice.customer_id
    ).json()["data"]
    assert for_alice["attributes"]["customer_id"] == alice.customer_id
    listed = client.get("/webhooks", headers=jsonapi(admin_auth)).json()["data"]
    assert [item["id"] for item in listed] == [own["id"], for_alice["id"]]
    seen_by_alice = client.get("/webhooks", headers=jsonapi(alice.auth)).json()["data"]
    assert [item["id"] for item in seen_by_alice] == [for_alice["id"]]
    missing = register(client, admin_auth, receiver.url(), ["address.created"], customer_id=9999)
    assert missing.status_code == 404


def test_a_domain_limited_token_sees_no_webhooks_and_a_read_only_token_cannot_write(
    client: TestClient, sessions: sessionmaker[Session], receiver: Receiver, alice: Tenant
) -> None:
    mine = register(client, alice.auth, receiver.url(), ["address.created"]).json()["data"]["id"]
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["alice.example"])
    }
    assert client.get("/webhooks", headers=jsonapi(limited)).json()["data"] == []
    assert client.get(f"/webhooks/{mine}", headers=jsonapi(limited)).status_code == 404
    assert register(client, limited, receiver.url(), ["address.created"]).status_code == 404
    reader = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, read_only=True)
    }
    assert client.get(f"/webhooks/{mine}", headers=jsonapi(reader)).status_code == 200
    assert register(client, reader, receiver.url(), ["address.created"]).status_code == 403
    assert patch_webhook(client, reader, mine, {"enabled": False}).status_code == 403
    assert client.delete(f"/webhooks/{mine}", headers=jsonapi(reader)).status_code == 403
    assert deliveries(client, reader, mine) == []


@pytest.mark.parametrize("event_types", [[], ["address.exploded"], ["address.created", "nonsense"]])
def test_unknown_or_no_event_types_are_refused(
    client: TestClient, receiver: Receiver, alice: Tenant, event_types: list[str]
) -> None:
    answer = register(client, alice.auth, receiver.url(), event_types)
    assert answer.status_code == 422, answer.text


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    """The default webhook settings: private networks refused, the system's CAs."""
    quiet = settings.model_copy(
        update={
            "scheduler": SchedulerSettings(enabled=False),
            "webhooks": WebhookSettings(enabled=False),
        }
    )
    with TestClient(create_app(quiet), base_url="https://testserver") as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1:8443/hook", "loopback"),
        ("https://10.1.2.3/hook", "private-network"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:192.168.0.1]/hook", "private-network"),
        ("http://hooks.example.com/hook", "https://"),
        ("not a url", "https://"),
    ],
)
def test_a_url_into_private_networks_or_without_https_is_refused_at_registration(
    strict_client: TestClient, alice: Tenant, url: str, reason: str
) -> None:
    answer = register(strict_client, alice.auth, url, ["address.created"])
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert reason in error["detail"]
    assert strict_client.get("/webhooks", headers=jsonapi(alice.auth)).json()["data"] == []


def test_a_url_change_passes_the_same_rule(
    strict_client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    from postmeister.domain.access import Actor
    from postmeister.domain.webhooks import service

    with unit_of_work(sessions) as session:
        # Registered directly (as if DNS pointed elsewhere then).
        endpoint = service.create_endpoint(
            session,
            Actor.for_customer(alice.customer_id),
            url=service.VettedUrl("https://hooks.example.com/hook"),
            event_types=["address.created"],
        ).endpoint
        webhook_id = str(endpoint.id)
    answer = patch_webhook(strict_client, alice.auth, webhook_id, {"url": "https://127.0.0.1/"})
    assert answer.status_code == 422
    shown = strict_client.get(f"/webhooks/{webhook_id}", headers=jsonapi(alice.auth))
    assert shown.json()["data"]["attributes"]["url"] == "https://hooks.example.com/hook"

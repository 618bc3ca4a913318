"""`/email-addresses/{id}/sending-limits`: defaults from the package, own limits within it,
the counts every mail node writes, and tenancy (another customer's mailbox is not found)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.models import AuditEvent, SendingCounter
from tests.api.hosting.jsonapi import JSONAPI, forward, mailbox
from tests.support.factories import Tenant, make_token


def _limits(client: TestClient, auth: dict[str, str], address_id: str) -> httpx.Response:
    response: httpx.Response = client.get(
        f"/email-addresses/{address_id}/sending-limits", headers={**auth, "Accept": JSONAPI}
    )
    return response


def _patch(
    client: TestClient, auth: dict[str, str], address_id: str, attributes: dict[str, Any]
) -> httpx.Response:
    document = {"data": {"type": "sending-limits", "id": address_id, "attributes": attributes}}
    response: httpx.Response = client.patch(
        f"/email-addresses/{address_id}/sending-limits",
        json=document,
        headers={**auth, "Content-Type": JSONAPI, "Accept": JSONAPI},
    )
    return response


def test_a_new_mailbox_has_its_packages_default_limits_and_no_usage(
    client: TestClient, alice: Tenant
) -> None:
    box = mailbox(client, alice, "info")
    response = _limits(client, alice.auth, box["id"])
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["address"] == "info@alice.example"
    assert attributes["messages_per_hour"] is None  # no own limit
    assert attributes["effective"] == {
        "messages_per_hour": 200,
        "messages_per_day": 1000,
        "recipients_per_hour": 500,
        "recipients_per_day": 2500,
    }
    assert attributes["domain_limits"] == dict.fromkeys(attributes["effective"])
    assert attributes["usage"] == {
        "messages_this_hour": 0,
        "recipients_this_hour": 0,
        "messages_today": 0,
        "recipients_today": 0,
    }


def test_usage_shows_what_the_mail_nodes_counted_this_hour_and_today(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    box = mailbox(client, alice, "info")
    # The clock of tests/api/hosting/conftest.py: 2026-03-10 11:00 UTC.
    with unit_of_work(sessions) as session:
        session.add_all(
            [
                SendingCounter(subject="info@alice.example", period="2026-03-10T11",
                               messages=3, recipients=7),
                SendingCounter(subject="info@alice.example", period="2026-03-10",
                               messages=5, recipients=9),
                SendingCounter(subject="info@alice.example", period="2026-03-10T10",
                               messages=50, recipients=50),
                SendingCounter(subject="@alice.example", period="2026-03-10",
                               messages=6, recipients=11),
            ]
        )  # fmt: skip
    attributes = _limits(client, alice.auth, box["id"]).json()["data"]["attributes"]
    assert attributes["usage"] == {
        "messages_this_hour": 3,
        "recipients_this_hour": 7,
        "messages_today": 5,
        "recipients_today": 9,
    }
    assert attributes["domain_usage"]["messages_today"] == 6
    assert attributes["domain_usage"]["messages_this_hour"] == 0


def test_a_customer_tightens_a_mailbox_but_cannot_lift_it_above_the_package(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    box = mailbox(client, alice, "info")
    tightened = _patch(client, alice.auth, box["id"], {"messages_per_hour": 5})
    assert tightened.status_code == 200, tightened.text
    attributes = tightened.json()["data"]["attributes"]
    assert attributes["messages_per_hour"] == 5
    assert attributes["effective"]["messages_per_hour"] == 5
    assert attributes["effective"]["messages_per_day"] == 1000  # still the package's

    lifted = _patch(
        client, alice.auth, box["id"], {"messages_per_hour": 201, "recipients_per_day": 10**6}
    )
    assert lifted.status_code == 422, lifted.text
    pointers = {e["source"]["pointer"] for e in lifted.json()["errors"]}
    assert pointers == {
        "/data/attributes/messages_per_hour",
        "/data/attributes/recipients_per_day",
    }
    # Nothing of the refused change was kept.
    assert _limits(client, alice.auth, box["id"]).json()["data"]["attributes"][
        "messages_per_hour"
    ] == 5

    back = _patch(client, alice.auth, box["id"], {"messages_per_hour": None})
    assert back.json()["data"]["attributes"]["effective"]["messages_per_hour"] == 200
    with unit_of_work(sessions) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.resource == "sending_limits")
        ).all()
        assert [e.changes for e in events] == [
            {"messages_per_hour": [None, 5]},
            {"messages_per_hour": [5, None]},
        ]


def test_an_admin_may_lift_a_mailbox_above_its_package(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    box = mailbox(client, alice, "news")
    response = _patch(client, admin_auth, box["id"], {"messages_per_hour": 5000})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["effective"]["messages_per_hour"] == 5000


def test_bad_values_are_refused_by_name(client: TestClient, alice: Tenant) -> None:
    box = mailbox(client, alice, "info")
    for value in (-1, 2**31, "10", 1.5, True):
        response = _patch(client, alice.auth, box["id"], {"messages_per_day": value})
        assert response.status_code in (400, 422), (value, response.text)
    unknown = _patch(client, alice.auth, box["id"], {"bytes_per_hour": 1})
    assert unknown.status_code in (400, 422), unknown.text


def test_another_customers_mailbox_is_not_found_to_read_or_change(
    client: TestClient, alice: Tenant, bob: Tenant
) -> None:
    theirs = mailbox(client, bob, "ceo")
    assert _limits(client, alice.auth, theirs["id"]).status_code == 404
    response = _patch(client, alice.auth, theirs["id"], {"messages_per_hour": 0})
    assert response.status_code == 404
    # Bob's mailbox kept its limits.
    attributes = _limits(client, bob.auth, theirs["id"]).json()["data"]["attributes"]
    assert attributes["messages_per_hour"] is None


def test_a_forward_has_no_sending_limits(client: TestClient, alice: Tenant) -> None:
    alias = forward(client, alice, "sales", ["someone@elsewhere.example"])
    assert _limits(client, alice.auth, alias["id"]).status_code == 404


def test_a_read_only_token_reads_but_does_not_change(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    box = mailbox(client, alice, "info")
    token = make_token(sessions, customer_id=alice.customer_id, read_only=True)
    reader = {"Authorization": f"Bearer {token}"}
    assert _limits(client, reader, box["id"]).status_code == 200
    assert _patch(client, reader, box["id"], {"messages_per_hour": 1}).status_code == 403


def test_packages_show_and_change_their_sending_limits(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    created = client.post(
        "/packages",
        json={
            "data": {
                "type": "package",
                "attributes": {
                    "name": "bulk",
                    "customer_id": alice.customer_id,
                    "domain_messages_per_day": 10000,
                    "mailbox_messages_per_hour": None,
                },
            }
        },
        headers={**admin_auth, "Content-Type": JSONAPI, "Accept": JSONAPI},
    )
    assert created.status_code == 201, created.text
    attributes = created.json()["data"]["attributes"]
    assert attributes["mailbox_messages_per_hour"] is None  # lifted on purpose
    assert attributes["mailbox_messages_per_day"] == 1000  # left out: the default
    assert attributes["domain_messages_per_day"] == 10000
    assert attributes["domain_messages_per_hour"] is None


def test_a_change_of_a_packages_sending_limit_is_in_the_audit_trail(
    client: TestClient,
    alice: Tenant,
    admin_auth: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    packages = client.get("/packages", headers={**admin_auth, "Accept": JSONAPI}).json()["data"]
    (package,) = [p for p in packages if p["attributes"]["customer_id"] == alice.customer_id]
    changed = client.patch(
        f"/packages/{package['id']}",
        json={
            "data": {
                "type": "package",
                "id": package["id"],
                "attributes": {"mailbox_messages_per_hour": 20},
            }
        },
        headers={**admin_auth, "Content-Type": JSONAPI, "Accept": JSONAPI},
    )
    assert changed.status_code == 200, changed.text
    with sessions() as session:
        (event,) = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource == "package", AuditEvent.action == "updated"
            )
        ).all()
    assert event.changes == {"mailbox_messages_per_hour": [200, 20]}

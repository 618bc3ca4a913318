"""Mail nodes and mailbox homes through the admin API (issue 17): every write path that
creates a mailbox places it on the least used active node; a customer sees none of it."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.models import Address, AuditEvent, MailNode
from postmeister.sync.service import sync_document
from tests.api.hosting.jsonapi import JSONAPI, mailbox
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"


def _headers(auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "Content-Type": JSONAPI, "Accept": JSONAPI}


def register(client: TestClient, auth: dict[str, str], name: str, **attributes: Any) -> Any:
    document = {
        "data": {
            "type": "mail-node",
            "attributes": {"name": name, "address": f"10.9.0.{len(name)}", **attributes},
        }
    }
    return client.post("/mail-nodes", json=document, headers=_headers(auth))


def homes(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    with sessions() as session:
        rows = session.execute(
            select(Address.address, MailNode.name)
            .outerjoin(MailNode, MailNode.id == Address.home_node_id)
            .where(Address.kind == "mailbox")
        )
        return dict(rows.all())


def move(client: TestClient, auth: dict[str, str], address_id: str, node: str) -> Any:
    document = {"data": {"type": "home-node", "id": address_id, "attributes": {"home_node": node}}}
    return client.patch(
        f"/email-addresses/{address_id}/home-node", json=document, headers=_headers(auth)
    )


def test_without_nodes_a_mailbox_stays_unplaced(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    mailbox(client, alice, "info")
    assert homes(sessions) == {"info@alice.example": None}


def test_every_create_path_places_on_the_least_used_active_node(
    client: TestClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    alice: Tenant,
    admin_auth: dict[str, str],
) -> None:
    assert register(client, admin_auth, "node2").status_code == 201
    assert register(client, admin_auth, "node1").status_code == 201
    # Hosting dialect: a tie goes to the first name, then the other node is less used.
    mailbox(client, alice, "a")
    mailbox(client, alice, "b")
    # Controller dialect.
    body = {"name": "c", "domain": alice.domain, "password": STRONG_PASSWORD}
    assert client.post("/mail/account/", json=body, headers=alice.auth).status_code == 201
    # A forward has no home.
    forward = {"name": "f", "domain": alice.domain, "to": "a@alice.example"}
    assert client.post("/mail/alias/", data=forward, headers=alice.auth).status_code == 201
    assert homes(sessions) == {
        "a@alice.example": "node1",
        "b@alice.example": "node2",
        "c@alice.example": "node1",
    }
    # A draining node takes no new mailbox.
    drain = {"data": {"type": "mail-node", "id": "node2", "attributes": {"state": "draining"}}}
    answer = client.patch("/mail-nodes/node2", json=drain, headers=_headers(admin_auth))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["attributes"] == {
        "name": "node2",
        "address": "10.9.0.5",
        "lmtp_port": 24,
        "state": "draining",
        "mailboxes": 1,
    }
    mailbox(client, alice, "d")
    assert homes(sessions)["d@alice.example"] == "node1"
    # The sync writer spreads a batch over the active nodes the same way.
    client.patch(
        "/mail-nodes/node2",
        json={"data": {"type": "mail-node", "id": "node2", "attributes": {"state": "active"}}},
        headers=_headers(admin_auth),
    )
    accounts = [{"name": name, "password": MD5} for name in ("s1", "s2", "s3", "s4")]
    raw = json.dumps({"sync.example": {"account": accounts}}).encode()
    add_domain_to(sessions, alice, "sync.example")
    with unit_of_work(sessions) as session:
        outcome = sync_document(
            session, customer_id=alice.customer_id, raw=raw, settings=settings.sync
        )
    assert outcome.result == "applied", outcome.errors
    placed = homes(sessions)
    synced = [placed[f"{name}@sync.example"] for name in ("s1", "s2", "s3", "s4")]
    # node1 held 3, node2 1: node2 takes two, then they alternate (tie: node1 first).
    assert sorted(str(home) for home in synced) == ["node1", "node2", "node2", "node2"]
    listing = client.get("/mail-nodes", headers=_headers(admin_auth)).json()["data"]
    assert [(n["id"], n["attributes"]["mailboxes"]) for n in listing] == [
        ("node1", 4),
        ("node2", 4),
    ]


def test_an_admin_shows_and_switches_a_home_and_the_switch_is_audited(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant, admin_auth: dict[str, str]
) -> None:
    register(client, admin_auth, "node1")
    info = mailbox(client, alice, "info")
    register(client, admin_auth, "node2")
    shown = client.get(f"/email-addresses/{info['id']}/home-node", headers=_headers(admin_auth))
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"]["attributes"] == {
        "address": "info@alice.example",
        "home_node": "node1",
    }
    moved = move(client, admin_auth, info["id"], "node2")
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["attributes"]["home_node"] == "node2"
    assert homes(sessions) == {"info@alice.example": "node2"}
    with sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.resource == "mailbox_placement")
        ).one()
    assert event.customer_id is None  # the operator's trail, not the customer's
    assert event.resource_name == "info@alice.example"
    assert "node1" in json.dumps(event.changes) and "node2" in json.dumps(event.changes)
    assert move(client, admin_auth, info["id"], "nowhere").status_code == 404
    unknown = client.get("/email-addresses/999999/home-node", headers=_headers(admin_auth))
    assert unknown.status_code == 404


def test_a_node_name_is_unique_and_well_formed(
    client: TestClient, admin_auth: dict[str, str]
) -> None:
    assert register(client, admin_auth, "node1").status_code == 201
    assert register(client, admin_auth, "node1").status_code == 409
    refused = register(client, admin_auth, "Node_1")
    assert refused.status_code == 422
    # A JSON:API error document, like every other resource of the admin API.
    assert refused.headers["content-type"].startswith("application/vnd.api+json")
    assert refused.json()["errors"][0]["status"] == "422"
    assert register(client, admin_auth, "node3", lmtp_port=70000).status_code == 422


def test_a_customer_can_neither_see_nor_change_placement(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant, admin_auth: dict[str, str]
) -> None:
    register(client, admin_auth, "node1")
    info = mailbox(client, alice, "info")
    mine = _headers(alice.auth)
    assert client.get("/mail-nodes", headers=mine).status_code == 404
    assert register(client, alice.auth, "node9").status_code == 404
    assert client.get(f"/email-addresses/{info['id']}/home-node", headers=mine).status_code == 404
    assert move(client, alice.auth, info["id"], "node1").status_code == 404
    # Nor does the address document show a home.
    document = client.get(f"/email-addresses/{info['id']}", headers=mine).json()
    assert "node1" not in json.dumps(document)
    with sessions() as session:
        assert session.scalar(select(MailNode.name)) == "node1"

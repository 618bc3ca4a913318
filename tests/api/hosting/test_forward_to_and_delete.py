"""POST/DELETE /email-addresses/{id}/forward-to/{target} and DELETE /email-addresses/{id}."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.models import Address, AppPassword, Autoresponder
from tests.api.hosting.jsonapi import attributes_of, codes, forward, get, mailbox, patch
from tests.support.factories import Tenant
from tests.support.snapshot import snapshot


def test_add_and_remove_single_targets(client: TestClient, alice: Tenant) -> None:
    office = forward(client, alice, "office", ["weiterleitungsziel@beispielkunde.info"])
    base = f"/email-addresses/{office['id']}/forward-to"
    added = client.post(f"{base}/Second@Beispielkunde.info", headers=alice.auth)
    assert added.status_code == 200, added.text
    assert attributes_of(added)["forward_to"] == [
        "weiterleitungsziel@beispielkunde.info",
        "second@beispielkunde.info",
    ]
    again = client.post(f"{base}/second@beispielkunde.info", headers=alice.auth)
    assert attributes_of(again)["forward_to"] == attributes_of(added)["forward_to"]

    removed = client.delete(f"{base}/weiterleitungsziel@beispielkunde.info", headers=alice.auth)
    assert removed.status_code == 200
    assert attributes_of(removed)["forward_to"] == ["second@beispielkunde.info"]
    assert attributes_of(get(client, alice, office["id"]))["forward_to"] == [
        "second@beispielkunde.info"
    ]


def test_a_mailbox_gains_and_loses_extra_recipients(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    base = f"/email-addresses/{info['id']}/forward-to"
    assert attributes_of(client.post(f"{base}/copy@elsewhere.example", headers=alice.auth))[
        "forward_to"
    ] == ["copy@elsewhere.example"]
    assert (
        attributes_of(client.delete(f"{base}/copy@elsewhere.example", headers=alice.auth))[
            "forward_to"
        ]
        == []
    )


def test_forward_target_rules(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    office = forward(client, alice, "office", ["only@elsewhere.example"])
    base = f"/email-addresses/{office['id']}/forward-to"
    before = snapshot(sessions)
    last = client.delete(f"{base}/only@elsewhere.example", headers=alice.auth)
    assert last.status_code == 422
    assert codes(last) == ["required"]
    missing = client.delete(f"{base}/nobody@elsewhere.example", headers=alice.auth)
    assert missing.status_code == 404
    invalid = client.post(f"{base}/not-an-address", headers=alice.auth)
    assert invalid.status_code == 422
    assert "forward_to" in invalid.json()["errors"][0]["detail"]
    itself = client.post(f"{base}/office@alice.example", headers=alice.auth)
    assert itself.status_code == 422
    assert codes(itself) == ["loop"]
    assert snapshot(sessions) == before


def test_delete_removes_the_address_and_everything_it_owns(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice, forward_to=["copy@elsewhere.example"])
    patch(client, alice, info["id"], {"autoresponder": {"text": "away", "active": True}})
    client.post(
        f"/email-addresses/{info['id']}/application-passwords",
        json={
            "data": {
                "type": "application-password",
                "attributes": {"device": "d", "application": "a"},
            }
        },
        headers={**alice.auth, "Content-Type": "application/vnd.api+json"},
    )
    response = client.delete(f"/email-addresses/{info['id']}", headers=alice.auth)
    assert response.status_code == 204
    assert response.content == b""
    assert get(client, alice, info["id"]).status_code == 404
    assert client.delete(f"/email-addresses/{info['id']}", headers=alice.auth).status_code == 404
    with sessions() as session:
        for model in (Address, AppPassword, Autoresponder):
            assert session.scalar(select(func.count()).select_from(model)) == 0

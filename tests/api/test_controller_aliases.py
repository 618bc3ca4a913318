"""The controller dialect's /mail/alias/ routes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.snapshot import snapshot


def test_alias_lifecycle(client: TestClient, alice: Tenant) -> None:
    created = client.post(
        "/mail/alias/",
        data={
            "name": "office",
            "domain": alice.domain,
            "to": "alice@alice.example, BOB@bob.example",
        },
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "office@alice.example",
        "name": "office",
        "domain": "alice.example",
        "to": "alice@alice.example,bob@bob.example",
    }
    listed = client.get("/mail/alias/", params={"domain": alice.domain}, headers=alice.auth)
    assert [a["id"] for a in listed.json()] == ["office@alice.example"]
    updated = client.put(
        "/mail/alias/office@alice.example/", json={"to": "carol@alice.example"}, headers=alice.auth
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["to"] == "carol@alice.example"
    assert client.get("/mail/alias/office@alice.example/", headers=alice.auth).json()["to"] == (
        "carol@alice.example"
    )
    assert client.delete("/mail/alias/office@alice.example/", headers=alice.auth).status_code == 204
    assert client.get("/mail/alias/office@alice.example/", headers=alice.auth).status_code == 404


def test_accounts_and_aliases_are_separate_collections(client: TestClient, alice: Tenant) -> None:
    client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "info@alice.example"},
        headers=alice.auth,
    )
    assert [a["id"] for a in client.get("/mail/alias/", headers=alice.auth).json()] == [
        "office@alice.example"
    ]
    assert [a["id"] for a in client.get("/mail/account/", headers=alice.auth).json()] == [
        "info@alice.example"
    ]
    assert client.get("/mail/alias/info@alice.example/", headers=alice.auth).status_code == 404
    assert client.get("/mail/account/office@alice.example/", headers=alice.auth).status_code == 404
    assert client.delete("/mail/alias/info@alice.example/", headers=alice.auth).status_code == 404


def test_alias_cannot_shadow_an_account(client: TestClient, alice: Tenant) -> None:
    client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    response = client.post(
        "/mail/alias/",
        json={"name": "Info", "domain": alice.domain, "to": "x@y.example"},
        headers=alice.auth,
    )
    assert response.status_code == 409
    assert "mailbox" in response.json()["detail"]


def test_bad_recipients_are_reported_each_by_position(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(sessions)
    response = client.post(
        "/mail/alias/",
        json={
            "name": "office",
            "domain": alice.domain,
            "to": "ok@x.example,broken,also@@bad,ok@x.example",
        },
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["to[1]", "to[2]", "to[3]"]
    empty = client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": " , "},
        headers=alice.auth,
    )
    assert empty.status_code == 422
    assert [e["field"] for e in empty.json()["errors"]] == ["to"]
    to_self = client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "Office@alice.example"},
        headers=alice.auth,
    )
    assert to_self.status_code == 422
    assert snapshot(sessions) == before


def test_put_with_bad_recipients_keeps_the_old_ones(client: TestClient, alice: Tenant) -> None:
    client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "a@x.example"},
        headers=alice.auth,
    )
    bad = client.put("/mail/alias/office@alice.example/", json={"to": "nope"}, headers=alice.auth)
    assert bad.status_code == 422
    unknown = client.put(
        "/mail/alias/office@alice.example/",
        json={"to": "b@x.example", "name": "x"},
        headers=alice.auth,
    )
    assert unknown.status_code == 422
    assert (
        client.get("/mail/alias/office@alice.example/", headers=alice.auth).json()["to"]
        == "a@x.example"
    )

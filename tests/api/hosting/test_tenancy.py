"""Every hosting route against another customer's objects answers 404, exactly like a
missing object, and changes nothing; read-only tokens read but never write."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.errors import WWW_AUTHENTICATE
from tests.api.hosting.jsonapi import JSONAPI, errors, forward, headers, mailbox
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to, make_token
from tests.support.snapshot import snapshot

MISSING = "987654"


def _patch(address_id: str) -> dict[str, Any]:
    return {"data": {"type": "email-address", "id": address_id, "attributes": {"description": "x"}}}


APP_PASSWORD = {
    "data": {"type": "application-password", "attributes": {"device": "d", "application": "a"}}
}

# (method, path template, body template): {m} the mailbox, {f} the forward, {p} an app password.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/email-addresses/{m}", None),
    ("PATCH", "/email-addresses/{m}", "patch"),
    ("DELETE", "/email-addresses/{m}", None),
    ("DELETE", "/email-addresses/{f}", None),
    ("POST", "/email-addresses/{m}/password", None),
    ("POST", "/email-addresses/{f}/forward-to/new@elsewhere.example", None),
    ("DELETE", "/email-addresses/{f}/forward-to/a@elsewhere.example", None),
    ("GET", "/email-addresses/{m}/application-passwords", None),
    ("POST", "/email-addresses/{m}/application-passwords", APP_PASSWORD),
    ("GET", "/email-addresses/{m}/application-passwords/{p}", None),
    ("DELETE", "/email-addresses/{m}/application-passwords/{p}", None),
]
WRITES = [route for route in ROUTES if route[0] != "GET"]


@pytest.fixture
def alice_objects(client: TestClient, alice: Tenant) -> dict[str, str]:
    info = mailbox(client, alice, password=STRONG_PASSWORD)
    office = forward(client, alice, "office", ["a@elsewhere.example", "b@elsewhere.example"])
    created = client.post(
        f"/email-addresses/{info['id']}/application-passwords",
        json=APP_PASSWORD,
        headers=headers(alice),
    )
    assert created.status_code == 201
    return {"m": info["id"], "f": office["id"], "p": created.json()["data"]["id"]}


def request(
    client: TestClient, auth: dict[str, str], method: str, path: str, body: Any, ids: dict[str, str]
) -> Any:
    url = path.format(**ids)
    if body == "patch":
        body = _patch(ids["m"])
    return client.request(
        method, url, json=body, headers={**auth, "Content-Type": JSONAPI} if body else auth
    )


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_customer_gets_404_exactly_like_a_missing_object(
    client: TestClient,
    bob: Tenant,
    sessions: sessionmaker[Session],
    alice_objects: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    before = snapshot(sessions)
    foreign = request(client, bob.auth, method, path, body, alice_objects)
    missing = request(client, bob.auth, method, path, body, {"m": MISSING, "f": MISSING, "p": "1"})
    assert foreign.status_code == 404, foreign.text
    assert missing.status_code == 404
    assert [e["code"] for e in errors(foreign)] == [e["code"] for e in errors(missing)]
    assert [e["title"] for e in errors(foreign)] == [e["title"] for e in errors(missing)]
    assert snapshot(sessions) == before


def test_another_customer_does_not_see_or_create_in_foreign_domains(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    sessions: sessionmaker[Session],
    alice_objects: dict[str, str],
) -> None:
    before = snapshot(sessions)
    listed = client.get("/email-addresses", headers=bob.auth)
    assert listed.json()["data"] == []
    by_address = client.get(
        "/email-addresses", params={"address": "info@alice.example"}, headers=bob.auth
    )
    assert by_address.json()["data"] == []
    by_domain = client.get(
        "/email-addresses", params={"filter[domain]": "alice.example"}, headers=bob.auth
    )
    assert by_domain.status_code == 404
    created = client.post(
        "/email-addresses",
        json={
            "data": {
                "type": "email-address",
                "attributes": {"address": "evil@alice.example", "address_type": "mailbox"},
            }
        },
        headers=headers(bob),
    )
    assert created.status_code == 404
    assert snapshot(sessions) == before


def test_admin_sees_every_customer(
    client: TestClient, admin_auth: dict[str, str], bob: Tenant, alice_objects: dict[str, str]
) -> None:
    forward(client, bob, "sales", ["x@elsewhere.example"])
    listed = client.get("/email-addresses", headers=admin_auth).json()
    assert {item["attributes"]["address"] for item in listed["data"]} == {
        "info@alice.example",
        "office@alice.example",
        "sales@bob.example",
    }
    assert (
        client.get(f"/email-addresses/{alice_objects['m']}", headers=admin_auth).status_code == 200
    )


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_read_only_tokens_cannot_write(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    alice_objects: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    reader = {
        "Authorization": f"Bearer {make_token(sessions, customer_id=alice.customer_id, read_only=True)}"
    }
    before = snapshot(sessions)
    response = request(client, reader, method, path, body, alice_objects)
    assert response.status_code == 403, response.text
    assert "read-only" in errors(response)[0]["detail"]
    assert snapshot(sessions) == before


@pytest.mark.parametrize(("method", "path", "body"), [*ROUTES, ("GET", "/email-addresses", None)])
def test_without_a_valid_token_every_route_is_401(
    client: TestClient,
    alice_objects: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    for auth in ({}, {"Authorization": "Bearer pm_unknown"}):
        response = request(client, auth, method, path, body, alice_objects)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == WWW_AUTHENTICATE


def test_domain_limited_tokens_see_only_their_domains(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    alice_objects: dict[str, str],
) -> None:
    add_domain_to(sessions, alice, "second.example")
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["second.example"])
    }
    assert client.get("/email-addresses", headers=limited).json()["data"] == []
    assert client.get(f"/email-addresses/{alice_objects['m']}", headers=limited).status_code == 404

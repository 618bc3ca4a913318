"""Sync sources through the API (/sync/sources/) and their polling by the scheduler."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.support.docserver import DocumentServer, Reply
from tests.support.factories import Tenant, make_tenant, make_token
from tests.support.snapshot import snapshot
from tests.support.tls import TestPki

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
DOC = {"example.com": {"account": [{"name": "alice", "password": MD5}]}}


@pytest.fixture
def app_settings(settings: Settings, pki: TestPki) -> Settings:
    return settings.model_copy(
        update={
            "sync": settings.sync.model_copy(
                update={
                    "ca_bundle": pki.ca_cert,
                    "min_interval_seconds": 1,
                    "allow_private_networks": True,
                }
            )
        }
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Example", domain="example.com")


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Other", domain="other.example")


def test_a_customer_manages_its_sources_and_the_scheduler_polls_them(
    client: TestClient, alice: Tenant, server: DocumentServer
) -> None:
    server.routes["/mail.json"] = lambda _headers: Reply(body=json.dumps(DOC).encode())
    created = client.post(
        "/sync/sources/",
        json={"url": server.url("/mail.json"), "interval_seconds": 60},
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["customer_id"] == alice.customer_id
    assert source["last_run"] is None

    # The scheduler's catch-up runs every job: the new source is due at once.
    client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    shown = client.get(f"/sync/sources/{source['id']}/", headers=alice.auth).json()
    assert shown["last_run"]["result"] == "applied"
    assert shown["last_run"]["created"] == 1
    assert shown["domains"] == ["example.com"]
    assert client.get("/mail/account/alice@example.com/", headers=alice.auth).status_code == 200

    # Not due again before its interval: a second tick does not fetch.
    fetched = len(server.requests)
    client.app.state.scheduler.run_due(force=True)  # type: ignore[attr-defined]
    assert len(server.requests) == fetched

    assert [s["id"] for s in client.get("/sync/sources/", headers=alice.auth).json()] == [
        source["id"]
    ]
    assert client.delete(f"/sync/sources/{source['id']}/", headers=alice.auth).status_code == 204
    assert client.get("/sync/sources/", headers=alice.auth).json() == []
    # The domain is API-managed again; its addresses stayed.
    assert (
        client.post(
            "/mail/alias/",
            json={"name": "x", "domain": "example.com", "to": "a@b.example"},
            headers=alice.auth,
        ).status_code
        == 201
    )


def test_sources_are_invisible_to_other_customers_and_domain_limited_tokens(
    client: TestClient, alice: Tenant, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = client.post(
        "/sync/sources/", json={"url": "https://127.0.0.1:9/x.json"}, headers=alice.auth
    )
    assert created.status_code == 201
    path = f"/sync/sources/{created.json()['id']}/"
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["example.com"])
    }
    reader = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, read_only=True)
    }
    before = snapshot(sessions)
    for method, url in (("GET", path), ("DELETE", path), ("POST", path + "confirm/")):
        assert client.request(method, url, headers=bob.auth).status_code == 404
    assert client.get("/sync/sources/", headers=bob.auth).json() == []
    assert client.get(path, headers=limited).status_code == 404
    assert (
        client.post(
            "/sync/sources/", json={"url": "https://x.example/a.json"}, headers=limited
        ).status_code
        == 404
    )
    assert client.get(path, headers=reader).status_code == 200
    assert client.delete(path, headers=reader).status_code == 403
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/a.json"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"url": "https://example.com/a.json", "interval_seconds": 0}, "interval_seconds"),
        ({"url": "https://example.com/a.json", "colour": "red"}, "colour"),
        ({"url": 5}, "url"),
    ],
)
def test_bad_sources_are_refused(
    client: TestClient, alice: Tenant, body: dict[str, object], field: str
) -> None:
    response = client.post("/sync/sources/", json=body, headers=alice.auth)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_confirm_without_a_held_document_is_409(client: TestClient, alice: Tenant) -> None:
    created = client.post(
        "/sync/sources/", json={"url": "https://127.0.0.1:9/x.json"}, headers=alice.auth
    )
    response = client.post(f"/sync/sources/{created.json()['id']}/confirm/", headers=alice.auth)
    assert response.status_code == 409


def test_admin_must_name_the_customer(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": "Bearer " + make_token(sessions, admin=True)}
    missing = client.post("/sync/sources/", json={"url": "https://x.example/a.json"}, headers=admin)
    assert missing.status_code == 422
    named = client.post(
        "/sync/sources/",
        json={"url": "https://x.example/a.json", "customer_id": alice.customer_id},
        headers=admin,
    )
    assert named.status_code == 201
    assert named.json()["customer_id"] == alice.customer_id

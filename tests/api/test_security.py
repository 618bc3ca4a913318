"""Tenancy, token scopes, expiry and transport: what a customer can and cannot reach."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.errors import WWW_AUTHENTICATE
from postmeister.models import ApiToken
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to, make_token
from tests.support.snapshot import snapshot

ACCOUNT = "info@alice.example"
ALIAS = "office@alice.example"

# Every route of the controller dialect that names an object, with a valid body.
OBJECT_ROUTES = [
    ("GET", f"/mail/account/{ACCOUNT}/", None),
    ("DELETE", f"/mail/account/{ACCOUNT}/", None),
    ("POST", f"/mail/account/{ACCOUNT}/set_password/", {"password": STRONG_PASSWORD + "!"}),
    ("POST", f"/mail/account/{ACCOUNT}/disable_submission/", None),
    ("POST", f"/mail/account/{ACCOUNT}/enable_submission/", None),
    ("POST", f"/mail/account/{ACCOUNT}/set_spoofing_whitelist/", {"spoofing_whitelist": "*"}),
    ("GET", f"/mail/alias/{ALIAS}/", None),
    ("PUT", f"/mail/alias/{ALIAS}/", {"to": "x@bob.example"}),
    ("DELETE", f"/mail/alias/{ALIAS}/", None),
]
WRITE_ROUTES = [r for r in OBJECT_ROUTES if r[0] != "GET"]


@pytest.fixture
def alice_objects(client: TestClient, alice: Tenant) -> None:
    assert (
        client.post(
            "/mail/account/",
            json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
            headers=alice.auth,
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/mail/alias/",
            json={"name": "office", "domain": alice.domain, "to": ACCOUNT},
            headers=alice.auth,
        ).status_code
        == 201
    )


@pytest.mark.usefixtures("alice_objects")
@pytest.mark.parametrize(("method", "path", "body"), OBJECT_ROUTES)
def test_another_customer_gets_404_exactly_like_a_missing_object(
    client: TestClient,
    bob: Tenant,
    sessions: sessionmaker[Session],
    method: str,
    path: str,
    body: object,
) -> None:
    before = snapshot(sessions)
    foreign = client.request(method, path, json=body, headers=bob.auth)
    missing = client.request(
        method, path.replace("alice.example", "bob.example"), json=body, headers=bob.auth
    )
    assert foreign.status_code == 404
    assert missing.status_code == 404
    assert foreign.json()["title"] == missing.json()["title"]
    assert foreign.json()["type"] == missing.json()["type"]
    assert snapshot(sessions) == before


@pytest.mark.usefixtures("alice_objects")
def test_another_customer_cannot_list_or_create_in_foreign_domains(
    client: TestClient, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(sessions)
    assert client.get("/mail/account/", headers=bob.auth).json() == []
    assert client.get("/mail/alias/", headers=bob.auth).json() == []
    assert (
        client.get(
            "/mail/account/", params={"domain": "alice.example"}, headers=bob.auth
        ).status_code
        == 404
    )
    create = client.post(
        "/mail/account/",
        json={"name": "evil", "domain": "alice.example", "password": STRONG_PASSWORD},
        headers=bob.auth,
    )
    assert create.status_code == 404
    alias = client.post(
        "/mail/alias/",
        json={"name": "evil", "domain": "alice.example", "to": "x@bob.example"},
        headers=bob.auth,
    )
    assert alias.status_code == 404
    assert snapshot(sessions) == before


@pytest.mark.usefixtures("alice_objects")
def test_admin_sees_every_customer(
    client: TestClient, admin_auth: dict[str, str], bob: Tenant
) -> None:
    client.post(
        "/mail/alias/",
        json={"name": "sales", "domain": bob.domain, "to": "x@y.example"},
        headers=bob.auth,
    )
    ids = {a["id"] for a in client.get("/mail/alias/", headers=admin_auth).json()}
    assert ids == {ALIAS, "sales@bob.example"}
    assert client.get(f"/mail/account/{ACCOUNT}/", headers=admin_auth).status_code == 200


@pytest.mark.usefixtures("alice_objects")
@pytest.mark.parametrize(("method", "path", "body"), WRITE_ROUTES)
def test_read_only_token_reads_but_cannot_write(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    method: str,
    path: str,
    body: object,
) -> None:
    reader = {
        "Authorization": f"Bearer {make_token(sessions, customer_id=alice.customer_id, read_only=True)}"
    }
    assert client.get(f"/mail/account/{ACCOUNT}/", headers=reader).status_code == 200
    before = snapshot(sessions)
    response = client.request(method, path, json=body, headers=reader)
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    created = client.post(
        "/mail/account/",
        json={"name": "new", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=reader,
    )
    assert created.status_code == 403
    assert snapshot(sessions) == before


@pytest.mark.usefixtures("alice_objects")
def test_domain_limited_token_sees_only_its_domains(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "second.example")
    assert (
        client.post(
            "/mail/alias/",
            json={"name": "x", "domain": "second.example", "to": ACCOUNT},
            headers=alice.auth,
        ).status_code
        == 201
    )
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["second.example"])
    }
    assert [a["id"] for a in client.get("/mail/alias/", headers=limited).json()] == [
        "x@second.example"
    ]
    before = snapshot(sessions)
    assert client.get(f"/mail/account/{ACCOUNT}/", headers=limited).status_code == 404
    assert client.delete(f"/mail/alias/{ALIAS}/", headers=limited).status_code == 404
    assert (
        client.post(
            "/mail/account/",
            json={"name": "n", "domain": alice.domain, "password": STRONG_PASSWORD},
            headers=limited,
        ).status_code
        == 404
    )
    assert snapshot(sessions) == before
    assert (
        client.put(
            "/mail/alias/x@second.example/", json={"to": ACCOUNT + ",a@b.example"}, headers=limited
        ).status_code
        == 200
    )


def test_missing_unknown_and_expired_tokens_are_401(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    assert client.get("/mail/account/").status_code == 401
    assert client.get("/mail/account/").headers["www-authenticate"] == WWW_AUTHENTICATE
    assert (
        client.get("/mail/account/", headers={"Authorization": "Bearer pm_nope"}).status_code == 401
    )
    assert client.get("/mail/account/", headers={"Authorization": alice.token}).status_code == 401
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    token = make_token(sessions, customer_id=alice.customer_id, expires_at=soon)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/mail/account/", headers=auth).status_code == 200
    with sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.expires_at.is_not(None))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert client.get("/mail/account/", headers=auth).status_code == 401


def test_token_limited_to_deleted_domains_sees_nothing(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    from postmeister.models import Domain

    add_domain_to(sessions, alice, "gone.example")
    limited = {
        "Authorization": "Bearer "
        + make_token(sessions, customer_id=alice.customer_id, domains=["gone.example"])
    }
    with sessions.begin() as session:
        session.query(Domain).filter(Domain.name == "gone.example").delete()
    assert client.get("/mail/account/", headers=limited).json() == []


def test_plain_http_is_refused(settings, alice: Tenant) -> None:  # type: ignore[no-untyped-def]
    from postmeister.api.app import create_app

    with TestClient(create_app(settings), base_url="http://testserver") as plain:
        response = plain.get("/mail/account/", headers=alice.auth)
        assert response.status_code == 403
        assert response.json()["type"].endswith("https-required")
        spoofed = plain.get("/mail/account/", headers={**alice.auth, "X-Forwarded-Proto": "https"})
        assert spoofed.status_code == 403


def test_behind_a_tls_proxy_only_forwarded_https_is_served(settings, alice: Tenant) -> None:  # type: ignore[no-untyped-def]
    from postmeister.api.app import create_app

    proxied = settings.model_copy(
        update={"http": settings.http.model_copy(update={"behind_tls_proxy": True})}
    )
    with TestClient(create_app(proxied), base_url="http://testserver") as plain:
        assert (
            plain.get(
                "/mail/account/", headers={**alice.auth, "X-Forwarded-Proto": "https"}
            ).status_code
            == 200
        )
        assert (
            plain.get(
                "/mail/account/", headers={**alice.auth, "X-Forwarded-Proto": "http"}
            ).status_code
            == 403
        )
        assert plain.get("/mail/account/", headers=alice.auth).status_code == 403


def test_passwords_never_reach_logs_or_responses(
    client: TestClient, alice: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Unusual-Secret-Value-9471!x"
    created = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": secret},
        headers=alice.auth,
    )
    assert created.status_code == 201
    changed = client.post(
        f"/mail/account/{ACCOUNT}/set_password/",
        data={"password": secret + "Z"},
        headers=alice.auth,
    )
    assert changed.status_code == 200
    refused = client.post(
        f"/mail/account/{ACCOUNT}/set_password/",
        data={"password": "qwertz-" + secret},
        headers=alice.auth,
    )
    assert refused.status_code == 422
    for response in (created, changed, refused):
        assert secret not in response.text
    assert secret not in caplog.text

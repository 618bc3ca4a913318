"""Application passwords: created with a secret shown once, listed without secrets,
stored only as the SHA-256 the data plane matches, revoked by deleting them."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.domain.app_passwords.service import MAX_PER_MAILBOX, app_password_digest
from postmeister.models import AppPassword
from tests.api.hosting.jsonapi import JSONAPI, codes, errors, forward, headers, mailbox, pointers
from tests.support.factories import Tenant, make_token
from tests.support.snapshot import snapshot

SPEC_BODY = {
    "data": {
        "type": "application-password",
        "attributes": {"device": "Mobiltelefon", "application": "Mail"},
    }
}


def create_app_password(
    client: TestClient, tenant: Tenant, address_id: str, document: dict[str, Any] = SPEC_BODY
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/email-addresses/{address_id}/application-passwords",
        json=document,
        headers=headers(tenant),
    )
    return response


def stored(sessions: sessionmaker[Session]) -> list[AppPassword]:
    with sessions() as session:
        return list(session.scalars(select(AppPassword).order_by(AppPassword.id)).all())


def test_create_returns_the_secret_once_and_stores_its_sha256(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    response = create_app_password(client, alice, info["id"])

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI
    data = response.json()["data"]
    assert data["type"] == "application-password"
    location = f"/email-addresses/{info['id']}/application-passwords/{data['id']}"
    assert response.headers["location"] == location
    attributes = data["attributes"]
    assert attributes["device"] == "Mobiltelefon"
    assert attributes["application"] == "Mail"
    assert attributes["last_used_at"] is None
    secret = attributes["password"]
    assert len(secret) >= 24
    [row] = stored(sessions)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.secret_hash == app_password_digest(secret)
    assert secret not in row.secret_hash

    single = client.get(location, headers=alice.auth)
    assert single.status_code == 200
    assert "password" not in single.json()["data"]["attributes"]
    assert secret not in single.text


def test_secrets_are_random_and_never_listed(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    secrets = set()
    for device in ("Laptop", "Telefon", "Tablet"):
        document = {
            "data": {
                "type": "application-password",
                "attributes": {"device": device, "application": "Thunderbird"},
            }
        }
        response = create_app_password(client, alice, info["id"], document)
        secrets.add(response.json()["data"]["attributes"]["password"])
    assert len(secrets) == 3
    listed = client.get(f"/email-addresses/{info['id']}/application-passwords", headers=alice.auth)
    assert listed.status_code == 200
    body = listed.json()
    assert [item["attributes"]["device"] for item in body["data"]] == [
        "Laptop",
        "Telefon",
        "Tablet",
    ]
    assert all("password" not in item["attributes"] for item in body["data"])
    assert not any(secret in listed.text for secret in secrets)
    assert body["links"]["self"] == f"/email-addresses/{info['id']}/application-passwords"


def test_delete_revokes(client: TestClient, alice: Tenant, sessions: sessionmaker[Session]) -> None:
    info = mailbox(client, alice)
    created = create_app_password(client, alice, info["id"]).json()["data"]
    path = f"/email-addresses/{info['id']}/application-passwords/{created['id']}"
    response = client.delete(path, headers=alice.auth)
    assert response.status_code == 204
    assert response.content == b""
    assert stored(sessions) == []
    assert client.get(path, headers=alice.auth).status_code == 404
    assert client.delete(path, headers=alice.auth).status_code == 404


def test_an_app_password_belongs_to_its_mailbox(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice, "info")
    other = mailbox(client, alice, "other")
    created = create_app_password(client, alice, info["id"]).json()["data"]
    wrong_parent = f"/email-addresses/{other['id']}/application-passwords/{created['id']}"
    assert client.get(wrong_parent, headers=alice.auth).status_code == 404
    assert client.delete(wrong_parent, headers=alice.auth).status_code == 404
    listed = client.get(f"/email-addresses/{other['id']}/application-passwords", headers=alice.auth)
    assert listed.json()["data"] == []


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"device": "", "application": "Mail"}, ["/data/attributes/device"]),
        (
            {"device": "  ", "application": " "},
            ["/data/attributes/device", "/data/attributes/application"],
        ),
        ({"device": "x" * 201, "application": "Mail"}, ["/data/attributes/device"]),
        ({"device": "Tel\u0007", "application": "Mail"}, ["/data/attributes/device"]),
        ({"application": "Mail"}, ["/data/attributes/device"]),
        ({"device": 1, "application": "Mail"}, ["/data/attributes/device"]),
    ],
)
def test_device_and_application_must_be_given(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    attributes: dict[str, Any],
    expected: list[str],
) -> None:
    info = mailbox(client, alice)
    before = snapshot(sessions)
    document = {"data": {"type": "application-password", "attributes": attributes}}
    response = create_app_password(client, alice, info["id"], document)
    assert response.status_code == 422, response.text
    assert pointers(response) == expected
    assert snapshot(sessions) == before


def test_wrong_type_and_forwards(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    wrong = {"data": {"type": "email-address", "attributes": SPEC_BODY["data"]["attributes"]}}
    assert create_app_password(client, alice, info["id"], wrong).status_code == 409
    office = forward(client, alice, "office", ["a@elsewhere.example"])
    response = create_app_password(client, alice, office["id"])
    assert response.status_code == 409
    assert "forward" in errors(response)[0]["detail"]
    listed = client.get(
        f"/email-addresses/{office['id']}/application-passwords", headers=alice.auth
    )
    assert listed.json()["data"] == []


def test_read_only_tokens_list_but_cannot_create_or_revoke(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    created = create_app_password(client, alice, info["id"]).json()["data"]
    reader = make_token(sessions, customer_id=alice.customer_id, read_only=True)
    auth = {"Authorization": f"Bearer {reader}", "Content-Type": JSONAPI}
    before = snapshot(sessions)
    base = f"/email-addresses/{info['id']}/application-passwords"
    assert client.get(base, headers=auth).status_code == 200
    assert client.post(base, json=SPEC_BODY, headers=auth).status_code == 403
    assert client.delete(f"{base}/{created['id']}", headers=auth).status_code == 403
    assert snapshot(sessions) == before


def test_a_mailbox_has_at_most_a_hundred(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    with sessions.begin() as session:
        session.add_all(
            AppPassword(
                address_id=int(info["id"]),
                device=f"d{n}",
                application="a",
                secret_hash=app_password_digest(f"s{n}"),
            )
            for n in range(MAX_PER_MAILBOX)
        )
    response = create_app_password(client, alice, info["id"])
    assert response.status_code == 409
    assert codes(response) == ["conflict"]

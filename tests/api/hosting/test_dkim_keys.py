"""`/domains/{id}/dkim-keys` over HTTP on both databases: every domain has a published RSA
key from the start, a rotation makes a new selector sign while the old one stays published,
no private key is ever shown, and another customer's domain is a 404 for reading and
rotating alike."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import DkimSettings, Settings
from postmeister.db import unit_of_work
from postmeister.domain.dkim import service
from postmeister.models import AuditEvent, DkimKey, Domain
from tests.api.hosting.jsonapi import JSONAPI
from tests.support.factories import Tenant, make_tenant

HEADERS = {"Accept": JSONAPI, "Content-Type": JSONAPI}
PRODUCTION = DkimSettings()  # RSA 2048: the keys a domain gets unless configured otherwise


# The shared fixtures give test domains Ed25519 keys only (fast); this module is about the
# production default.
@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dkim": PRODUCTION})


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Alice GmbH", domain="alice.example", dkim=PRODUCTION)


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Bob AG", domain="bob.example", dkim=PRODUCTION)


def _domain_id(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        found = session.scalar(select(Domain.id).where(Domain.name == name))
        assert found is not None
        return found


def _keys(client: TestClient, auth: dict[str, str], domain_id: int) -> Any:
    response = client.get(f"/domains/{domain_id}/dkim-keys", headers={**auth, **HEADERS})
    assert response.status_code == 200, response.text
    return response.json()


def _tag(value: str, name: str) -> str:
    tags = dict(part.strip().split("=", 1) for part in value.split(";") if part.strip())
    return tags[name]


def test_a_new_domain_has_a_published_rsa_2048_key_and_no_private_key_is_shown(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    domain_id = _domain_id(sessions, "alice.example")
    document = _keys(client, alice.auth, domain_id)
    (key,) = document["data"]
    attributes = key["attributes"]
    assert key["type"] == "dkim-key"
    assert attributes["algorithm"] == "rsa"
    assert attributes["state"] == "active"
    selector = attributes["selector"]
    assert attributes["record_name"] == f"{selector}._domainkey.alice.example"
    assert attributes["record_value"].startswith("v=DKIM1; k=rsa; p=")
    public = load_der_public_key(base64.b64decode(_tag(attributes["record_value"], "p")))
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    with sessions() as session:
        stored = session.scalars(select(DkimKey)).all()
    body = str(document)
    for row in stored:
        pem_body = "".join(row.private_key.splitlines()[1:-1])
        assert pem_body[:40] not in body
        assert "PRIVATE" not in body


def test_rotation_signs_with_a_new_selector_and_keeps_the_old_one_published(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    domain_id = _domain_id(sessions, "alice.example")
    (before,) = _keys(client, alice.auth, domain_id)["data"]
    response = client.post(
        f"/domains/{domain_id}/dkim-keys/rotate", headers={**alice.auth, **HEADERS}
    )
    assert response.status_code == 200, response.text
    listed = {k["attributes"]["selector"]: k["attributes"] for k in response.json()["data"]}
    old = before["attributes"]["selector"]
    assert listed[old]["state"] == "overlap"
    (new,) = [s for s, a in listed.items() if a["state"] == "active"]
    assert new != old
    published_until = dt.datetime.fromisoformat(listed[old]["published_until"])
    retired_at = dt.datetime.fromisoformat(listed[old]["retired_at"])
    assert published_until - retired_at == dt.timedelta(days=7)
    # The signer's view now names only the new key.
    with sessions() as session:
        (signing,) = session.execute(
            select(DkimKey.selector).where(DkimKey.retired_at.is_(None))
        ).all()
        assert signing.selector == new
        events = session.scalars(select(AuditEvent).where(AuditEvent.resource == "dkim_keys")).all()
        assert [e.action for e in events] == ["rotated"]
        domain = session.get(Domain, domain_id)
        assert domain is not None
        names = {record.selector for record in service.published_records(session, domain)}
        assert names == {old, new}
    # After the overlap the old key is gone from the records and from the table.
    later = retired_at + dt.timedelta(days=7, seconds=1)
    with unit_of_work(sessions) as session:
        assert service.remove_expired(session, now=later) == 1
    (only,) = _keys(client, alice.auth, domain_id)["data"]
    assert only["attributes"]["selector"] == new


def test_another_customer_can_neither_list_nor_rotate_your_keys(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant, bob: Tenant
) -> None:
    alice_domain = _domain_id(sessions, "alice.example")
    (key,) = _keys(client, alice.auth, alice_domain)["data"]
    listed = client.get(f"/domains/{alice_domain}/dkim-keys", headers={**bob.auth, **HEADERS})
    assert listed.status_code == 404, listed.text
    rotated = client.post(
        f"/domains/{alice_domain}/dkim-keys/rotate", headers={**bob.auth, **HEADERS}
    )
    assert rotated.status_code == 404, rotated.text
    # Nothing changed for alice.
    (after,) = _keys(client, alice.auth, alice_domain)["data"]
    assert after == key
    # Bob's own domain is fine.
    assert _keys(client, bob.auth, _domain_id(sessions, "bob.example"))["data"]


def test_a_read_only_token_lists_but_cannot_rotate(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    reader = make_tenant(
        sessions, name="Reader KG", domain="reader.example", read_only=True, dkim=PRODUCTION
    )
    domain_id = _domain_id(sessions, "reader.example")
    assert _keys(client, reader.auth, domain_id)["data"]
    response = client.post(
        f"/domains/{domain_id}/dkim-keys/rotate", headers={**reader.auth, **HEADERS}
    )
    assert response.status_code == 403, response.text


def test_an_admin_rotates_any_domain(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant, admin_auth: dict[str, str]
) -> None:
    domain_id = _domain_id(sessions, "alice.example")
    response = client.post(
        f"/domains/{domain_id}/dkim-keys/rotate", headers={**admin_auth, **HEADERS}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2

"""PATCH /email-addresses/{id}: many attributes at once, all or nothing; ids must match."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.models import Address
from tests.api.hosting.jsonapi import (
    attributes_of,
    codes,
    forward,
    get,
    headers,
    mailbox,
    patch,
    pointers,
)
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant
from tests.support.snapshot import snapshot


def password_hash(sessions: sessionmaker[Session], address_id: str) -> str | None:
    with sessions() as session:
        return session.scalar(select(Address.password_hash).where(Address.id == int(address_id)))


def test_several_attributes_in_one_request(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = mailbox(client, alice, password=STRONG_PASSWORD)
    response = patch(
        client,
        alice,
        created["id"],
        {
            "description": "Vertrieb",
            "antispam": "subject-rewrite",
            "forward_to": ["boss@elsewhere.example", "Copy@Elsewhere.example"],
            "password": OTHER_STRONG_PASSWORD,
            "autoresponder": {"text": "Ich bin im Urlaub.", "active": True},
        },
    )
    assert response.status_code == 200, response.text
    attributes = attributes_of(response)
    assert attributes["description"] == "Vertrieb"
    assert attributes["antispam"] == "subject-rewrite"
    assert attributes["forward_to"] == ["boss@elsewhere.example", "copy@elsewhere.example"]
    assert attributes["autoresponder"]["text"] == "Ich bin im Urlaub."
    assert attributes["autoresponder"]["active"] is True
    assert "password" not in attributes
    assert OTHER_STRONG_PASSWORD not in response.text
    hashed = password_hash(sessions, created["id"])
    assert hashed is not None
    assert PasswordHashing(PasswordSettings()).verify(hashed, OTHER_STRONG_PASSWORD)
    assert attributes_of(get(client, alice, created["id"])) == attributes


def test_one_bad_attribute_changes_nothing_and_every_problem_is_named(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = mailbox(client, alice, password=STRONG_PASSWORD, description="before")
    before = snapshot(sessions)
    response = patch(
        client,
        alice,
        created["id"],
        {
            "description": "after",
            "antispam": "none",
            "forward_to": ["fine@elsewhere.example", "not-an-address"],
            "password": OTHER_STRONG_PASSWORD,
            "autoresponder": {"text": "hi", "activates": "2026-05-10", "expires": "2026-05-01"},
        },
    )
    assert response.status_code == 422
    assert sorted(pointers(response)) == [
        "/data/attributes/autoresponder/expires",
        "/data/attributes/forward_to/1",
    ]
    assert snapshot(sessions) == before
    assert attributes_of(get(client, alice, created["id"]))["description"] == "before"


def test_missing_attributes_stay_and_null_removes_the_description(
    client: TestClient, alice: Tenant
) -> None:
    created = mailbox(
        client, alice, description="keep me?", antispam="junk-folder", forward_to=["a@b.example"]
    )
    response = patch(client, alice, created["id"], {"description": None})
    attributes = attributes_of(response)
    assert attributes["description"] is None
    assert attributes["antispam"] == "junk-folder"
    assert attributes["forward_to"] == ["a@b.example"]
    unchanged = patch(client, alice, created["id"], {})
    assert attributes_of(unchanged)["antispam"] == "junk-folder"


def test_spec_examples_one_attribute_each(client: TestClient, alice: Tenant) -> None:
    created = mailbox(client, alice)
    address_id = created["id"]
    for attributes in (
        {"description": "Eine Beschreibung der E-Mailadresse."},
        {"antispam": "reject"},
        {"autoresponder": {"text": "Ich bin im Urlaub."}},
        {"autoresponder": {"active": True}},
    ):
        response = patch(client, alice, address_id, attributes)
        assert response.status_code == 200, response.text
    final = attributes_of(get(client, alice, address_id))
    assert final["description"] == "Eine Beschreibung der E-Mailadresse."
    assert final["autoresponder"]["text"] == "Ich bin im Urlaub."
    assert final["autoresponder"]["active"] is True


def test_the_id_in_the_url_and_the_body_must_match(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    first = mailbox(client, alice, "one")
    second = mailbox(client, alice, "two")
    before = snapshot(sessions)
    document = {
        "data": {"type": "email-address", "id": second["id"], "attributes": {"description": "x"}}
    }
    response = client.patch(
        f"/email-addresses/{first['id']}", json=document, headers=headers(alice)
    )
    assert response.status_code == 409
    assert codes(response) == ["document-mismatch"]
    assert pointers(response) == ["/data/id"]
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"type": "application-password", "id": "{id}", "attributes": {}}, 409, "type-mismatch"),
        ({"type": "email-address", "attributes": {}}, 400, "malformed-document"),
        ({"type": "email-address", "id": 1, "attributes": {}}, 400, "malformed-document"),
        (
            {"type": "email-address", "id": "{id}", "attributes": {"address": "x@alice.example"}},
            422,
            "read-only",
        ),
        (
            {"type": "email-address", "id": "{id}", "attributes": {"address_type": "forward"}},
            422,
            "read-only",
        ),
        (
            {"type": "email-address", "id": "{id}", "attributes": {"antispam": None}},
            422,
            "string_type",
        ),
        (
            {"type": "email-address", "id": "{id}", "attributes": {"forward_to": "a@b.example"}},
            422,
            "list_type",
        ),
        (
            {
                "type": "email-address",
                "id": "{id}",
                "attributes": {"autoresponder": {"active": "yes"}},
            },
            422,
            "bool_type",
        ),
        (
            {
                "type": "email-address",
                "id": "{id}",
                "attributes": {"autoresponder": {"mood": "sunny"}},
            },
            422,
            "unknown-attribute",
        ),
    ],
)
def test_documents_that_do_not_fit(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    data: dict[str, Any],
    status: int,
    code: str,
) -> None:
    created = mailbox(client, alice)
    if data.get("id") == "{id}":
        data = {**data, "id": created["id"]}
    before = snapshot(sessions)
    response = client.patch(
        f"/email-addresses/{created['id']}", json={"data": data}, headers=headers(alice)
    )
    assert response.status_code == status, response.text
    assert code in codes(response)
    assert snapshot(sessions) == before


def test_mailbox_settings_on_a_forward_are_refused(client: TestClient, alice: Tenant) -> None:
    created = forward(client, alice, "office", ["a@elsewhere.example"])
    response = patch(
        client,
        alice,
        created["id"],
        {"password": STRONG_PASSWORD, "autoresponder": {"text": "x"}, "antispam": "junk-folder"},
    )
    assert response.status_code == 422
    assert sorted(pointers(response)) == [
        "/data/attributes/antispam",
        "/data/attributes/autoresponder",
        "/data/attributes/password",
    ]
    emptied = patch(client, alice, created["id"], {"forward_to": []})
    assert emptied.status_code == 422
    assert codes(emptied) == ["required"]


def test_patching_a_missing_address_is_404(client: TestClient, alice: Tenant) -> None:
    response = patch(client, alice, "4242", {"description": "x"})
    assert response.status_code == 404


def test_quota_limit_is_set_changed_and_removed(client: TestClient, alice: Tenant) -> None:
    created = mailbox(client, alice, password=STRONG_PASSWORD, quota={"limit": 1_000_000})
    assert created["attributes"]["quota"] == {"limit": 1_000_000, "usage": 0}
    raised = patch(client, alice, created["id"], {"quota": {"limit": 5_000_000}})
    assert attributes_of(raised)["quota"]["limit"] == 5_000_000
    # Unlimited, or more than the configured maximum, needs an administrator.
    unlimited = patch(client, alice, created["id"], {"quota": {"limit": None}})
    assert unlimited.status_code == 422, unlimited.text
    assert codes(unlimited) == ["quota_limit"]
    for bad in ({"limit": -1}, {"limit": 2**60}, {"limit": "1GB"}, {"usage": 5}):
        refused = patch(client, alice, created["id"], {"quota": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert pointers(refused)[0].startswith("/data/attributes/quota")
    assert attributes_of(get(client, alice, created["id"]))["quota"]["limit"] == 5_000_000
    target = forward(client, alice, "team", targets=["x@elsewhere.example"])
    on_forward = patch(client, alice, target["id"], {"quota": {"limit": 1}})
    assert on_forward.status_code == 422
    assert codes(on_forward) == ["mailbox_only"]

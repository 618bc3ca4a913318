"""POST /email-addresses: the spec's two examples, defaults, generated passwords, every rule."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.errors import WWW_AUTHENTICATE
from postmeister.config import PasswordSettings
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.domain.passwords.policy import check_password
from postmeister.models import Address
from tests.api.hosting.jsonapi import (
    JSONAPI,
    attributes_of,
    codes,
    create,
    errors,
    get,
    headers,
    mailbox,
    pointers,
)
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to, make_token
from tests.support.snapshot import snapshot


def stored_hash(sessions: sessionmaker[Session], address: str) -> str:
    with sessions() as session:
        hashed = session.scalar(select(Address.password_hash).where(Address.address == address))
    assert hashed is not None
    return hashed


def test_spec_example_mailbox_with_junk_folder_and_a_generated_password(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    add_domain_to(sessions, alice, "beispielkunde.info")
    document = {
        "data": {
            "type": "email-address",
            "attributes": {
                "address_type": "mailbox",
                "description": "Eine freiwillige Beschreibung.",
                "address": "postfach@beispielkunde.info",
                "forward_to": [],
                "antispam": "junk-folder",
            },
        }
    }
    response = client.post("/email-addresses", json=document, headers=headers(alice))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI
    data = response.json()["data"]
    assert data["type"] == "email-address"
    assert data["id"].isdigit()
    assert response.headers["location"] == f"/email-addresses/{data['id']}"
    assert data["links"]["self"] == response.headers["location"]
    attributes = data["attributes"]
    assert attributes["address"] == "postfach@beispielkunde.info"
    assert attributes["address_type"] == "mailbox"
    assert attributes["description"] == "Eine freiwillige Beschreibung."
    assert attributes["antispam"] == "junk-folder"
    assert attributes["forward_to"] == []
    # A customer's mailbox created without a quota gets the configured maximum (10 GiB).
    assert attributes["quota"] == {"limit": 10 * 2**30, "usage": 0}
    assert attributes["autoresponder"] == {
        "text": "",
        "active": False,
        "activates": None,
        "expires": None,
    }
    # The generated password: returned once, strong, and the one the mailbox has.
    password = attributes["password"]
    assert len(password) >= 16
    assert (
        check_password(
            password,
            local_part="postfach",
            domain="beispielkunde.info",
            settings=PasswordSettings(),
        )
        == []
    )
    hashed = stored_hash(sessions, "postfach@beispielkunde.info")
    assert PasswordHashing(PasswordSettings()).verify(hashed, password)
    again = get(client, alice, data["id"])
    assert "password" not in attributes_of(again)
    assert password not in again.text


def test_spec_example_forward_to_two_mailboxes(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "beispielkunde.info")
    document = {
        "data": {
            "type": "email-address",
            "attributes": {
                "address_type": "forward",
                "description": "Eine freiwillige Beschreibung.",
                "address": "weiterleitung@beispielkunde.info",
                "forward_to": ["postfach1@beispielkunde.info", "postfach2@beispielkunde.info"],
            },
        }
    }
    response = client.post("/email-addresses", json=document, headers=headers(alice))

    assert response.status_code == 201, response.text
    attributes = attributes_of(response)
    assert attributes["address"] == "weiterleitung@beispielkunde.info"
    assert attributes["address_type"] == "forward"
    assert attributes["forward_to"] == [
        "postfach1@beispielkunde.info",
        "postfach2@beispielkunde.info",
    ]
    assert attributes["antispam"] == "reject"
    # Mailbox details belong to mailboxes only.
    assert "quota" not in attributes
    assert "autoresponder" not in attributes
    assert "password" not in attributes


def test_defaults_and_a_chosen_password_that_is_not_echoed(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    response = create(
        client,
        alice,
        address="Sales@ALICE.example",
        address_type="mailbox",
        password=STRONG_PASSWORD,
    )
    assert response.status_code == 201, response.text
    attributes = attributes_of(response)
    assert attributes["address"] == "sales@alice.example"
    assert attributes["description"] is None
    assert attributes["antispam"] == "reject"
    assert attributes["domain"] == "alice.example"
    assert isinstance(attributes["package_id"], int)
    assert "password" not in attributes
    assert STRONG_PASSWORD not in response.text
    hashed = stored_hash(sessions, "sales@alice.example")
    assert PasswordHashing(PasswordSettings()).verify(hashed, STRONG_PASSWORD)


def test_a_mailbox_may_keep_a_copy_and_forward(client: TestClient, alice: Tenant) -> None:
    created = mailbox(client, alice, forward_to=["archive@elsewhere.example"])
    assert created["attributes"]["forward_to"] == ["archive@elsewhere.example"]


def test_an_existing_address_is_409_in_any_spelling(client: TestClient, alice: Tenant) -> None:
    mailbox(client, alice)
    response = create(
        client,
        alice,
        address="INFO@alice.example",
        address_type="forward",
        forward_to=["x@elsewhere.example"],
    )
    assert response.status_code == 409
    assert codes(response) == ["already-exists"]
    assert "info@alice.example" in errors(response)[0]["detail"]


def test_a_domain_that_is_not_the_customers_is_404(
    client: TestClient, alice: Tenant, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(sessions)
    for address in ("evil@bob.example", "x@nobody.example"):
        response = create(client, alice, address=address, address_type="mailbox")
        assert response.status_code == 404
        assert codes(response) == ["not-found"]
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("attributes", "pointer", "code"),
    [
        ({"address": "no-at-sign", "address_type": "mailbox"}, "/data/attributes/address", None),
        (
            {"address": "a b@alice.example", "address_type": "mailbox"},
            "/data/attributes/address",
            None,
        ),
        (
            {"address": "x@not a domain", "address_type": "mailbox"},
            "/data/attributes/address",
            None,
        ),
        (
            {"address": "x@alice.example", "address_type": "box"},
            "/data/attributes/address_type",
            None,
        ),
        (
            {"address": "x@alice.example", "address_type": "forward"},
            "/data/attributes/forward_to",
            "required",
        ),
        (
            {
                "address": "x@alice.example",
                "address_type": "forward",
                "forward_to": ["y@z.example"],
                "antispam": "junk-folder",
            },
            "/data/attributes/antispam",
            "antispam",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "antispam": "maybe"},
            "/data/attributes/antispam",
            "antispam",
        ),
        (
            {
                "address": "x@alice.example",
                "address_type": "forward",
                "forward_to": ["y@z.example"],
                "password": STRONG_PASSWORD,
            },
            "/data/attributes/password",
            "mailbox_only",
        ),
        (
            {
                "address": "x@alice.example",
                "address_type": "mailbox",
                "forward_to": ["y@z.example", "bad"],
            },
            "/data/attributes/forward_to/1",
            None,
        ),
        (
            {
                "address": "x@alice.example",
                "address_type": "mailbox",
                "forward_to": ["x@alice.example"],
            },
            "/data/attributes/forward_to",
            "loop",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "description": "a\u0000b"},
            "/data/attributes/description",
            "charset",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "description": "d" * 1001},
            "/data/attributes/description",
            "length",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "description": 5},
            "/data/attributes/description",
            "string_type",
        ),
        ({"address": "x@alice.example"}, "/data/attributes/address_type", "missing"),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "quota": {"limit": -1}},
            "/data/attributes/quota",
            "range",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "created_at": "2020-01-01"},
            "/data/attributes/created_at",
            "read-only",
        ),
        (
            {"address": "x@alice.example", "address_type": "mailbox", "colour": "red"},
            "/data/attributes/colour",
            "unknown-attribute",
        ),
    ],
)
def test_each_invalid_attribute_is_422_with_a_pointer_and_creates_nothing(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    attributes: dict[str, Any],
    pointer: str,
    code: str | None,
) -> None:
    before = snapshot(sessions)
    response = create(client, alice, **attributes)
    assert response.status_code == 422, response.text
    assert pointers(response) == [pointer]
    if code is not None:
        assert codes(response) == [code]
    assert snapshot(sessions) == before


def test_all_problems_are_reported_at_once(client: TestClient, alice: Tenant) -> None:
    response = create(
        client,
        alice,
        address="x@alice.example",
        address_type="forward",
        antispam="junk-folder",
        forward_to=[],
        password="short",
    )
    assert response.status_code == 422
    assert sorted(pointers(response)) == [
        "/data/attributes/antispam",
        "/data/attributes/forward_to",
        "/data/attributes/password",
    ]


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ({"data": {"type": "email-addresses", "attributes": {}}}, 409, "type-mismatch"),
        (
            {
                "data": {
                    "type": "application-password",
                    "attributes": {"address": "a@alice.example", "address_type": "mailbox"},
                }
            },
            409,
            "type-mismatch",
        ),
        (
            {
                "data": {
                    "type": "email-address",
                    "id": "7",
                    "attributes": {"address": "a@alice.example", "address_type": "mailbox"},
                }
            },
            403,
            "client-generated-id",
        ),
        ({"data": {"attributes": {}}}, 400, "malformed-document"),
        ({"data": []}, 400, "malformed-document"),
        ({"address": "a@alice.example"}, 400, "malformed-document"),
        ({"data": {"type": "email-address", "attributes": []}}, 400, "malformed-document"),
        (
            {
                "data": {
                    "type": "email-address",
                    "relationships": {},
                    "attributes": {"address": "a@alice.example", "address_type": "mailbox"},
                }
            },
            400,
            "malformed-document",
        ),
    ],
)
def test_documents_of_the_wrong_shape(
    client: TestClient, alice: Tenant, document: dict[str, Any], status: int, code: str
) -> None:
    response = client.post("/email-addresses", json=document, headers=headers(alice))
    assert response.status_code == status, response.text
    assert code in codes(response)


def test_a_body_that_is_not_json_or_missing_is_400(client: TestClient, alice: Tenant) -> None:
    broken = client.post("/email-addresses", content=b'{"data": ', headers=headers(alice))
    assert broken.status_code == 400
    assert codes(broken) == ["malformed-body"]
    empty = client.post("/email-addresses", content=b"", headers=headers(alice))
    assert empty.status_code == 400
    assert codes(empty) == ["malformed-document"]


def test_meta_and_jsonapi_members_are_allowed(client: TestClient, alice: Tenant) -> None:
    document = {
        "jsonapi": {"version": "1.1"},
        "meta": {"client": "test"},
        "data": {
            "type": "email-address",
            "meta": {"note": "x"},
            "attributes": {"address": "m@alice.example", "address_type": "mailbox"},
        },
    }
    response = client.post("/email-addresses", json=document, headers=headers(alice))
    assert response.status_code == 201, response.text


def test_read_only_and_missing_tokens(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    reader = make_token(sessions, customer_id=alice.customer_id, read_only=True)
    document = {
        "data": {
            "type": "email-address",
            "attributes": {"address": "new@alice.example", "address_type": "mailbox"},
        }
    }
    response = client.post(
        "/email-addresses",
        json=document,
        headers={"Authorization": f"Bearer {reader}", "Content-Type": JSONAPI},
    )
    assert response.status_code == 403
    assert "read-only" in errors(response)[0]["detail"]
    anonymous = client.post("/email-addresses", json=document, headers={"Content-Type": JSONAPI})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert codes(anonymous) == ["unauthenticated"]

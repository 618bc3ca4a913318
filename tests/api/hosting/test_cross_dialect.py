"""Both dialects are views of one model: what one writes, the other shows and may change."""

from __future__ import annotations

from fastapi.testclient import TestClient

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.hashing import PasswordHashing
from tests.api.hosting.jsonapi import attributes_of, forward, get, headers, mailbox, patch
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant


def test_an_account_made_by_the_controller_dialect_is_a_mailbox_here(
    client: TestClient, alice: Tenant
) -> None:
    created = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert created.status_code == 201
    listed = client.get(
        "/email-addresses", params={"filter[address]": "info@alice.example"}, headers=headers(alice)
    ).json()["data"]
    [item] = listed
    assert item["attributes"]["address_type"] == "mailbox"
    address_id = item["id"]

    changed = patch(client, alice, address_id, {"password": OTHER_STRONG_PASSWORD})
    assert changed.status_code == 200
    account = client.get("/mail/account/info@alice.example/", headers=alice.auth).json()
    assert PasswordHashing(PasswordSettings()).verify(account["password"], OTHER_STRONG_PASSWORD)

    client.delete("/mail/account/info@alice.example/", headers=alice.auth)
    assert get(client, alice, address_id).status_code == 404


def test_an_alias_made_by_the_controller_dialect_is_a_forward_here(
    client: TestClient, alice: Tenant
) -> None:
    client.post(
        "/mail/alias/",
        json={
            "name": "office",
            "domain": alice.domain,
            "to": "a@elsewhere.example,b@elsewhere.example",
        },
        headers=alice.auth,
    )
    [item] = client.get(
        "/email-addresses", params={"address": "office@alice.example"}, headers=alice.auth
    ).json()["data"]
    assert item["attributes"]["address_type"] == "forward"
    assert item["attributes"]["forward_to"] == ["a@elsewhere.example", "b@elsewhere.example"]


def test_mailboxes_and_forwards_made_here_show_in_the_controller_dialect(
    client: TestClient, alice: Tenant
) -> None:
    info = mailbox(client, alice)
    office = forward(client, alice, "office", ["info@alice.example"])
    account = client.get("/mail/account/info@alice.example/", headers=alice.auth)
    assert account.status_code == 200
    assert account.json()["password"].startswith("$argon2id$")
    alias = client.get("/mail/alias/office@alice.example/", headers=alice.auth)
    assert alias.json()["to"] == "info@alice.example"
    # Kinds stay apart: a forward is no account and a mailbox no alias.
    assert client.get("/mail/account/office@alice.example/", headers=alice.auth).status_code == 404

    client.put(
        "/mail/alias/office@alice.example/", json={"to": "x@elsewhere.example"}, headers=alice.auth
    )
    assert attributes_of(get(client, alice, office["id"]))["forward_to"] == ["x@elsewhere.example"]
    client.post("/mail/account/info@alice.example/disable_submission/", headers=alice.auth)
    assert attributes_of(get(client, alice, info["id"]))["address"] == "info@alice.example"


def test_an_address_taken_in_one_dialect_is_taken_in_the_other(
    client: TestClient, alice: Tenant
) -> None:
    forward(client, alice, "sales", ["x@elsewhere.example"])
    response = client.post(
        "/mail/account/",
        json={"name": "sales", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert response.status_code == 409

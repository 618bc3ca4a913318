"""`subaddress_extension` in both API dialects (issue 11, item 3): an account field readable
and settable at create, two switch endpoints in the controller dialect, an attribute of
hosting-dialect mailboxes; mailboxes only, and another customer's account is a 404."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import STRONG_PASSWORD, Tenant, make_token

PASSWORD = STRONG_PASSWORD
JSONAPI = "application/vnd.api+json"


def create_account(client: TestClient, tenant: Tenant, name: str, **extra: Any) -> Any:
    response = client.post(
        "/mail/account/",
        json={"name": name, "domain": tenant.domain, "password": PASSWORD, **extra},
        headers=tenant.auth,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_the_field_defaults_to_false_and_is_set_at_create(
    client: TestClient, alice: Tenant
) -> None:
    assert create_account(client, alice, "plain")["subaddress_extension"] is False
    assert create_account(client, alice, "tagged", subaddress_extension=True)[
        "subaddress_extension"
    ]
    # As a form field too, the way the original clients post.
    form = client.post(
        "/mail/account/",
        data={
            "name": "formed",
            "domain": alice.domain,
            "password": PASSWORD,
            "subaddress_extension": "true",
        },
        headers=alice.auth,
    )
    assert form.status_code == 201, form.text
    assert form.json()["subaddress_extension"] is True
    listed = client.get("/mail/account/", headers=alice.auth).json()
    assert {a["name"]: a["subaddress_extension"] for a in listed} == {
        "formed": True,
        "plain": False,
        "tagged": True,
    }


def test_enable_and_disable_switch_the_field(client: TestClient, alice: Tenant) -> None:
    account_id = create_account(client, alice, "switch")["id"]
    on = client.post(f"/mail/account/{account_id}/enable_subaddress/", headers=alice.auth)
    assert on.status_code == 200, on.text
    assert on.json()["subaddress_extension"] is True
    got = client.get(f"/mail/account/{account_id}/", headers=alice.auth)
    assert got.json()["subaddress_extension"] is True
    off = client.post(f"/mail/account/{account_id}/disable_subaddress/", headers=alice.auth)
    assert off.json()["subaddress_extension"] is False
    assert (
        client.get(f"/mail/account/{account_id}/", headers=alice.auth).json()[
            "subaddress_extension"
        ]
        is False
    )
    # The switches take no parameters; a stray one is named, not ignored.
    stray = client.post(
        f"/mail/account/{account_id}/enable_subaddress/", json={"on": True}, headers=alice.auth
    )
    assert stray.status_code == 422, stray.text
    assert "on" in stray.text


def test_a_non_boolean_is_refused_by_name(client: TestClient, alice: Tenant) -> None:
    response = client.post(
        "/mail/account/",
        json={
            "name": "bad",
            "domain": alice.domain,
            "password": PASSWORD,
            "subaddress_extension": "sometimes",
        },
        headers=alice.auth,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "subaddress_extension"


@pytest.mark.parametrize("action", ["enable_subaddress", "disable_subaddress"])
def test_another_customers_account_is_a_404_and_stays_unchanged(
    client: TestClient, alice: Tenant, bob: Tenant, action: str
) -> None:
    victim = create_account(
        client, bob, "victim", subaddress_extension=action == "disable_subaddress"
    )
    attempt = client.post(f"/mail/account/{victim['id']}/{action}/", headers=alice.auth)
    assert attempt.status_code == 404, attempt.text
    missing = client.post(f"/mail/account/nobody@{alice.domain}/{action}/", headers=alice.auth)
    assert missing.status_code == 404
    # The same answer as for an account that does not exist (only the URL differs).
    same = ("type", "title", "status")
    assert {k: attempt.json()[k] for k in same} == {k: missing.json()[k] for k in same}
    after = client.get(f"/mail/account/{victim['id']}/", headers=bob.auth).json()
    assert after["subaddress_extension"] is victim["subaddress_extension"]


def test_a_read_only_token_cannot_switch(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    account_id = create_account(client, alice, "box")["id"]
    reader = {
        "Authorization": f"Bearer {make_token(sessions, customer_id=alice.customer_id, read_only=True)}"
    }
    response = client.post(f"/mail/account/{account_id}/enable_subaddress/", headers=reader)
    assert response.status_code == 403, response.text
    after = client.get(f"/mail/account/{account_id}/", headers=reader).json()
    assert after["subaddress_extension"] is False


def _hosting(client: TestClient, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    headers = {**tenant.auth, "Accept": JSONAPI, "Content-Type": JSONAPI}
    return client.request(method, path, json=body, headers=headers)


def test_the_hosting_dialect_shows_and_changes_the_attribute(
    client: TestClient, alice: Tenant
) -> None:
    created = _hosting(
        client,
        alice,
        "POST",
        "/email-addresses",
        {
            "data": {
                "type": "email-address",
                "attributes": {
                    "address": f"hosted@{alice.domain}",
                    "address_type": "mailbox",
                    "subaddress_extension": True,
                },
            }
        },
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["attributes"]["subaddress_extension"] is True
    patched = _hosting(
        client,
        alice,
        "PATCH",
        f"/email-addresses/{data['id']}",
        {
            "data": {
                "type": "email-address",
                "id": data["id"],
                "attributes": {"subaddress_extension": False},
            }
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attributes"]["subaddress_extension"] is False
    # The controller dialect reads the same field.
    account = client.get(f"/mail/account/hosted@{alice.domain}/", headers=alice.auth).json()
    assert account["subaddress_extension"] is False


def test_a_forward_has_no_subaddress_extension(client: TestClient, alice: Tenant) -> None:
    refused = _hosting(
        client,
        alice,
        "POST",
        "/email-addresses",
        {
            "data": {
                "type": "email-address",
                "attributes": {
                    "address": f"fwd@{alice.domain}",
                    "address_type": "forward",
                    "forward_to": ["someone@elsewhere.example"],
                    "subaddress_extension": True,
                },
            }
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["source"]["pointer"].endswith("subaddress_extension")
    made = _hosting(
        client,
        alice,
        "POST",
        "/email-addresses",
        {
            "data": {
                "type": "email-address",
                "attributes": {
                    "address": f"fwd@{alice.domain}",
                    "address_type": "forward",
                    "forward_to": ["someone@elsewhere.example"],
                },
            }
        },
    )
    assert made.status_code == 201, made.text
    assert "subaddress_extension" not in made.json()["data"]["attributes"]
    forward_id = made.json()["data"]["id"]
    patch = _hosting(
        client,
        alice,
        "PATCH",
        f"/email-addresses/{forward_id}",
        {
            "data": {
                "type": "email-address",
                "id": forward_id,
                "attributes": {"subaddress_extension": True},
            }
        },
    )
    assert patch.status_code == 422, patch.text

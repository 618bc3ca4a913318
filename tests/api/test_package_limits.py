"""Package limits over HTTP (issue 12): every limit answers with its own name, in both
dialects, and nothing is written. Counting limits (addresses, mailboxes, storage, app
passwords) are 409 conflicts with the current state; the quota of one mailbox is invalid
input (422), like the customer's own quota maximum."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.models import Package
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.snapshot import snapshot

JSONAPI = "application/vnd.api+json"
GIB = 2**30


def set_limits(sessions: sessionmaker[Session], tenant: Tenant, **limits: int) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(Package).where(Package.customer_id == tenant.customer_id).values(**limits)
        )


def account(client: TestClient, tenant: Tenant, name: str) -> Any:
    return client.post(
        "/mail/account/",
        json={"name": name, "domain": tenant.domain, "password": STRONG_PASSWORD},
        headers=tenant.auth,
    )


def hosting(client: TestClient, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    headers = {**tenant.auth, "Accept": JSONAPI, "Content-Type": JSONAPI}
    return client.request(method, path, json=body, headers=headers)


def mailbox_document(address: str, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "email-address",
            "attributes": {"address": address, "address_type": "mailbox", **attributes},
        }
    }


@pytest.mark.parametrize(
    ("limits", "rule"),
    [
        ({"max_addresses": 2}, "max_addresses"),
        ({"max_mailboxes": 2}, "max_mailboxes"),
        ({"max_storage_bytes": 25 * GIB}, "max_storage_bytes"),  # each new mailbox: 10 GiB
    ],
)
def test_creating_past_a_limit_is_409_naming_it_in_both_dialects(
    client: TestClient,
    sessions: sessionmaker[Session],
    alice: Tenant,
    limits: dict[str, int],
    rule: str,
) -> None:
    set_limits(sessions, alice, **limits)
    assert account(client, alice, "one").status_code == 201
    assert account(client, alice, "two").status_code == 201
    before = snapshot(sessions)

    refused = account(client, alice, "three")
    assert refused.status_code == 409, refused.text
    assert [e["rule"] for e in refused.json()["errors"]] == [rule]
    assert rule.removeprefix("max_").split("_")[0] in refused.json()["detail"]

    hosted = hosting(
        client, alice, "POST", "/email-addresses", mailbox_document(f"three@{alice.domain}")
    )
    assert hosted.status_code == 409, hosted.text
    (error,) = hosted.json()["errors"]
    assert (error["status"], error["code"]) == ("409", rule)
    assert snapshot(sessions) == before


def test_a_forward_still_fits_when_only_mailboxes_are_full(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    set_limits(sessions, alice, max_mailboxes=1)
    assert account(client, alice, "one").status_code == 201
    forward = client.post(
        "/mail/alias/",
        json={"name": "team", "domain": alice.domain, "to": f"one@{alice.domain}"},
        headers=alice.auth,
    )
    assert forward.status_code == 201, forward.text
    assert account(client, alice, "two").status_code == 409


def test_the_quota_of_one_mailbox_and_the_shared_storage(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    set_limits(sessions, alice, max_quota_bytes=2 * GIB, max_storage_bytes=3 * GIB)
    created = hosting(
        client, alice, "POST", "/email-addresses", mailbox_document(f"big@{alice.domain}")
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    # Without a quota, a new mailbox gets the package's per-mailbox limit.
    assert data["attributes"]["quota"]["limit"] == 2 * GIB

    def patch_quota(limit: int | None) -> Any:
        body = {
            "data": {
                "type": "email-address",
                "id": data["id"],
                "attributes": {"quota": {"limit": limit}},
            }
        }
        return hosting(client, alice, "PATCH", f"/email-addresses/{data['id']}", body)

    too_big = patch_quota(2 * GIB + 1)
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["errors"][0]["code"] == "max_quota_bytes"
    assert too_big.json()["errors"][0]["source"]["pointer"] == "/data/attributes/quota"
    assert "max_quota_bytes" in [e["code"] for e in patch_quota(None).json()["errors"]]
    assert patch_quota(GIB).status_code == 200
    # 1 GiB used of 3: a second mailbox of 2 GiB fits, a third of any size does not.
    second = hosting(
        client, alice, "POST", "/email-addresses", mailbox_document(f"second@{alice.domain}")
    )
    assert second.status_code == 201, second.text
    third = hosting(
        client,
        alice,
        "POST",
        "/email-addresses",
        mailbox_document(f"third@{alice.domain}", quota={"limit": 1}),
    )
    assert third.status_code == 409, third.text
    assert third.json()["errors"][0]["code"] == "max_storage_bytes"
    # Shrinking is always possible; growing back past the shared limit is not.
    assert patch_quota(GIB // 2).status_code == 200
    grown = patch_quota(2 * GIB)
    assert grown.status_code == 409, grown.text
    assert grown.json()["errors"][0]["code"] == "max_storage_bytes"


def test_application_passwords_per_mailbox(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    set_limits(sessions, alice, max_app_passwords=2)
    created = hosting(
        client, alice, "POST", "/email-addresses", mailbox_document(f"phone@{alice.domain}")
    )
    address_id = created.json()["data"]["id"]
    body = {
        "data": {
            "type": "application-password",
            "attributes": {"device": "Phone", "application": "Mail"},
        }
    }
    path = f"/email-addresses/{address_id}/application-passwords"
    for _ in range(2):
        assert hosting(client, alice, "POST", path, body).status_code == 201
    refused = hosting(client, alice, "POST", path, body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "max_app_passwords"
    listed = hosting(client, alice, "GET", path)
    assert len(listed.json()["data"]) == 2


def test_a_lowered_limit_keeps_what_exists_and_lets_it_shrink(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant
) -> None:
    for name in ("one", "two", "three"):
        assert account(client, alice, name).status_code == 201
    set_limits(sessions, alice, max_mailboxes=1)
    assert client.get(f"/mail/account/two@{alice.domain}/", headers=alice.auth).status_code == 200
    assert account(client, alice, "four").status_code == 409
    deleted = client.delete(f"/mail/account/three@{alice.domain}/", headers=alice.auth)
    assert deleted.status_code == 204
    assert account(client, alice, "four").status_code == 409  # still 2 of 1

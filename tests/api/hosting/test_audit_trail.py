"""The audit trail over HTTP: every kind of change leaves an event with its actor, request id,
client and field-level before/after; no secret is ever in it; customers read only their own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.audit.rules import REDACTED
from postmeister.domain.audit.service import prune
from postmeister.models import Address, ApiToken, AppPassword, AuditEvent
from tests.api.hosting.jsonapi import JSONAPI, headers, mailbox, patch
from tests.api.hosting.provisioning import auth_of, create, data, send
from tests.api.hosting.provisioning import patch as patch_resource
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant, make_token

SOURCE_PASSWORD = "Sync-Source-Basic-Auth-Secret-9"


def events(client: TestClient, auth: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    """Every event the token may read, following `links.next`."""
    found: list[dict[str, Any]] = []
    link: str | None = f"/audit-events?page[size]=500{query}"
    while link is not None:
        answer = client.get(link, headers={**auth, "Accept": JSONAPI})
        assert answer.status_code == 200, answer.text
        found.extend(answer.json()["data"])
        link = answer.json()["links"]["next"]
    return found


def kinds(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["attributes"]["resource"], e["attributes"]["action"]) for e in found}


def one(found: list[dict[str, Any]], resource: str, action: str) -> dict[str, Any]:
    matching = [
        e["attributes"]
        for e in found
        if (e["attributes"]["resource"], e["attributes"]["action"]) == (resource, action)
    ]
    assert matching, (resource, action, kinds(found))
    attributes: dict[str, Any] = matching[-1]
    return attributes


def billing_flow(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    """A sample of every kind of change, by an admin and by the customer's own token."""
    customer = data(create(client, admin, "/customers", "customer", name="Audit AG"), 201)
    customer_id = int(customer["id"])
    package = data(
        create(
            client, admin, "/packages", "package", name="Gold", customer_id=customer_id,
            max_addresses=10,
        ),
        201,
    )  # fmt: skip
    data(patch_resource(client, admin, f"/packages/{package['id']}", "package", max_addresses=20))
    domain = data(
        create(
            client, admin, "/domains", "domain", name="audit.example", customer_id=customer_id,
            package_id=int(package["id"]),
        ),
        201,
    )  # fmt: skip
    token_answer = create(
        client, admin, "/api-tokens", "api-token", label="billing", customer_id=customer_id
    )
    token = data(token_answer, 201)
    secret = token["attributes"]["token"]
    tenant = Tenant(customer_id=customer_id, domain="audit.example", token=secret)
    request_id = "audit-trail-test-1"
    box = mailbox(client, tenant, "info", password=STRONG_PASSWORD)
    changed = client.patch(
        f"/email-addresses/{box['id']}",
        json={
            "data": {
                "type": "email-address",
                "id": box["id"],
                "attributes": {"password": OTHER_STRONG_PASSWORD, "description": "Front desk"},
            }
        },
        headers={**headers(tenant), "X-Request-ID": request_id},
    )
    assert changed.status_code == 200, changed.text
    app_password = client.post(
        f"/email-addresses/{box['id']}/application-passwords",
        json={
            "data": {
                "type": "application-password",
                "attributes": {"device": "Phone", "application": "Mail"},
            }
        },
        headers=headers(tenant),
    )
    assert app_password.status_code == 201, app_password.text
    app_secret = app_password.json()["data"]["attributes"]["password"]
    revoked = client.delete(
        f"/email-addresses/{box['id']}/application-passwords/{app_password.json()['data']['id']}",
        headers=headers(tenant),
    )
    assert revoked.status_code == 204, revoked.text
    source = client.post(
        "/sync/sources/",
        json={"url": f"https://sync:{SOURCE_PASSWORD}@docs.example.net/mail.json"},
        headers=tenant.auth,
    )
    assert source.status_code == 201, source.text
    assert patch(client, tenant, box["id"], {"antispam": "junk-folder"}).status_code == 200
    assert (
        client.delete(f"/email-addresses/{box['id']}", headers=headers(tenant)).status_code == 204
    )
    data(patch_resource(client, admin, f"/customers/{customer_id}", "customer", suspended=True))
    assert send(client, admin, "DELETE", f"/api-tokens/{token['id']}").status_code in (200, 204)
    return {
        "customer_id": customer_id,
        "domain_id": int(domain["id"]),
        "token_id": token["id"],
        "token_secret": secret,
        "app_secret": app_secret,
        "request_id": request_id,
        "address_id": box["id"],
    }


def test_every_kind_of_change_is_recorded_with_its_actor_and_before_and_after(
    client: TestClient, admin_auth: dict[str, str]
) -> None:
    admin = {**admin_auth, "Content-Type": JSONAPI, "Accept": JSONAPI}
    flow = billing_flow(client, admin)
    found = events(client, admin)

    assert {
        ("customer", "created"),
        ("customer", "updated"),
        ("package", "created"),
        ("package", "updated"),
        ("domain", "created"),
        ("api_token", "created"),
        ("api_token", "revoked"),
        ("address", "created"),
        ("address", "updated"),
        ("address", "deleted"),
        ("app_password", "created"),
        ("app_password", "revoked"),
        ("sync_source", "created"),
    } <= kinds(found)

    limits = one(found, "package", "updated")
    assert limits["changes"] == {"max_addresses": [10, 20]}
    suspended = one(found, "customer", "updated")
    assert suspended["changes"]["suspended_at"][0] is None
    assert suspended["changes"]["suspended_at"][1] is not None

    # The customer's own change: its token, its request id, its client, field by field.
    edit = next(
        e["attributes"] for e in found if e["attributes"]["request_id"] == flow["request_id"]
    )
    assert edit["resource"] == "address"
    assert edit["resource_id"] == flow["address_id"]
    assert edit["resource_name"] == "info@audit.example"
    assert edit["changes"] == {
        "description": [None, "Front desk"],
        "password": [REDACTED, REDACTED],
    }
    assert edit["actor_kind"] == "token"
    assert edit["actor_id"] == flow["token_id"]
    assert edit["actor_label"] == "billing"
    assert edit["client_address"] == "testclient"
    assert edit["customer_id"] == flow["customer_id"]
    assert edit["domain_id"] == flow["domain_id"]

    created = one(found, "address", "created")
    assert created["changes"]["password"] == [None, REDACTED]
    assert created["changes"]["kind"] == [None, "mailbox"]
    deleted = one(found, "address", "deleted")
    assert deleted["changes"]["antispam"] == ["junk-folder", None]
    source = one(found, "sync_source", "created")
    assert source["changes"]["url"] == [None, "https://docs.example.net/mail.json"]
    revoked = one(found, "api_token", "revoked")
    assert revoked["actor_kind"] == "token"
    assert revoked["changes"]["revoked_at"][0] is None


def test_no_password_hash_or_token_is_stored_in_any_event(
    client: TestClient, admin_auth: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    admin = {**admin_auth, "Content-Type": JSONAPI, "Accept": JSONAPI}
    hashes: list[str] = []
    with sessions() as session:
        before = {row.id for row in session.scalars(select(Address))}
    assert not before
    flow = billing_flow(client, admin)
    with sessions() as session:
        hashes += [t.token_hash for t in session.scalars(select(ApiToken))]
        hashes += [p.secret_hash for p in session.scalars(select(AppPassword))]
        stored = session.execute(text("SELECT * FROM audit_events")).all()
    assert len(stored) >= 13
    secrets = [
        STRONG_PASSWORD,
        OTHER_STRONG_PASSWORD,
        SOURCE_PASSWORD,
        flow["token_secret"],
        flow["app_secret"],
        "$argon2",  # the prefix of every password hash this controller writes
        *hashes,
    ]
    dump = "\n".join(repr(tuple(row)) for row in stored)
    for secret in secrets:
        assert secret not in dump, secret


def test_customers_read_only_their_own_events_and_another_customers_event_is_404(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    mailbox(client, alice, "alice-only")
    mailbox(client, bob, "bob-only")
    only_addresses = "&filter[resource]=address"
    admin_found = events(client, admin_auth, only_addresses)
    alice_found = events(client, alice.auth, only_addresses)
    bob_found = events(client, bob.auth, only_addresses)

    assert {e["attributes"]["resource_name"] for e in alice_found} == {"alice-only@alice.example"}
    assert {e["attributes"]["resource_name"] for e in bob_found} == {"bob-only@bob.example"}
    assert len(admin_found) == 2
    alice_event = alice_found[0]["id"]
    for auth in (bob.auth,):
        answer = client.get(f"/audit-events/{alice_event}", headers={**auth, "Accept": JSONAPI})
        missing = client.get("/audit-events/987654", headers={**auth, "Accept": JSONAPI})
        assert answer.status_code == missing.status_code == 404
        assert answer.json()["errors"][0]["detail"].replace(alice_event, "X") == missing.json()[
            "errors"
        ][0]["detail"].replace("987654", "X")
    # Bob cannot widen his view with a filter naming Alice.
    assert events(client, bob.auth, f"&filter[customer_id]={alice.customer_id}") == []


def test_a_domain_limited_token_reads_only_the_events_of_its_domains(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    from tests.support.factories import add_domain_to

    add_domain_to(sessions, alice, "second.example")
    mailbox(client, alice, "first")
    assert (
        create(
            client,
            auth_of(alice.token),
            "/email-addresses",
            "email-address",
            address="other@second.example",
            address_type="forward",
            forward_to=["first@alice.example"],
        ).status_code
        == 201
    )
    limited = {"Authorization": "Bearer " + make_token(
        sessions, customer_id=alice.customer_id, domains=["second.example"]
    )}  # fmt: skip
    names = {e["attributes"]["resource_name"] for e in events(client, limited)}
    assert names == {"second.example", "other@second.example"}


def test_filters_and_keyset_links(client: TestClient, alice: Tenant) -> None:
    for local in ("a1", "a2", "a3"):
        mailbox(client, alice, local)
    box = mailbox(client, alice, "a4")
    assert patch(client, alice, box["id"], {"description": "x"}).status_code == 200

    updates = events(client, alice.auth, "&filter[action]=updated")
    assert [e["attributes"]["resource_name"] for e in updates] == ["a4@alice.example"]
    of_one = events(
        client, alice.auth, f"&filter[resource]=address&filter[resource_id]={box['id']}"
    )
    assert [e["attributes"]["action"] for e in of_one] == ["created", "updated"]

    first = client.get("/audit-events?page[size]=2", headers=alice.auth).json()
    second = client.get(first["links"]["next"], headers=alice.auth).json()
    assert len(first["data"]) == 2 and len(second["data"]) == 2
    assert int(first["data"][-1]["id"]) < int(second["data"][0]["id"])

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    later = client.get("/audit-events", params={"filter[since]": future}, headers=alice.auth).json()
    assert later["data"] == []
    naive = client.get(
        "/audit-events", params={"filter[since]": "2026-01-01T00:00:00"}, headers=alice.auth
    )
    assert naive.status_code == 400
    assert naive.json()["errors"][0]["source"]["parameter"] == "filter[since]"


def test_a_refused_change_leaves_no_event(client: TestClient, alice: Tenant) -> None:
    box = mailbox(client, alice, "kept")
    refused = patch(client, alice, box["id"], {"password": "short", "description": "never"})
    assert refused.status_code == 422
    found = events(client, alice.auth, "&filter[resource]=address")
    assert [e["attributes"]["action"] for e in found] == ["created"]


def test_retention_forgets_old_events_only(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session], settings: Settings
) -> None:
    mailbox(client, alice, "old")
    mailbox(client, alice, "new")
    with unit_of_work(sessions) as session:
        first = session.scalars(
            select(AuditEvent).where(AuditEvent.resource == "address").order_by(AuditEvent.id)
        ).first()
        assert first is not None
        first.occurred_at = dt.datetime.now(dt.UTC) - dt.timedelta(
            days=settings.audit.retention_days + 1
        )
    with unit_of_work(sessions) as session:
        keep = dt.timedelta(days=settings.audit.retention_days)
        assert prune(session, older_than=dt.datetime.now(dt.UTC) - keep) == 1
    left = events(client, alice.auth, "&filter[resource]=address")
    assert [e["attributes"]["resource_name"] for e in left] == ["new@alice.example"]


@pytest.mark.parametrize("path", ["/audit-events", "/audit-events/1"])
def test_the_trail_needs_a_token(client: TestClient, path: str) -> None:
    assert client.get(path, headers={"Accept": JSONAPI}).status_code == 401


def test_a_moved_domain_leaves_the_old_customer_a_trail_without_the_new_owner(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    admin = {**admin_auth, "Content-Type": JSONAPI, "Accept": JSONAPI}
    listed = client.get("/domains", params={"filter[name]": alice.domain}, headers=admin)
    key = listed.json()["data"][0]["id"]
    moved = patch_resource(client, admin, f"/domains/{key}", "domain", customer_id=bob.customer_id)
    assert moved.status_code == 200, moved.text

    query = "&filter[resource]=domain&filter[action]=updated"
    (left,) = events(client, alice.auth, query)
    assert left["attributes"]["resource_name"] == alice.domain
    assert left["attributes"]["changes"]["customer_id"] == [alice.customer_id, REDACTED]
    assert all(after == REDACTED for _, after in left["attributes"]["changes"].values())
    assert str(bob.customer_id) not in repr(left["attributes"]["changes"])
    (arrived,) = events(client, bob.auth, query)
    assert arrived["attributes"]["changes"]["customer_id"] == [REDACTED, bob.customer_id]
    assert all(before == REDACTED for before, _ in arrived["attributes"]["changes"].values())
    # The admin reads both sides.
    assert len(events(client, admin_auth, query)) == 2

"""The provisioning resources over HTTP, on both databases: a billing system's flow, and
what admins and customers may each do with customers, packages and API tokens."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.domains.service import add_domain
from postmeister.models import Address, ApiToken
from tests.api.hosting.jsonapi import codes, errors, pointers
from tests.api.hosting.provisioning import auth_of, create, data, patch, send
from tests.support.factories import STRONG_PASSWORD, Tenant, make_token


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return auth_of(make_token(sessions, admin=True, label="billing"))


def test_a_billing_system_provisions_a_customer_and_revokes_its_token(
    client: TestClient, admin: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    customer = data(create(client, admin, "/customers", "customer", name="Kunde 1 GmbH"), 201)
    customer_id = int(customer["id"])
    assert customer["attributes"]["suspended"] is False
    package = data(
        create(
            client, admin, "/packages", "package",
            name="Business", customer_id=customer_id,
            max_addresses=3, max_mailboxes=2, max_storage_bytes=10 * 2**30,
            max_quota_bytes=5 * 2**30, max_app_passwords=4,
        ),
        201,
    )  # fmt: skip
    assert package["attributes"]["max_addresses"] == 3
    assert package["attributes"]["usage"]["addresses"] == 0
    # /domains is its own resource; the domain service adds it here.
    with unit_of_work(sessions) as session:
        add_domain(
            session, customer_id=customer_id, name="kunde1.example", package_id=int(package["id"])
        )
    issued = data(
        create(client, admin, "/api-tokens", "api-token", customer_id=customer_id, label="panel"),
        201,
    )
    secret = issued["attributes"]["token"]
    assert secret.startswith("pm_")
    customer_auth = auth_of(secret)

    box = create(
        client, customer_auth, "/email-addresses", "email-address",
        address="info@kunde1.example", address_type="mailbox", password=STRONG_PASSWORD,
        quota={"limit": 2**30},
    )  # fmt: skip
    assert box.status_code == 201, box.text
    seen = data(send(client, customer_auth, "GET", f"/packages/{package['id']}"))
    assert seen["attributes"]["usage"] == {
        "addresses": 1,
        "mailboxes": 1,
        "storage_bytes": 2**30,
        "mailboxes_without_quota": 0,
        "largest_quota_bytes": 2**30,
        "most_app_passwords": 0,
    }
    # The customer fills the package: a second mailbox fits, a third is the limit by name,
    # and a forward still fits until the address limit answers, also by name.
    second = create(
        client, customer_auth, "/email-addresses", "email-address",
        address="team@kunde1.example", address_type="mailbox", password=STRONG_PASSWORD,
        quota={"limit": 2**30},
    )  # fmt: skip
    assert second.status_code == 201, second.text
    third = create(
        client, customer_auth, "/email-addresses", "email-address",
        address="third@kunde1.example", address_type="mailbox", password=STRONG_PASSWORD,
        quota={"limit": 2**30},
    )  # fmt: skip
    assert third.status_code == 409, third.text
    assert codes(third) == ["max_mailboxes"]
    forward = create(
        client, customer_auth, "/email-addresses", "email-address",
        address="office@kunde1.example", address_type="forward",
        forward_to=["info@kunde1.example"],
    )  # fmt: skip
    assert forward.status_code == 201, forward.text
    full = create(
        client, customer_auth, "/email-addresses", "email-address",
        address="sales@kunde1.example", address_type="forward",
        forward_to=["info@kunde1.example"],
    )  # fmt: skip
    assert full.status_code == 409, full.text
    assert codes(full) == ["max_addresses"]
    used = data(send(client, customer_auth, "GET", f"/packages/{package['id']}"))
    assert used["attributes"]["usage"]["addresses"] == 3
    # The secret is shown once: never in a later answer.
    listed = send(client, admin, "GET", "/api-tokens")
    assert secret not in listed.text
    assert data(send(client, admin, "GET", f"/api-tokens/{issued['id']}"))["attributes"][
        "last_used_at"
    ]

    revoked = send(client, admin, "DELETE", f"/api-tokens/{issued['id']}")
    assert revoked.status_code == 204
    refused = send(client, customer_auth, "GET", "/email-addresses")
    assert refused.status_code == 401
    assert codes(refused) == ["unauthenticated"]
    shown = data(send(client, admin, "GET", f"/api-tokens/{issued['id']}"))["attributes"]
    assert shown["revoked_at"] is not None
    assert "token" not in shown


def test_customers_are_listed_renamed_suspended_and_deleted_by_admins(
    client: TestClient, admin: dict[str, str], alice: Tenant, bob: Tenant
) -> None:
    first = data(send(client, admin, "GET", "/customers?page[size]=1"))
    assert [item["attributes"]["name"] for item in first] == ["Alice GmbH"]
    page = send(client, admin, "GET", "/customers?page[size]=1").json()
    assert unquote(page["links"]["next"]) == (
        f"/customers?page[size]=1&page[after]={alice.customer_id}"
    )
    second = send(client, admin, "GET", page["links"]["next"]).json()
    assert [item["attributes"]["name"] for item in second["data"]] == ["Bob AG"]
    assert unquote(second["links"]["prev"]) == (
        f"/customers?page[size]=1&page[before]={bob.customer_id}"
    )

    path = f"/customers/{alice.customer_id}"
    renamed = data(patch(client, admin, path, "customer", name="Alice & Co. GmbH"))
    assert renamed["attributes"]["name"] == "Alice & Co. GmbH"
    taken = patch(client, admin, path, "customer", name="Bob AG")
    assert taken.status_code == 409

    suspended = data(patch(client, admin, path, "customer", suspended=True))["attributes"]
    assert suspended["suspended"] is True and suspended["suspended_at"]
    assert send(client, alice.auth, "GET", "/email-addresses").status_code == 401
    only = data(send(client, admin, "GET", "/customers?filter[suspended]=true"))
    assert [item["id"] for item in only] == [str(alice.customer_id)]
    data(patch(client, admin, path, "customer", suspended=False))
    assert send(client, alice.auth, "GET", "/email-addresses").status_code == 200

    refused = send(client, admin, "DELETE", path)
    assert refused.status_code == 409
    assert "cascade=true" in errors(refused)[0]["detail"]
    assert send(client, admin, "GET", path).status_code == 200
    assert send(client, admin, "DELETE", f"{path}?cascade=true").status_code == 204
    assert send(client, admin, "GET", path).status_code == 404
    assert send(client, alice.auth, "GET", "/email-addresses").status_code == 401
    assert send(client, bob.auth, "GET", "/email-addresses").status_code == 200


def test_a_customer_without_domains_is_deleted_without_cascade(
    client: TestClient, admin: dict[str, str]
) -> None:
    made = data(create(client, admin, "/customers", "customer", name="Leer AG"), 201)
    assert send(client, admin, "DELETE", f"/customers/{made['id']}").status_code == 204


def test_customer_names_are_checked(client: TestClient, admin: dict[str, str]) -> None:
    blank = create(client, admin, "/customers", "customer", name="  ")
    assert blank.status_code == 422
    assert pointers(blank) == ["/data/attributes/name"]
    unknown = create(client, admin, "/customers", "customer", name="X", vip=True)
    assert codes(unknown) == ["unknown-attribute"]


def test_package_limits_are_validated_and_changed_by_admins_only(
    client: TestClient, admin: dict[str, str], alice: Tenant
) -> None:
    wrong = create(
        client, admin, "/packages", "package",
        name="Bad", customer_id=alice.customer_id, max_addresses=-1, max_quota_bytes=2**63,
    )  # fmt: skip
    assert wrong.status_code == 422
    assert sorted(pointers(wrong)) == [
        "/data/attributes/max_addresses",
        "/data/attributes/max_quota_bytes",
    ]
    nobody = create(client, admin, "/packages", "package", name="P", customer_id=999999)
    assert pointers(nobody) == ["/data/attributes/customer_id"]
    made = data(
        create(client, admin, "/packages", "package", name="Pro", customer_id=alice.customer_id),
        201,
    )
    assert made["attributes"]["max_mailboxes"] is None
    path = f"/packages/{made['id']}"
    changed = data(patch(client, admin, path, "package", max_mailboxes=10, name="Pro 2"))
    assert changed["attributes"]["max_mailboxes"] == 10
    assert changed["attributes"]["name"] == "Pro 2"
    lifted = data(patch(client, admin, path, "package", max_mailboxes=None))
    assert lifted["attributes"]["max_mailboxes"] is None
    assert lifted["attributes"]["name"] == "Pro 2"

    # The customer reads its packages (the default one and this one) but changes none.
    own = data(
        send(client, alice.auth, "GET", f"/packages?filter[customer_id]={alice.customer_id}")
    )
    assert {item["attributes"]["name"] for item in own} == {"default", "Pro 2"}
    assert patch(client, alice.auth, path, "package", max_mailboxes=99).status_code == 403
    assert send(client, alice.auth, "DELETE", path).status_code == 403
    again = create(
        client, alice.auth, "/packages", "package", name="Mine", customer_id=alice.customer_id
    )
    assert again.status_code == 403
    assert send(client, admin, "DELETE", path).status_code == 204


def test_a_package_with_domains_is_not_deleted(
    client: TestClient, admin: dict[str, str], alice: Tenant
) -> None:
    (default,) = data(send(client, alice.auth, "GET", "/packages"))
    refused = send(client, admin, "DELETE", f"/packages/{default['id']}")
    assert refused.status_code == 409


def test_usage_counts_mailboxes_forwards_quotas_and_app_passwords(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    def address(local: str, kind: str, **extra: object) -> str:
        response = create(
            client, alice.auth, "/email-addresses", "email-address",
            address=f"{local}@{alice.domain}", address_type=kind, **extra,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    small = address("small", "mailbox", quota={"limit": 1000})
    address("big", "mailbox", quota={"limit": 5000})
    free = address("free", "mailbox")
    # The hosting dialect always sets a quota; other writers (a sync document) may not.
    with unit_of_work(sessions) as session:
        session.execute(update(Address).where(Address.id == int(free)).values(quota_bytes=None))
    address("team", "forward", forward_to=["x@elsewhere.example"])
    for device in ("a", "b"):
        created = create(
            client, alice.auth, f"/email-addresses/{small}/application-passwords",
            "application-password", device=device, application="Mail",
        )  # fmt: skip
        assert created.status_code == 201
    (package,) = data(send(client, alice.auth, "GET", "/packages"))
    assert package["attributes"]["usage"] == {
        "addresses": 4,
        "mailboxes": 3,
        "storage_bytes": 6000,
        "mailboxes_without_quota": 1,
        "largest_quota_bytes": 5000,
        "most_app_passwords": 2,
    }


def test_customers_create_tokens_never_wider_than_their_own(
    client: TestClient, alice: Tenant, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    def token(auth: dict[str, str], **attributes: object) -> httpx.Response:
        return create(client, auth, "/api-tokens", "api-token", **attributes)

    assert token(alice.auth, admin=True).status_code == 403
    assert token(alice.auth, customer_id=bob.customer_id).status_code == 404
    assert token(alice.auth, domains=[bob.domain]).status_code == 422
    reader = data(token(alice.auth, read_only=True, label="reader"), 201)
    reader_auth = auth_of(reader["attributes"]["token"])
    assert token(reader_auth, label="writer").status_code == 403
    assert send(client, reader_auth, "DELETE", f"/api-tokens/{reader['id']}").status_code == 403

    # A token limited to domains creates only tokens limited to some of them.
    with unit_of_work(sessions) as session:
        add_domain(session, customer_id=alice.customer_id, name="second.alice.example")
    limited = data(token(alice.auth, domains=[alice.domain]), 201)
    assert limited["attributes"]["domains"] == [alice.domain]
    limited_auth = auth_of(limited["attributes"]["token"])
    assert token(limited_auth).status_code == 422
    wider = token(limited_auth, domains=["second.alice.example"])
    assert wider.status_code == 422
    assert data(token(limited_auth, domains=[alice.domain]), 201)
    # ... and sees only such tokens: not the customer's unlimited ones.
    visible = {item["id"] for item in data(send(client, limited_auth, "GET", "/api-tokens"))}
    assert str(limited["id"]) in visible and str(reader["id"]) not in visible

    # A token that expires creates only tokens that expire no later.
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    expiring = data(token(alice.auth, expires_at=soon.isoformat()), 201)
    expiring_auth = auth_of(expiring["attributes"]["token"])
    forever = token(expiring_auth)
    assert pointers(forever) == ["/data/attributes/expires_at"]
    later = token(expiring_auth, expires_at=(soon + dt.timedelta(days=1)).isoformat())
    assert later.status_code == 422

    # A customer lists only its own tokens; an admin all of them.
    own = data(send(client, alice.auth, "GET", "/api-tokens"))
    with sessions() as session:
        alice_tokens = session.scalars(
            select(ApiToken.id).where(ApiToken.customer_id == alice.customer_id)
        ).all()
    assert {int(item["id"]) for item in own} == set(alice_tokens)


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    def last_used() -> dt.datetime | None:
        with sessions() as session:
            found = session.scalars(
                select(ApiToken.last_used_at).where(ApiToken.customer_id == alice.customer_id)
            ).one()
            return found

    assert last_used() is None
    send(client, alice.auth, "GET", "/email-addresses")
    first = last_used()
    assert first is not None
    send(client, alice.auth, "GET", "/email-addresses")
    assert last_used() == first
    with unit_of_work(sessions) as session:
        token = session.scalars(
            select(ApiToken).where(ApiToken.customer_id == alice.customer_id)
        ).one()
        token.last_used_at = first - dt.timedelta(minutes=2)
    send(client, alice.auth, "GET", "/email-addresses")
    later = last_used()
    assert later is not None and later > first - dt.timedelta(minutes=2)

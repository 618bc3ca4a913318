"""`/domains` over HTTP on both databases: admins add, move, alias and delete; a customer
reads its own domains and sets their catch-all; another customer's domain is a 404 like a
missing one, and nothing a customer or an admin does makes a domain cross tenants."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.models import Package
from tests.api.hosting.jsonapi import JSONAPI, errors, forward, mailbox
from tests.support.factories import Tenant, make_token

MISSING = "987654"


def _headers(auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "Content-Type": JSONAPI, "Accept": JSONAPI}


def domain_id(client: TestClient, auth: dict[str, str], name: str) -> str:
    response = client.get("/domains", params={"filter[name]": name}, headers=_headers(auth))
    assert response.status_code == 200, response.text
    (found,) = response.json()["data"]
    found_id: str = found["id"]
    return found_id


def add(client: TestClient, admin: dict[str, str], **attributes: Any) -> httpx.Response:
    document = {"data": {"type": "domain", "attributes": attributes}}
    response: httpx.Response = client.post("/domains", json=document, headers=_headers(admin))
    return response


def patch(client: TestClient, auth: dict[str, str], key: str, **attributes: Any) -> httpx.Response:
    document = {"data": {"type": "domain", "id": key, "attributes": attributes}}
    response: httpx.Response = client.patch(
        f"/domains/{key}", json=document, headers=_headers(auth)
    )
    return response


def package(sessions: sessionmaker[Session], customer_id: int, name: str) -> int:
    with unit_of_work(sessions) as session:
        row = Package(customer_id=customer_id, name=name)
        session.add(row)
        session.flush()
        return row.id


def codes(response: httpx.Response) -> list[str]:
    return [error["code"] for error in errors(response)]


def test_an_admin_adds_a_domain_and_everyone_sees_it_as_json_api(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    created = add(client, admin_auth, name="Müller.Example", customer_id=alice.customer_id)

    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == JSONAPI
    data = created.json()["data"]
    assert data["type"] == "domain"
    assert created.headers["location"] == f"/domains/{data['id']}"
    attributes = data["attributes"]
    assert attributes["name"] == "müller.example"
    assert attributes["ascii_name"] == "xn--mller-kva.example"
    assert attributes["customer_id"] == alice.customer_id
    assert attributes["catchall"] == [] and attributes["aliases"] == []
    assert attributes["alias_of"] is None
    own = client.get(f"/domains/{data['id']}", headers=_headers(alice.auth))
    assert own.json()["data"]["attributes"]["name"] == "müller.example"
    again = add(client, admin_auth, name="xn--mller-kva.example", customer_id=alice.customer_id)
    assert again.status_code == 409


def test_lists_are_keyset_pages_with_links_and_filters(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    for index in range(4):
        assert add(client, admin_auth, name=f"d{index}.example", customer_id=alice.customer_id)
    first = client.get("/domains", params={"page[size]": "2"}, headers=_headers(admin_auth))
    body = first.json()
    assert len(body["data"]) == 2 and body["links"]["prev"] is None
    seen = [item["id"] for item in body["data"]]
    link: str | None = body["links"]["next"]
    while link:
        page = client.get(link, headers=_headers(admin_auth)).json()
        seen.extend(item["id"] for item in page["data"])
        link = page["links"]["next"]
    assert len(seen) == 6 == len(set(seen))  # alice.example, bob.example and four more
    assert seen == sorted(seen, key=int)

    back = client.get(
        "/domains",
        params={"page[before]": seen[-1], "page[size]": "2"},
        headers=_headers(admin_auth),
    ).json()
    assert [item["id"] for item in back["data"]] == seen[-3:-1]
    assert back["links"]["next"] is not None and back["links"]["prev"] is not None

    mine = client.get("/domains", headers=_headers(alice.auth)).json()["data"]
    assert {item["attributes"]["name"] for item in mine} == {
        "alice.example",
        *(f"d{i}.example" for i in range(4)),
    }
    filtered = client.get(
        "/domains", params={"customer_id": str(bob.customer_id)}, headers=_headers(admin_auth)
    ).json()
    assert [item["attributes"]["name"] for item in filtered["data"]] == ["bob.example"]
    assert f"filter%5Bcustomer_id%5D={bob.customer_id}" in filtered["links"]["self"]
    # Bob filtering for Alice's customer id sees nothing, not an error that confirms it.
    peek = client.get(
        "/domains", params={"customer_id": str(alice.customer_id)}, headers=_headers(bob.auth)
    )
    assert peek.status_code == 200 and peek.json()["data"] == []
    unknown = client.get("/domains", params={"sort": "name"}, headers=_headers(admin_auth))
    assert unknown.status_code == 400


def test_moving_takes_the_addresses_along_and_the_package_must_be_the_customers(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    admin_auth: dict[str, str],
    sessions: sessionmaker[Session],
) -> None:
    box = mailbox(client, alice)
    key = domain_id(client, admin_auth, alice.domain)
    alice_extra = package(sessions, alice.customer_id, "extra")
    bob_extra = package(sessions, bob.customer_id, "extra")

    moved = patch(client, admin_auth, key, package_id=alice_extra)
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["attributes"]["package_id"] == alice_extra

    # Into another customer's package: refused, naming the rule; nothing changes.
    foreign = patch(client, admin_auth, key, package_id=bob_extra)
    assert foreign.status_code == 422 and codes(foreign) == ["foreign_package"]
    mismatch = patch(client, admin_auth, key, customer_id=alice.customer_id, package_id=bob_extra)
    assert mismatch.status_code == 422

    to_bob = patch(client, admin_auth, key, customer_id=bob.customer_id, package_id=bob_extra)
    assert to_bob.status_code == 200, to_bob.text
    assert to_bob.json()["data"]["attributes"]["customer_id"] == bob.customer_id
    # The address moved with it: Bob sees it now, Alice no longer does.
    assert (
        client.get(f"/email-addresses/{box['id']}", headers=_headers(bob.auth)).status_code == 200
    )
    gone = client.get(f"/email-addresses/{box['id']}", headers=_headers(alice.auth))
    assert gone.status_code == 404
    assert client.get(f"/domains/{key}", headers=_headers(alice.auth)).status_code == 404


@pytest.mark.parametrize(
    ("limits", "rules"),
    [
        ({"max_addresses": 2}, ["max_addresses"]),
        ({"max_mailboxes": 1}, ["max_mailboxes"]),
        ({"max_storage_bytes": 5 * 2**30}, ["max_storage_bytes"]),  # 2 + 10 GiB of quotas
        ({"max_quota_bytes": 5 * 2**30}, ["max_quota_bytes"]),  # one mailbox has 10 GiB
        ({"max_app_passwords": 0}, ["max_app_passwords"]),
        ({"max_addresses": 3, "max_mailboxes": 2, "max_app_passwords": 1}, []),  # just fits
    ],
)
def test_moving_a_domain_into_a_package_obeys_its_limits(
    client: TestClient,
    alice: Tenant,
    admin_auth: dict[str, str],
    sessions: sessionmaker[Session],
    limits: dict[str, int],
    rules: list[str],
) -> None:
    """A move grows the target package exactly as creating the addresses in it would."""
    mailbox(client, alice, "small", quota={"limit": 2 * 2**30})
    default_quota = mailbox(client, alice, "default")  # the customer's default: 10 GiB
    forward(client, alice, "team", [f"small@{alice.domain}"])
    added = client.post(
        f"/email-addresses/{default_quota['id']}/application-passwords",
        json={"data": {"type": "application-password", "attributes": {"device": "d", "application": "a"}}},
        headers=_headers(alice.auth),
    )  # fmt: skip
    assert added.status_code == 201, added.text
    with unit_of_work(sessions) as session:
        target = Package(customer_id=alice.customer_id, name="small", **limits)
        session.add(target)
        session.flush()
        target_id = target.id
    key = domain_id(client, admin_auth, alice.domain)
    before = client.get(f"/domains/{key}", headers=_headers(admin_auth)).json()

    moved = patch(client, admin_auth, key, package_id=target_id)
    if not rules:
        assert moved.status_code == 200, moved.text
        assert moved.json()["data"]["attributes"]["package_id"] == target_id
        return
    assert moved.status_code == 409, moved.text
    assert codes(moved) == rules
    assert [e["source"]["pointer"] for e in errors(moved)] == ["/data/attributes/package_id"]
    assert client.get(f"/domains/{key}", headers=_headers(admin_auth)).json() == before


def test_delete_is_refused_while_addresses_remain_unless_cascaded(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    box = mailbox(client, alice)
    key = domain_id(client, admin_auth, alice.domain)

    refused = client.delete(f"/domains/{key}", headers=_headers(admin_auth))
    assert refused.status_code == 409 and "1 address" in errors(refused)[0]["detail"]
    assert (
        client.get(f"/email-addresses/{box['id']}", headers=_headers(alice.auth)).status_code == 200
    )

    done = client.delete(
        f"/domains/{key}", params={"cascade": "true"}, headers=_headers(admin_auth)
    )
    assert done.status_code == 204
    assert client.get(f"/domains/{key}", headers=_headers(admin_auth)).status_code == 404
    assert (
        client.get(f"/email-addresses/{box['id']}", headers=_headers(alice.auth)).status_code == 404
    )
    empty = add(client, admin_auth, name="empty.example", customer_id=alice.customer_id)
    empty_key = empty.json()["data"]["id"]
    assert client.delete(f"/domains/{empty_key}", headers=_headers(admin_auth)).status_code == 204


def test_catchall_targets_follow_the_forward_target_rules(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    mailbox(client, alice, "postmaster")
    key = domain_id(client, alice.auth, alice.domain)

    # The customer sets its own domain's catch-all.
    own = patch(
        client, alice.auth, key, catchall=[f"Postmaster@{alice.domain}", "Copy@Elsewhere.example"]
    )
    assert own.status_code == 200, own.text
    assert own.json()["data"]["attributes"]["catchall"] == [
        f"postmaster@{alice.domain}",
        "copy@elsewhere.example",
    ]
    broken = patch(
        client, alice.auth, key, catchall=["not an address", "a@x.example", "A@x.example"]
    )
    assert broken.status_code == 422
    assert {e["source"]["pointer"] for e in errors(broken)} >= {
        "/data/attributes/catchall/0",
        "/data/attributes/catchall/2",
    }
    # An unknown address of the domain itself would be caught again: refused.
    loop = patch(client, alice.auth, key, catchall=[f"nobody@{alice.domain}"])
    assert loop.status_code == 422 and codes(loop) == ["catchall_loop"]
    too_many = patch(client, admin_auth, key, catchall=[f"t{i}@x.example" for i in range(101)])
    assert too_many.status_code == 422
    off = patch(client, alice.auth, key, catchall=[])
    assert off.json()["data"]["attributes"]["catchall"] == []


def test_alias_domains_show_both_directions_and_stay_within_one_level(
    client: TestClient, alice: Tenant, admin_auth: dict[str, str]
) -> None:
    main = domain_id(client, admin_auth, alice.domain)
    created = add(
        client,
        admin_auth,
        name="alias.example",
        customer_id=alice.customer_id,
        alias_of=alice.domain,
    )
    assert created.status_code == 201, created.text
    alias = created.json()["data"]
    assert alias["attributes"]["alias_of"] == alice.domain
    shown = client.get(f"/domains/{main}", headers=_headers(alice.auth)).json()["data"]
    assert shown["attributes"]["aliases"] == ["alias.example"]

    # One level: the main domain cannot become an alias of its alias, nor an alias domain
    # have a catch-all of its own.
    chain = patch(client, admin_auth, main, alias_of="alias.example")
    assert chain.status_code == 422 and "alias_chain" in codes(chain)
    own_catchall = patch(client, admin_auth, alias["id"], catchall=["a@x.example"])
    assert own_catchall.status_code == 422 and codes(own_catchall) == ["alias_catchall"]
    # Deleting the main domain takes its alias domains only when cascaded.
    refused = client.delete(f"/domains/{main}", headers=_headers(admin_auth))
    assert refused.status_code == 409
    ended = patch(client, admin_auth, alias["id"], alias_of=None)
    assert ended.json()["data"]["attributes"]["alias_of"] is None
    assert client.delete(f"/domains/{main}", headers=_headers(admin_auth)).status_code == 204


def test_customers_read_but_only_admins_add_move_alias_or_delete(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    key = domain_id(client, alice.auth, alice.domain)
    assert (
        add(client, alice.auth, name="new.example", customer_id=alice.customer_id).status_code
        == 403
    )
    assert patch(client, alice.auth, key, package_id=1).status_code == 403
    assert client.delete(f"/domains/{key}", headers=_headers(alice.auth)).status_code == 403
    read_only = {"Authorization": f"Bearer {make_token_for(client, alice)}"}
    assert patch(client, read_only, key, catchall=[]).status_code == 403
    assert client.get(f"/domains/{key}", headers=_headers(read_only)).status_code == 200


def make_token_for(client: TestClient, tenant: Tenant) -> str:
    sessions: sessionmaker[Session] = client.app.state.postmeister.sessions  # type: ignore[attr-defined]
    return make_token(sessions, customer_id=tenant.customer_id, read_only=True)


@pytest.mark.parametrize(
    ("method", "attributes"),
    [
        ("GET", None),
        ("PATCH", {"catchall": ["x@elsewhere.example"]}),
        ("PATCH", {"alias_of": "bob.example"}),
        ("PATCH", {"package_id": 1}),
        ("DELETE", None),
    ],
)
def test_another_customers_domain_is_a_404_like_a_missing_one(
    client: TestClient,
    alice: Tenant,
    bob: Tenant,
    admin_auth: dict[str, str],
    method: str,
    attributes: dict[str, Any] | None,
) -> None:
    bobs = domain_id(client, admin_auth, bob.domain)
    answers = []
    for key in (bobs, MISSING):
        if method == "PATCH":
            response = patch(client, alice.auth, key, **(attributes or {}))
        else:
            response = client.request(method, f"/domains/{key}", headers=_headers(alice.auth))
        answers.append((response.status_code, errors(response)[0]["detail"].replace(key, "K")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    after = client.get(f"/domains/{bobs}", headers=_headers(bob.auth)).json()["data"]
    assert after["attributes"]["catchall"] == [] and after["attributes"]["alias_of"] is None


def test_no_admin_change_makes_a_domain_cross_customers(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    alices = domain_id(client, admin_auth, alice.domain)
    # Aliasing another customer's domain is refused, both at creation and later.
    created = add(
        client, admin_auth, name="alias.example", customer_id=bob.customer_id, alias_of=alice.domain
    )
    assert created.status_code == 422 and codes(created) == ["foreign_domain"]
    bobs = domain_id(client, admin_auth, bob.domain)
    later = patch(client, admin_auth, bobs, alias_of=alice.domain)
    assert later.status_code == 422 and codes(later) == ["foreign_domain"]
    # A domain in an alias relation keeps its customer.
    assert (
        add(
            client,
            admin_auth,
            name="alias.example",
            customer_id=alice.customer_id,
            alias_of=alice.domain,
        ).status_code
        == 201
    )
    moved = patch(client, admin_auth, alices, customer_id=bob.customer_id)
    assert moved.status_code == 409
    # Forward and catch-all targets may name any address, as forwards always could: a
    # catch-all into Bob's domain only delivers there, it reads nothing of Bob's.
    forward(client, alice, "office", [f"x@{bob.domain}"])
    assert patch(client, alice.auth, alices, catchall=[f"x@{bob.domain}"]).status_code == 200

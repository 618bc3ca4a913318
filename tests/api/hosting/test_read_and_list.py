"""GET /email-addresses/{id} and GET /email-addresses: details, filters, keyset pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.customers.service import get_customer
from postmeister.domain.domains.service import add_domain
from postmeister.models import Address, Domain, ForwardTarget, MailboxUsage, Package
from tests.api.hosting.jsonapi import (
    JSONAPI,
    attributes_of,
    codes,
    errors,
    forward,
    get,
    headers,
    mailbox,
)
from tests.support.factories import Tenant, add_domain_to


def listing(
    client: TestClient, tenant: Tenant, url: str = "/email-addresses", **params: Any
) -> dict[str, Any]:
    # httpx would drop the query of `url` (a link) when given params, even empty ones.
    response = client.get(url, params=params or None, headers=headers(tenant))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSONAPI
    body: dict[str, Any] = response.json()
    return body


def addresses_in(body: dict[str, Any]) -> list[str]:
    return [item["attributes"]["address"] for item in body["data"]]


def test_mailbox_details_include_quota_limit_and_usage(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = mailbox(client, alice)
    with unit_of_work(sessions) as session:
        row = session.get(Address, int(created["id"]))
        assert row is not None
        row.quota_bytes = 2_000_000_000
        # Written by Dovecot's quota dict in production.
        session.add(MailboxUsage(username="info@alice.example", bytes=123_456, messages=7))
    attributes = attributes_of(get(client, alice, created["id"]))
    assert attributes["quota"] == {"limit": 2_000_000_000, "usage": 123_456}
    assert attributes["address_type"] == "mailbox"
    assert attributes["created_at"].endswith("Z") or "+" in attributes["created_at"]


def test_a_forward_has_no_mailbox_details(client: TestClient, alice: Tenant) -> None:
    created = forward(client, alice, "office", ["a@elsewhere.example"])
    attributes = attributes_of(get(client, alice, created["id"]))
    assert attributes["forward_to"] == ["a@elsewhere.example"]
    assert "quota" not in attributes and "autoresponder" not in attributes


@pytest.mark.parametrize(
    "bad_id", ["999", "0", "007", "abc", "1e3", "-1", "99999999999", "2147483648"]
)
def test_unknown_and_malformed_ids_are_404(client: TestClient, alice: Tenant, bad_id: str) -> None:
    mailbox(client, alice)
    response = get(client, alice, bad_id)
    assert response.status_code == 404
    assert codes(response) == ["not-found"]


@pytest.fixture
def populated(client: TestClient, alice: Tenant, sessions: sessionmaker[Session]) -> dict[str, int]:
    """alice: alice.example (default package) and second.example (package "extra")."""
    with unit_of_work(sessions) as session:
        customer = get_customer(session, alice.customer_id)
        extra = Package(customer_id=customer.id, name="extra")
        session.add(extra)
        session.flush()
        extra_id = extra.id
    with unit_of_work(sessions) as session:
        add_domain(
            session, customer_id=alice.customer_id, name="second.example", package_id=extra_id
        )
    mailbox(client, alice, "info")
    forward(client, alice, "office", ["info@alice.example"])
    response = client.post(
        "/email-addresses",
        json={
            "data": {
                "type": "email-address",
                "attributes": {"address": "team@second.example", "address_type": "mailbox"},
            }
        },
        headers=headers(alice),
    )
    assert response.status_code == 201
    return {"extra": extra_id}


def test_filters_in_jsonapi_and_bare_form(
    client: TestClient, alice: Tenant, populated: dict[str, int]
) -> None:
    assert addresses_in(listing(client, alice)) == [
        "info@alice.example",
        "office@alice.example",
        "team@second.example",
    ]
    for params in ({"filter[domain]": "second.example"}, {"domain": "SECOND.example"}):
        assert addresses_in(listing(client, alice, **params)) == ["team@second.example"]
    for params in (
        {"filter[address]": "Office@alice.example"},
        {"address": "office@alice.example"},
    ):
        assert addresses_in(listing(client, alice, **params)) == ["office@alice.example"]
    extra = populated["extra"]
    for params in ({"filter[package_id]": str(extra)}, {"package_id": str(extra)}):
        assert addresses_in(listing(client, alice, **params)) == ["team@second.example"]
    both = listing(
        client, alice, **{"filter[domain]": "alice.example", "address": "info@alice.example"}
    )
    assert addresses_in(both) == ["info@alice.example"]
    assert listing(client, alice, address="nobody@alice.example")["data"] == []
    assert listing(client, alice, address="not an address")["data"] == []
    assert listing(client, alice, package_id="999")["data"] == []


def test_filter_errors_are_400_naming_the_parameter(
    client: TestClient, alice: Tenant, bob: Tenant, populated: dict[str, int]
) -> None:
    cases = [
        ({"filter[domain]": "a.example", "domain": "b.example"}, "domain"),
        ({"filter[package_id]": "x"}, "filter[package_id]"),
        ({"page[size]": "0"}, "page[size]"),
        ({"page[size]": "501"}, "page[size]"),
        ({"page[after]": "1", "page[before]": "9"}, "page[before]"),
        ({"sort": "address"}, "sort"),
        ({"include": "domain"}, "include"),
        ({"filter[domain]": "not a domain!"}, "filter[domain]"),
    ]
    for params, parameter in cases:
        response = client.get("/email-addresses", params=params, headers=headers(alice))
        assert response.status_code == 400, (params, response.text)
        assert errors(response)[0]["source"] == {"parameter": parameter}, params
    # A domain that is not the caller's, like one that does not exist, is not found.
    foreign = client.get("/email-addresses", params={"domain": bob.domain}, headers=headers(alice))
    assert foreign.status_code == 404


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_keyset_pages_with_next_and_prev_links(client: TestClient, alice: Tenant) -> None:
    names = [f"user{n:02d}" for n in range(7)]
    for name in names:
        forward(client, alice, name, ["x@elsewhere.example"])
    expected = [f"{name}@alice.example" for name in names]

    first = listing(client, alice, **{"page[size]": "3"})
    assert addresses_in(first) == expected[:3]
    assert first["links"]["prev"] is None
    assert query_of(first["links"]["self"])["page[size]"] == ["3"]
    assert first["links"]["first"] == first["links"]["self"]

    second = listing(client, alice, first["links"]["next"])
    assert addresses_in(second) == expected[3:6]
    third = listing(client, alice, second["links"]["next"])
    assert addresses_in(third) == expected[6:]
    assert third["links"]["next"] is None

    back = listing(client, alice, third["links"]["prev"])
    assert addresses_in(back) == expected[3:6]
    start = listing(client, alice, back["links"]["prev"])
    assert addresses_in(start) == expected[:3]
    assert start["links"]["prev"] is None
    assert start["links"]["next"] is not None


def test_links_carry_the_filters(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "second.example")
    for n in range(3):
        forward(client, alice, f"a{n}", ["x@elsewhere.example"])
    for n in range(3):
        client.post(
            "/email-addresses",
            json={
                "data": {
                    "type": "email-address",
                    "attributes": {
                        "address": f"b{n}@second.example",
                        "address_type": "forward",
                        "forward_to": ["x@elsewhere.example"],
                    },
                }
            },
            headers=headers(alice),
        )
    page = listing(client, alice, domain="second.example", **{"page[size]": "2"})
    assert addresses_in(page) == ["b0@second.example", "b1@second.example"]
    assert query_of(page["links"]["next"])["filter[domain]"] == ["second.example"]
    rest = listing(client, alice, page["links"]["next"])
    assert addresses_in(rest) == ["b2@second.example"]
    assert rest["links"]["next"] is None


def test_default_and_maximum_page_sizes(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        domain_id = session.scalar(select(Domain.id).where(Domain.name == "alice.example"))
        assert domain_id is not None
        session.add_all(
            Address(
                domain_id=domain_id,
                address=f"bulk{n:04d}@alice.example",
                local_part=f"bulk{n:04d}",
                kind="forward",
                forward_targets=[ForwardTarget(position=0, target="x@elsewhere.example")],
            )
            for n in range(520)
        )
    default = listing(client, alice)
    assert len(default["data"]) == 50
    largest = listing(client, alice, **{"page[size]": "500"})
    assert len(largest["data"]) == 500
    rest = listing(client, alice, largest["links"]["next"])
    assert len(rest["data"]) == 20
    assert rest["links"]["next"] is None


def test_an_empty_list(client: TestClient, alice: Tenant) -> None:
    body = listing(client, alice)
    assert body["data"] == []
    assert body["links"]["next"] is None and body["links"]["prev"] is None
    assert body["jsonapi"] == {"version": "1.1"}


def test_cursors_at_the_largest_id_are_an_empty_page_not_an_error(
    client: TestClient, alice: Tenant
) -> None:
    # Found by the fuzzer: the neighbour of the largest id overflowed PostgreSQL's INTEGER.
    for cursor in ("page[after]", "page[before]"):
        response = client.get(
            "/email-addresses", params={cursor: str(2**31 - 1)}, headers=headers(alice)
        )
        assert response.status_code == 200, response.text

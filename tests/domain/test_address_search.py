"""What the customer menu's address search finds (`queries.search_address_page`): a whole
address, a domain, or the addresses that start with the text — only ever the actor's own,
with the other customer's look-alike addresses and domains in the same database."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.queries import AddressSearch, search_address_page
from postmeister.models import Address, Domain
from tests.support.factories import Tenant, add_domain_to, make_tenant

LOCALS = ["al", "al-b", "al.c", "alb", "alice", "alina", "bert", "zoë"]


def _add(sessions: sessionmaker[Session], domain: str, locals_: list[str]) -> None:
    with unit_of_work(sessions) as session:
        domain_id = session.scalar(select(Domain.id).where(Domain.name == domain))
        session.execute(insert(Address), [
            {"domain_id": domain_id, "address": f"{local}@{domain}", "local_part": local,
             "kind": "forward"}
            for local in locals_
        ])  # fmt: skip


@pytest.fixture
def tenants(sessions: sessionmaker[Session]) -> tuple[Tenant, Tenant]:
    alice = make_tenant(sessions, name="Alice AG", domain="alice.example")
    add_domain_to(sessions, alice, "second.example")
    bob = make_tenant(sessions, name="Bob AG", domain="bob.example")
    _add(sessions, alice.domain, LOCALS)
    _add(sessions, "second.example", ["alice", "carl"])
    # Bob's addresses start like Alice's, and one of his local parts is her domain's name.
    _add(sessions, bob.domain, ["al", "alice", "alicia", "second.example"])
    return alice, bob


def _search(
    sessions: sessionmaker[Session], tenant: Tenant, text: str, *, size: int = 50,
    after: str | None = None, before: str | None = None,
) -> tuple[list[str], AddressSearch]:  # fmt: skip
    with unit_of_work(sessions) as session:
        found = search_address_page(
            session, Actor.for_customer(tenant.customer_id), text, size=size, after=after,
            before=before,
        )  # fmt: skip
        return [a.address for a in found.page.addresses], found


def test_a_prefix_finds_the_addresses_starting_with_it_in_every_own_domain(
    sessions: sessionmaker[Session], tenants: tuple[Tenant, Tenant]
) -> None:
    alice, _ = tenants
    shown, found = _search(sessions, alice, "ALI")
    assert shown == ["alice@alice.example", "alice@second.example", "alina@alice.example"]
    assert found.order == "address"
    # Code point order, whatever the database's collation: "al-b" < "al.c" < "alb".
    shown, _ = _search(sessions, alice, "al")
    assert shown[:4] == ["al-b@alice.example", "al.c@alice.example", "al@alice.example",
                         "alb@alice.example"]  # fmt: skip
    assert _search(sessions, alice, "alice@sec")[0] == ["alice@second.example"]
    assert _search(sessions, alice, "zo")[0] == ["zoë@alice.example"]
    assert _search(sessions, alice, "nobody")[0] == []


def test_a_whole_address_or_a_domain_is_found_as_such(
    sessions: sessionmaker[Session], tenants: tuple[Tenant, Tenant]
) -> None:
    alice, _ = tenants
    shown, found = _search(sessions, alice, "Alice@ALICE.example")
    assert (shown, found.order) == (["alice@alice.example"], "id")
    shown, found = _search(sessions, alice, "second.example")
    assert (shown, found.order) == (["alice@second.example", "carl@second.example"], "id")
    assert _search(sessions, alice, "@second.example")[0] == shown


def test_the_other_customers_addresses_and_domains_are_never_found(
    sessions: sessionmaker[Session], tenants: tuple[Tenant, Tenant]
) -> None:
    alice, bob = tenants
    assert _search(sessions, alice, "alicia")[0] == []
    assert _search(sessions, alice, "alice@bob.example")[0] == []
    # His domain is no domain of hers: searched as a prefix, it matches none of hers.
    assert _search(sessions, alice, "bob.example")[0] == []
    everything = _search(sessions, alice, "")[0] + _search(sessions, alice, "a")[0]
    assert all(not address.endswith("@bob.example") for address in everything)
    # And the other way round: her domain's name is one of his local parts' beginnings.
    assert _search(sessions, bob, "second")[0] == ["second.example@bob.example"]


def test_prefix_pages_go_forward_and_back_by_address(
    sessions: sessionmaker[Session], tenants: tuple[Tenant, Tenant]
) -> None:
    alice, _ = tenants
    every, _ = _search(sessions, alice, "al")
    assert len(every) == 7
    first, found = _search(sessions, alice, "al", size=3)
    assert first == every[:3]
    assert (found.page.more_before, found.page.more_after) == (False, True)
    cursors = found.cursors()
    assert cursors is not None
    second, found = _search(sessions, alice, "al", size=3, after=cursors[1])
    assert second == every[3:6]
    assert (found.page.more_before, found.page.more_after) == (True, True)
    cursors = found.cursors()
    assert cursors is not None
    back, found = _search(sessions, alice, "al", size=3, before=cursors[0])
    assert back == first
    assert (found.page.more_before, found.page.more_after) == (False, True)
    last, found = _search(sessions, alice, "al", size=3, after=every[5])
    assert last == every[6:]
    assert (found.page.more_before, found.page.more_after) == (True, False)

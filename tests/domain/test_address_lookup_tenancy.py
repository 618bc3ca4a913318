"""Lookups by key (id or address) check the one row's domain against
`access.visible_domains` (a correlated EXISTS, `visible_addresses(by_key=True)`), pages list
the actor's domains first. Both must draw the same line: another customer's address, and
for a domain-limited token an address of a domain outside its limit, is missing in every
spelling, by id and by address, while its owner and an admin find it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.queries import get_address, list_address_page
from postmeister.domain.addresses.service import NewAddress, create_address
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import NotFound
from postmeister.models import Address, Domain
from tests.conftest import fast_password_settings
from tests.support.factories import add_domain_to, make_tenant

PASSWORDS = Passwords(fast_password_settings())
MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"


def _mailbox(sessions: sessionmaker[Session], customer_id: int, local: str, domain: str) -> int:
    with unit_of_work(sessions) as session:
        new = NewAddress(local_part=local, domain=domain, kind="mailbox")
        created = create_address(
            session, Actor.for_customer(customer_id), new, passwords=PASSWORDS, password_hash=MD5
        )
        return created.address.id


def _domain_id(sessions: sessionmaker[Session], name: str) -> int:
    with unit_of_work(sessions, write=False) as session:
        found = session.scalar(select(Domain.id).where(Domain.name == name))
        assert found is not None
        return found


def test_a_key_lookup_sees_exactly_what_a_page_sees(sessions: sessionmaker[Session]) -> None:
    alice = make_tenant(sessions, name="Alice Lookup", domain="alice-lookup.example")
    add_domain_to(sessions, alice, "alice-other.example")
    bob = make_tenant(sessions, name="Bob Lookup", domain="bob-lookup.example")
    own = _mailbox(sessions, alice.customer_id, "info", "alice-lookup.example")
    sibling = _mailbox(sessions, alice.customer_id, "info", "alice-other.example")
    foreign = _mailbox(sessions, bob.customer_id, "ceo", "bob-lookup.example")
    limited = Actor(
        customer_id=alice.customer_id,
        domain_ids=frozenset({_domain_id(sessions, "alice-lookup.example")}),
        token_id=None,
    )
    keys: dict[int, tuple[str, ...]] = {
        own: ("info@alice-lookup.example",),
        sibling: ("info@alice-other.example", "INFO@Alice-Other.Example"),
        foreign: ("ceo@bob-lookup.example", "CEO@BOB-LOOKUP.EXAMPLE"),
    }
    expected = {
        Actor.for_customer(alice.customer_id): {own, sibling},
        limited: {own},
        Actor.for_customer(bob.customer_id): {foreign},
        Actor.system(): {own, sibling, foreign},
    }
    with unit_of_work(sessions, write=False) as session:
        for actor, visible in expected.items():
            paged = {a.id for a in list_address_page(session, actor, size=50).addresses}
            assert paged == visible, actor
            for address_id, names in keys.items():
                spellings: tuple[str | int, ...] = (address_id, *names)
                for key in spellings:
                    if address_id in visible:
                        assert get_address(session, actor, key).id == address_id
                        if isinstance(key, str):
                            found = list_address_page(session, actor, size=5, address=key)
                            assert [a.id for a in found.addresses] == [address_id]
                    else:
                        with pytest.raises(NotFound):
                            get_address(session, actor, key)
                        if isinstance(key, str):
                            found = list_address_page(session, actor, size=5, address=key)
                            assert found.addresses == []
        assert session.get(Address, foreign) is not None  # it exists; it is only not visible

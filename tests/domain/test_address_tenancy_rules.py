"""Write-time rules that cross tenants or raise limits: the spoofing whitelist and the quota.

- A spoofing-whitelist entry that names an address or domain hosted here by another
  customer is refused (`spoofing_whitelist[i]`, rule `foreign_sender`), whoever writes it
  and in whatever spelling; `*`, the customer's own names and unhosted names are allowed.
- Until packages carry quota limits, a customer may set at most the configured default
  maximum and never "unlimited"; a customer's new mailbox gets that maximum. Admins may
  set anything in range.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import AddressSettings, Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.service import (
    AddressChanges,
    NewAddress,
    create_address,
    get_address,
    update_address,
)
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import InvalidInput
from postmeister.models import Address
from postmeister.sync.service import sync_document
from tests.conftest import fast_password_settings
from tests.support.factories import Tenant, add_domain_to, make_tenant
from tests.support.snapshot import snapshot

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
GIB = 2**30
DEFAULT_MAX = AddressSettings().max_quota_bytes
PASSWORDS = Passwords(fast_password_settings())


@pytest.fixture
def bravo(sessions: sessionmaker[Session]) -> Tenant:
    tenant = make_tenant(sessions, name="Bravo Secret Name", domain="bravo.example")
    add_domain_to(sessions, tenant, "straße.example")
    with unit_of_work(sessions) as session:
        new = NewAddress(local_part="boss", domain="bravo.example", kind="mailbox")
        create_address(
            session,
            Actor.for_customer(tenant.customer_id),
            new,
            passwords=PASSWORDS,
            password_hash=MD5,
        )
    return tenant


@pytest.fixture
def alpha(sessions: sessionmaker[Session], bravo: Tenant) -> Tenant:
    tenant = make_tenant(sessions, name="Alpha", domain="alpha.example")
    with unit_of_work(sessions) as session:
        new = NewAddress(local_part="ceo", domain="alpha.example", kind="mailbox")
        create_address(
            session,
            Actor.for_customer(tenant.customer_id),
            new,
            passwords=PASSWORDS,
            password_hash=MD5,
        )
    return tenant


FOREIGN = [
    "bravo.example",
    "boss@bravo.example",
    "BOSS@Bravo.Example",
    "anyone@bravo.example",  # not an address B has: the domain is B's all the same
    "straße.example",
    "xn--strae-oqa.example",
    "ceo@Straße.Example",
]
ALLOWED = ["*", "alpha.example", "ceo@alpha.example", "partner@unhosted.example", "strasse.example"]


def set_whitelist(sessions: sessionmaker[Session], actor: Actor, whitelist: list[str]) -> None:
    with unit_of_work(sessions) as session:
        address = get_address(session, actor, "ceo@alpha.example")
        update_address(
            session,
            actor,
            address,
            AddressChanges(spoofing_whitelist=whitelist),
            passwords=PASSWORDS,
        )


def actor_for(who: str, tenant: Tenant) -> Actor:
    return Actor.system() if who == "admin" else Actor.for_customer(tenant.customer_id)


@pytest.mark.parametrize("who", ["customer", "admin"])
@pytest.mark.parametrize("entry", FOREIGN)
def test_whitelisting_another_customers_address_or_domain_is_refused(
    sessions: sessionmaker[Session], alpha: Tenant, entry: str, who: str
) -> None:
    before = snapshot(sessions)
    actor = actor_for(who, alpha)
    whitelist = ["partner@unhosted.example", entry]
    with pytest.raises(InvalidInput) as updating:
        set_whitelist(sessions, actor, whitelist)
    with unit_of_work(sessions) as session, pytest.raises(InvalidInput) as creating:
        create_address(
            session,
            actor,
            NewAddress(
                local_part="new",
                domain="alpha.example",
                kind="mailbox",
                spoofing_whitelist=whitelist,
            ),
            passwords=PASSWORDS,
            password_hash=MD5,
        )
    for caught in (updating, creating):
        [problem] = caught.value.problems
        assert (problem.field, problem.rule) == ("spoofing_whitelist[1]", "foreign_sender")
        assert "another customer" in problem.message
        assert "Bravo" not in problem.message
    assert snapshot(sessions) == before


def test_star_own_and_unhosted_entries_are_stored_in_canonical_form(
    sessions: sessionmaker[Session], alpha: Tenant
) -> None:
    actor = Actor.for_customer(alpha.customer_id)
    set_whitelist(sessions, actor, ALLOWED)
    with sessions() as session:
        stored = [
            p.pattern for p in get_address(session, actor, "ceo@alpha.example").sender_permissions
        ]
    assert stored == ALLOWED


def quota_of(sessions: sessionmaker[Session], address: str) -> int | None:
    with sessions() as session:
        return session.scalar(select(Address.quota_bytes).where(Address.address == address))


def create_mailbox(
    sessions: sessionmaker[Session],
    actor: Actor,
    name: str,
    quota: int | None,
    max_quota_bytes: int = DEFAULT_MAX,
) -> None:
    with unit_of_work(sessions) as session:
        create_address(
            session,
            actor,
            NewAddress(local_part=name, domain="alpha.example", kind="mailbox", quota_bytes=quota),
            passwords=PASSWORDS,
            password_hash=MD5,
            max_quota_bytes=max_quota_bytes,
        )


def set_quota(
    sessions: sessionmaker[Session],
    actor: Actor,
    quota: int | None,
    max_quota_bytes: int = DEFAULT_MAX,
) -> None:
    with unit_of_work(sessions) as session:
        address = get_address(session, actor, "ceo@alpha.example")
        update_address(
            session,
            actor,
            address,
            AddressChanges(quota_bytes=quota),
            passwords=PASSWORDS,
            max_quota_bytes=max_quota_bytes,
        )


@pytest.mark.parametrize("quota", [None, DEFAULT_MAX + 1, 100 * GIB])
def test_a_customer_cannot_raise_its_quota_above_the_default_maximum_or_remove_it(
    sessions: sessionmaker[Session], alpha: Tenant, quota: int | None
) -> None:
    customer = Actor.for_customer(alpha.customer_id)
    before = snapshot(sessions)
    with pytest.raises(InvalidInput) as caught:
        set_quota(sessions, customer, quota)
    [problem] = caught.value.problems
    assert (problem.field, problem.rule) == ("quota", "quota_limit")
    assert f"at most {DEFAULT_MAX} bytes (10 GiB)" in problem.message
    if quota is not None:
        with pytest.raises(InvalidInput) as on_create:
            create_mailbox(sessions, customer, "big", quota)
        assert [p.rule for p in on_create.value.problems] == ["quota_limit"]
    assert snapshot(sessions) == before


def test_within_the_maximum_a_customer_sets_its_quota_and_an_admin_may_set_any(
    sessions: sessionmaker[Session], alpha: Tenant
) -> None:
    customer = Actor.for_customer(alpha.customer_id)
    set_quota(sessions, customer, DEFAULT_MAX)
    assert quota_of(sessions, "ceo@alpha.example") == DEFAULT_MAX
    set_quota(sessions, customer, GIB)
    assert quota_of(sessions, "ceo@alpha.example") == GIB
    set_quota(sessions, Actor.system(), 100 * GIB)
    assert quota_of(sessions, "ceo@alpha.example") == 100 * GIB
    set_quota(sessions, Actor.system(), None)
    assert quota_of(sessions, "ceo@alpha.example") is None
    # A smaller configured maximum binds the customer, and is named in the problem.
    with pytest.raises(InvalidInput) as caught:
        set_quota(sessions, customer, 2 * GIB, max_quota_bytes=GIB)
    assert "at most 1073741824 bytes (1 GiB)" in caught.value.problems[0].message


def test_a_customers_new_mailbox_gets_the_default_maximum_and_an_admins_none(
    sessions: sessionmaker[Session], settings: Settings, alpha: Tenant
) -> None:
    create_mailbox(sessions, Actor.for_customer(alpha.customer_id), "mine", None)
    create_mailbox(
        sessions, Actor.for_customer(alpha.customer_id), "small", None, max_quota_bytes=GIB
    )
    create_mailbox(sessions, Actor.system(), "operator", None)
    with unit_of_work(sessions) as session:
        document = {
            "alpha.example": {
                "account": [
                    {"name": n, "password": MD5}
                    for n in ("ceo", "mine", "small", "operator", "synced")
                ]
            }
        }
        sync_document(
            session,
            customer_id=alpha.customer_id,
            raw=json.dumps(document).encode(),
            settings=settings.sync,
        )
    assert quota_of(sessions, "mine@alpha.example") == DEFAULT_MAX
    assert quota_of(sessions, "small@alpha.example") == GIB
    assert quota_of(sessions, "operator@alpha.example") is None  # kept by the sync
    assert quota_of(sessions, "synced@alpha.example") == DEFAULT_MAX

"""One write path: the same input is refused with the same rule code by the API's address
service and by a Basic JSON sync, because both call `domain.addresses.rules`.

Each case is written once as what a customer asks for (addresses to create) and run through
both paths on a fresh database: `create_address` (what both API dialects call) and
`sync_document` (what the CLI and the polling job call). The rule codes must be equal, and
neither path may have written anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.rules import MAX_FORWARD_TARGETS, AddressExists
from postmeister.domain.addresses.service import NewAddress, create_address
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import InvalidInput, LimitReached
from postmeister.models import Address, Package
from postmeister.sync.service import sync_document
from tests.conftest import fast_password_settings
from tests.support.factories import Tenant, add_domain_to, make_tenant
from tests.support.snapshot import snapshot

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
DOMAIN = "alpha.example"
# 63 + 63 + 63 octets of labels: any 64-octet local part makes the address too long.
LONG_DOMAIN = ".".join(c * 63 for c in "abc") + ".example"


@dataclass(frozen=True)
class Entry:
    """One address as both paths can express it: a mailbox (account) or a forward (alias)."""

    name: str
    forward_to: list[str] | None = None  # None: a mailbox
    domain: str = DOMAIN

    def new_address(self) -> NewAddress:
        if self.forward_to is None:
            return NewAddress(local_part=self.name, domain=self.domain, kind="mailbox")
        return NewAddress(
            local_part=self.name, domain=self.domain, kind="forward", forward_to=self.forward_to
        )


@dataclass(frozen=True)
class Case:
    entries: list[Entry]
    rules: set[str | None]
    # Setup on top of the tenant: a package limit and addresses it already has.
    max_addresses: int | None = None
    existing: list[Entry] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)  # other package limits


def outside(count: int) -> list[str]:
    return [f"t{i}@elsewhere.example" for i in range(count)]


CASES: dict[str, Case] = {
    "101 targets": Case([Entry("list", outside(MAX_FORWARD_TARGETS + 1))], {"length"}),
    "10,000 targets": Case([Entry("list", outside(10_000))], {"length"}),
    "forward to itself": Case([Entry("me", [f"me@{DOMAIN}"])], {"loop"}),
    "forward to itself, other spelling": Case([Entry("me", [f"ME@{DOMAIN.upper()}"])], {"loop"}),
    "duplicate target": Case(
        [Entry("x", ["a@elsewhere.example", "A@Elsewhere.Example"])], {"duplicate"}
    ),
    "no target": Case([Entry("x", [])], {"required"}),
    "invalid target": Case([Entry("x", ["not-an-address"])], {None}),
    "invalid name": Case([Entry("bad name")], {None}),
    # Valid in an address, but a path on the mail store: name "a/b" would live in a's home.
    "slash in the name": Case([Entry("a/b")], {None}),
    "address too long": Case([Entry("l" * 64, domain=LONG_DOMAIN)], {"length"}),
    "account and alias of one name": Case(
        [Entry("office"), Entry("office", ["a@elsewhere.example"])], {"exists"}
    ),
    "package full": Case(
        [Entry("third")],
        {"max_addresses"},
        max_addresses=2,
        existing=[Entry("one"), Entry("two", domain="charlie.example")],
    ),
    "mailboxes full": Case(
        [Entry("third")],
        {"max_mailboxes"},
        existing=[Entry("one"), Entry("two", domain="charlie.example")],
        limits={"max_mailboxes": 2},
    ),
    # Each new mailbox gets the default quota (10 GiB): the second one would need 20.
    "storage full": Case(
        [Entry("two")],
        {"max_storage_bytes"},
        existing=[Entry("one")],
        limits={"max_storage_bytes": 15 * 2**30},
    ),
    "package full with this document's own entries": Case(
        [Entry("one"), Entry("two"), Entry("three", ["a@elsewhere.example"])],
        {"max_addresses"},
        max_addresses=2,
    ),
}


def document_for(entries: list[Entry], existing: list[Entry]) -> bytes:
    """The Basic JSON document that creates `entries` and keeps `existing`."""
    body: dict[str, dict[str, list[dict[str, str]]]] = {}
    for entry in [*existing, *entries]:
        domain = body.setdefault(entry.domain, {"account": [], "alias": []})
        if entry.forward_to is None:
            domain["account"].append({"name": entry.name, "password": MD5})
        else:
            domain["alias"].append({"name": entry.name, "to": ",".join(entry.forward_to)})
    return json.dumps(body).encode()


def prepare(sessions: sessionmaker[Session], case: Case, passwords: Passwords) -> Tenant:
    tenant = make_tenant(sessions, name="Alpha", domain=DOMAIN)
    add_domain_to(sessions, tenant, "charlie.example")
    add_domain_to(sessions, tenant, LONG_DOMAIN)
    with unit_of_work(sessions) as session:
        actor = Actor.for_customer(tenant.customer_id)
        for entry in case.existing:
            create_address(
                session, actor, entry.new_address(), passwords=passwords, password_hash=MD5
            )
        limits = dict(case.limits)
        if case.max_addresses is not None:
            limits["max_addresses"] = case.max_addresses
        if limits:
            session.execute(
                update(Package).where(Package.customer_id == tenant.customer_id).values(**limits)
            )
    return tenant


def api_rules(
    sessions: sessionmaker[Session], tenant: Tenant, case: Case, passwords: Passwords
) -> set[str | None]:
    """Create the entries one by one, as a customer would through either API dialect."""
    actor = Actor.for_customer(tenant.customer_id)
    with unit_of_work(sessions) as session:
        for entry in case.entries:
            hashed = MD5 if entry.forward_to is None else None
            try:
                create_address(
                    session, actor, entry.new_address(), passwords=passwords, password_hash=hashed
                )
            except InvalidInput as exc:
                session.rollback()
                return {p.rule for p in exc.problems}
            except AddressExists as exc:
                session.rollback()
                return {exc.rule}
            except LimitReached as exc:
                session.rollback()
                return {p.rule for p in exc.problems}
        session.rollback()
    raise AssertionError("the API accepted every entry")


def sync_rules(
    sessions: sessionmaker[Session], tenant: Tenant, case: Case, settings: Settings
) -> set[str | None]:
    with unit_of_work(sessions) as session, pytest.raises(InvalidInput) as caught:
        sync_document(
            session,
            customer_id=tenant.customer_id,
            raw=document_for(case.entries, case.existing),
            settings=settings.sync,
        )
    fields = [p.field for p in caught.value.problems]
    assert all(f.startswith(("/alpha.example", "/" + LONG_DOMAIN)) for f in fields), fields
    return {p.rule for p in caught.value.problems}


@pytest.mark.parametrize("name", list(CASES))
def test_api_and_sync_refuse_the_same_input_with_the_same_rule(
    sessions: sessionmaker[Session], settings: Settings, name: str
) -> None:
    case = CASES[name]
    passwords = Passwords(fast_password_settings())
    tenant = prepare(sessions, case, passwords)
    before = snapshot(sessions)
    through_api = api_rules(sessions, tenant, case, passwords)
    assert snapshot(sessions) == before
    through_sync = sync_rules(sessions, tenant, case, settings)
    after = snapshot(sessions)
    assert after == before
    assert through_api == through_sync == case.rules


def test_a_forward_of_10000_targets_costs_one_problem_not_ten_thousand(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    case = CASES["10,000 targets"]
    tenant = prepare(sessions, case, Passwords(fast_password_settings()))
    with unit_of_work(sessions) as session, pytest.raises(InvalidInput) as caught:
        sync_document(
            session,
            customer_id=tenant.customer_id,
            raw=document_for(case.entries, []),
            settings=settings.sync,
            dry_run=True,
        )
    assert [(p.field, p.rule) for p in caught.value.problems] == [
        ("/alpha.example/alias/0/to", "length")
    ]
    assert "more than 100 targets" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("document", "max_addresses"),
    [
        # The package counts charlie.example's two addresses too: 2 + 1 = 3 fits.
        pytest.param(
            {"alpha.example": {"account": [{"name": "new", "password": MD5}]}}, 3, id="fits"
        ),
        # Deleting charlie's two and creating three leaves exactly the limit.
        pytest.param(
            {
                "charlie.example": {"account": [{"name": "n1", "password": MD5}]},
                "alpha.example": {"account": [{"name": f"n{i}", "password": MD5} for i in (2, 3)]},
            },
            3,
            id="deletes make room",
        ),
    ],
)
def test_a_sync_within_the_package_limit_is_applied(
    sessions: sessionmaker[Session],
    settings: Settings,
    document: dict[str, Any],
    max_addresses: int,
) -> None:
    case = Case(
        [],
        set(),
        max_addresses=max_addresses,
        existing=[
            Entry("one", domain="charlie.example"),
            Entry("two", domain="charlie.example"),
        ],
    )
    tenant = prepare(sessions, case, Passwords(fast_password_settings()))
    with unit_of_work(sessions) as session:
        outcome = sync_document(
            session,
            customer_id=tenant.customer_id,
            raw=json.dumps(document).encode(),
            settings=settings.sync,
            allow_mass_deletion=True,
        )
    assert outcome.result == "applied"


def test_a_new_mailbox_gets_the_packages_quota_through_api_and_sync(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The default quota of a mailbox created without one is the package's per-mailbox
    limit when that is smaller than the customer's maximum, on both paths."""
    passwords = Passwords(fast_password_settings())
    tenant = prepare(sessions, Case([], set(), limits={"max_quota_bytes": 2**30}), passwords)
    with unit_of_work(sessions) as session:
        actor = Actor.for_customer(tenant.customer_id)
        created = create_address(
            session, actor, Entry("api").new_address(), passwords=passwords, password_hash=MD5
        )
        assert created.address.quota_bytes == 2**30
        sync_document(
            session,
            customer_id=tenant.customer_id,
            raw=json.dumps(
                {
                    DOMAIN: {
                        "account": [
                            {"name": "api", "password": MD5},
                            {"name": "synced", "password": MD5},
                        ]
                    }
                }
            ).encode(),
            settings=settings.sync,
        )
    with sessions() as session:
        rows = session.execute(
            select(Address.local_part, Address.quota_bytes).where(
                Address.address.like(f"%@{DOMAIN}")
            )
        )
        quotas = {row.local_part: row.quota_bytes for row in rows}
    assert quotas == {"api": 2**30, "synced": 2**30}

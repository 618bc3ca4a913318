"""A re-sync of an unchanged document is judged in the database, and never hides a change.

`sync.unchanged` lets the database render each domain's stored addresses as one text and
skips the domains whose text equals the document's. Each case below changes the document
(or gives it in another spelling) and compares what `sync_document` plans with the plan of
the full path (every stored address read, `make_plan` over all domains), on both databases.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import SyncSettings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.sync.apply import load_current, resolve_domains
from postmeister.sync.document import parse_document
from postmeister.sync.plan import Plan, make_plan
from postmeister.sync.service import sync_document
from postmeister.sync.unchanged import unchanged_domains
from tests.support.factories import Tenant, add_domain_to, make_tenant

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
MD5_NEW = "$1$Rf4LbBuD$nr7sUhqPrj9DD/VSaO4rH0"

BASE: dict[str, Any] = {
    "example.com": {
        "account": [{"name": "alice", "password": MD5}, {"name": "bob", "password": MD5}],
        "alias": [
            {"name": "office", "to": "alice@example.com,bob@example.com"},
            {"name": "sales", "to": "bob@example.com"},
        ],
    },
    "example.org": {
        "account": [
            {
                "name": "carol",
                "password": MD5,
                "spoofing_whitelist": "example.org",
                "subaddress_extension": True,
            },
            {
                "name": "dave",
                "password": MD5,
                "spoofing_whitelist": "",
                "subaddress_extension": False,
            },
        ],
        "alias": [{"name": "info", "to": "carol@example.org,alice@example.com"}],
    },
}


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> Tenant:
    tenant = make_tenant(sessions, name="Example", domain="example.com")
    add_domain_to(sessions, tenant, "example.org")
    add_domain_to(sessions, tenant, "example.net")  # listed empty: no addresses
    with unit_of_work(sessions) as session:
        outcome = sync_document(
            session, customer_id=tenant.customer_id, raw=raw(BASE), settings=SyncSettings()
        )
    assert outcome.result == "applied"
    return tenant


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps({**document, "example.net": {}}).encode()


def planned(sessions: sessionmaker[Session], tenant: Tenant, body: bytes) -> tuple[Plan, float]:
    with unit_of_work(sessions, write=False) as session:
        outcome = sync_document(
            session, customer_id=tenant.customer_id, raw=body, settings=SyncSettings(), dry_run=True
        )
    assert outcome.plan is not None
    return outcome.plan, outcome.deletion_share


def full_path(sessions: sessionmaker[Session], tenant: Tenant, body: bytes) -> tuple[Plan, float]:
    """The plan from every stored address, as sync made it before the shortcut."""
    actor = Actor.for_customer(tenant.customer_id)
    with unit_of_work(sessions, write=False) as session:
        document = parse_document(body)
        domains = resolve_domains(session, actor, document, source_id=None)
        current = load_current(session, actor, [d.id for d in domains.values()])
        plan = make_plan(document, current)
        return plan, plan.deletion_share(len(current))


def skipped(sessions: sessionmaker[Session], tenant: Tenant, body: bytes) -> set[str]:
    actor = Actor.for_customer(tenant.customer_id)
    with unit_of_work(sessions, write=False) as session:
        document = parse_document(body)
        domains = resolve_domains(session, actor, document, source_id=None)
        ids = {name: domain.id for name, domain in domains.items()}
        return set(unchanged_domains(session, actor, document, ids))


def test_the_same_document_again_reads_no_domain_row_by_row(
    sessions: sessionmaker[Session], tenant: Tenant
) -> None:
    assert skipped(sessions, tenant, raw(BASE)) == {"example.com", "example.org", "example.net"}
    with unit_of_work(sessions) as session:
        outcome = sync_document(
            session, customer_id=tenant.customer_id, raw=raw(BASE), settings=SyncSettings()
        )
    assert outcome.result == "unchanged"
    assert outcome.plan is not None and outcome.plan.unchanged == 7


def _edit(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()
COM, ORG = "example.com", "example.org"
CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    # case: (document, the domains the shortcut must leave out of the plan)
    "new hash": (_edit((COM, "account", 1, "password"), MD5_NEW), {ORG}),
    "prefixed hash, same": (
        _edit((COM, "account", 1, "password"), "{MD5-CRYPT}" + MD5),
        {COM, ORG},
    ),
    "other spelling": (_edit((COM, "account", 0, "name"), "ALICE"), {COM, ORG}),
    "new recipient": (_edit((COM, "alias", 1, "to"), "alice@example.com"), {ORG}),
    "recipients reordered": (
        _edit((COM, "alias", 0, "to"), "bob@example.com,alice@example.com"),
        {ORG},
    ),
    "account becomes alias": (
        _edit(
            (COM,),
            {
                "account": [{"name": "alice", "password": MD5}],
                "alias": [*BASE[COM]["alias"], {"name": "bob", "to": "alice@example.com"}],
            },
        ),
        {ORG},
    ),
    "address removed": (_edit((COM, "alias"), BASE[COM]["alias"][:1]), {ORG}),
    "address added": (
        _edit((COM, "alias"), [*BASE[COM]["alias"], {"name": "new", "to": "bob@example.com"}]),
        {ORG},
    ),
    "domain emptied": (_edit((COM,), {}), {ORG}),
    "whitelist changed": (_edit((ORG, "account", 1, "spoofing_whitelist"), "*"), {COM}),
    "whitelist respelled": (
        _edit((ORG, "account", 0, "spoofing_whitelist"), "Example.ORG"),
        {COM, ORG},
    ),
    "subaddress switched": (_edit((ORG, "account", 1, "subaddress_extension"), True), {COM}),
    "optional keys left out": (
        _edit(
            (ORG, "account"),
            [{"name": "carol", "password": MD5}, {"name": "dave", "password": MD5}],
        ),
        {COM, ORG},
    ),
    "optional keys on one account": (
        _edit((ORG, "account", 1), {"name": "dave", "password": MD5}),
        {COM},
    ),
    "only one optional key": (
        _edit(
            (ORG, "account"),
            [
                {"name": "carol", "password": MD5, "subaddress_extension": True},
                {"name": "dave", "password": MD5, "subaddress_extension": False},
            ],
        ),
        {COM},
    ),
    "domain left out": (_edit((ORG,), _DELETE), {COM}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_difference_is_planned_as_the_full_path_plans_it(
    sessions: sessionmaker[Session], tenant: Tenant, case: str
) -> None:
    document, left_out = CASES[case]
    body = raw(document)
    assert planned(sessions, tenant, body) == full_path(sessions, tenant, body)
    assert skipped(sessions, tenant, body) == left_out | {"example.net"}


def test_another_customers_domain_is_never_judged_unchanged(
    sessions: sessionmaker[Session], tenant: Tenant
) -> None:
    """Given the id of a domain it cannot see, holding exactly what the document says, the
    shortcut finds nothing for this customer (for its owner it does)."""
    other = make_tenant(sessions, name="Other", domain="other.example")
    body = json.dumps({"other.example": BASE[COM]}).replace("example.com", "other.example")
    with unit_of_work(sessions) as session:
        sync_document(
            session, customer_id=other.customer_id, raw=body.encode(), settings=SyncSettings()
        )
    document = parse_document(body.encode())
    with unit_of_work(sessions, write=False) as session:
        owner = Actor.for_customer(other.customer_id)
        domains = resolve_domains(session, owner, document, source_id=None)
        ids = {"other.example": domains["other.example"].id}
        assert unchanged_domains(session, owner, document, ids) == {"other.example": 4}
        stranger = Actor.for_customer(tenant.customer_id)
        assert unchanged_domains(session, stranger, document, ids) == {}

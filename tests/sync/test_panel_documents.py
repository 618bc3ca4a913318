"""Basic JSON documents as the hosting panel writes them (issue 11, item 4): accounts carry
`spoofing_whitelist` and `subaddress_extension`, sync applies both with the API's rules, a
left-out key keeps what is stored, export writes both so that export → sync plans nothing,
and a whitelist naming another customer's address or domain is rejected, as through the API,
with the other customer's domain existing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.errors import InvalidInput
from postmeister.models import Address
from postmeister.sync.document import render_document
from postmeister.sync.export import export_customer
from postmeister.sync.service import SyncOutcome, sync_document
from tests.support.factories import Tenant, add_domain_to, make_tenant
from tests.support.snapshot import snapshot

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    tenant = make_tenant(sessions, name="Example", domain="example.com")
    add_domain_to(sessions, tenant, "example.org")
    return tenant


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Other", domain="other.example")


def account(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "password": MD5, **extra}


def doc(*accounts: dict[str, Any]) -> bytes:
    return json.dumps({"example.com": {"account": list(accounts)}}).encode()


def sync(
    sessions: sessionmaker[Session], settings: Settings, tenant: Tenant, raw: bytes
) -> SyncOutcome:
    with unit_of_work(sessions) as session:
        return sync_document(
            session, customer_id=tenant.customer_id, raw=raw, settings=settings.sync
        )


def fields(sessions: sessionmaker[Session]) -> dict[str, tuple[list[str], bool]]:
    """Each stored mailbox's whitelist and subaddress switch."""
    with sessions() as session:
        rows = session.scalars(select(Address).where(Address.kind == "mailbox")).all()
        return {
            row.address: ([p.pattern for p in row.sender_permissions], row.subaddress_extension)
            for row in rows
        }


def test_both_keys_are_applied_updated_and_kept_when_left_out(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant
) -> None:
    first = doc(
        account(
            "alice", spoofing_whitelist="Example.COM, info@example.org", subaddress_extension=True
        ),
        account("bob", subaddress_extension=False),
        account("carol"),
    )
    outcome = sync(sessions, settings, alice, first)
    assert outcome.result == "applied", outcome.errors
    assert fields(sessions) == {
        "alice@example.com": (["example.com", "info@example.org"], True),
        "bob@example.com": ([], False),
        "carol@example.com": ([], False),
    }
    # The same document is no change; the whitelist in another order neither.
    assert sync(sessions, settings, alice, first).result == "unchanged"
    reordered = doc(
        account(
            "alice", spoofing_whitelist="info@example.org,example.com", subaddress_extension=True
        ),
        account("bob", subaddress_extension=False),
        account("carol"),
    )
    assert sync(sessions, settings, alice, reordered).result == "unchanged"
    # Changes are updates; a key left out keeps the stored value (alice's whitelist).
    second = doc(
        account("alice", subaddress_extension=False),
        account("bob", spoofing_whitelist="*", subaddress_extension=True),
        account("carol", spoofing_whitelist=""),
    )
    outcome = sync(sessions, settings, alice, second)
    assert outcome.result == "applied", outcome.errors
    assert outcome.plan is not None and (outcome.plan.updated, outcome.plan.unchanged) == (2, 1)
    assert fields(sessions) == {
        "alice@example.com": (["example.com", "info@example.org"], False),
        "bob@example.com": (["*"], True),
        "carol@example.com": ([], False),
    }
    # An empty string clears a whitelist.
    third = doc(account("alice", spoofing_whitelist=""), account("bob"), account("carol"))
    assert sync(sessions, settings, alice, third).result == "applied"
    assert fields(sessions)["alice@example.com"] == ([], False)


def test_export_writes_both_keys_and_syncing_the_export_changes_nothing(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant
) -> None:
    raw = doc(
        account("alice", spoofing_whitelist="example.com", subaddress_extension=True),
        account("bob"),
    )
    assert sync(sessions, settings, alice, raw).result == "applied"
    with sessions() as session:
        exported = render_document(export_customer(session, alice.customer_id))
    assert json.loads(exported)["example.com"]["account"] == [
        account("alice", spoofing_whitelist="example.com", subaddress_extension=True),
        account("bob", spoofing_whitelist="", subaddress_extension=False),
    ]
    before = snapshot(sessions)
    assert sync(sessions, settings, alice, exported).result == "unchanged"
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    "entry",
    [
        "other.example",  # the other customer's domain
        "someone@other.example",  # an address in it
        "OTHER.example",  # another spelling
        "example.com,other.example",  # beside one of the customer's own
    ],
)
def test_a_whitelist_naming_another_customers_domain_is_rejected_at_its_pointer(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant, bob: Tenant, entry: str
) -> None:
    before = snapshot(sessions)
    raw = doc(account("alice"), account("mallory", spoofing_whitelist=entry))
    with pytest.raises(InvalidInput) as caught:
        sync(sessions, settings, alice, raw)
    (problem,) = caught.value.problems
    assert problem.field.startswith("/example.com/account/1/spoofing_whitelist")
    assert problem.rule == "foreign_sender"
    assert snapshot(sessions) == before
    # Also on an update of an existing mailbox.
    assert sync(sessions, settings, alice, doc(account("alice"), account("mallory"))).ok
    settled = snapshot(sessions)
    with pytest.raises(InvalidInput):
        sync(sessions, settings, alice, raw)
    assert snapshot(sessions) == settled


def test_a_whitelist_left_alone_is_not_judged_again(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant
) -> None:
    """A domain hosted nowhere may be whitelisted; when another customer adds it later, the
    data plane stops honouring the entry (test_sender_tenancy), and this customer's next
    sync of the same document still applies: one customer cannot break another's sync."""
    raw = doc(account("alice", spoofing_whitelist="later.example"))
    assert sync(sessions, settings, alice, raw).result == "applied"
    make_tenant(sessions, name="Latecomer", domain="later.example")
    assert sync(sessions, settings, alice, raw).result == "unchanged"
    renamed = doc(account("alice", spoofing_whitelist="later.example"), account("bob"))
    assert sync(sessions, settings, alice, renamed).result == "applied"


@pytest.mark.parametrize(
    ("extra", "pointer", "rule"),
    [
        ({"subaddress_extension": "true"}, "/example.com/account/0/subaddress_extension", "type"),
        ({"subaddress_extension": 1}, "/example.com/account/0/subaddress_extension", "type"),
        (
            {"spoofing_whitelist": ["example.com"]},
            "/example.com/account/0/spoofing_whitelist",
            "type",
        ),
        (
            {"spoofing_whitelist": "not a domain!"},
            "/example.com/account/0/spoofing_whitelist[0]",
            None,
        ),
        (
            {"spoofing_whitelist": "a.example,A.example"},
            "/example.com/account/0/spoofing_whitelist[1]",
            None,
        ),
        ({"quota": 5}, "/example.com/account/0/quota", "unknown-key"),
    ],
)
def test_bad_values_and_other_keys_are_errors_with_their_pointer(
    sessions: sessionmaker[Session],
    settings: Settings,
    alice: Tenant,
    extra: dict[str, Any],
    pointer: str,
    rule: str | None,
) -> None:
    before = snapshot(sessions)
    with pytest.raises(InvalidInput) as caught:
        sync(sessions, settings, alice, doc(account("alice", **extra)))
    (problem,) = caught.value.problems
    assert problem.field == pointer
    if rule is not None:
        assert problem.rule == rule
    assert snapshot(sessions) == before


def test_an_alias_carries_neither_key(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant
) -> None:
    raw = json.dumps(
        {
            "example.com": {
                "alias": [
                    {"name": "office", "to": "x@elsewhere.example", "subaddress_extension": True}
                ]
            }
        }
    ).encode()
    with pytest.raises(InvalidInput) as caught:
        sync(sessions, settings, alice, raw)
    assert [p.field for p in caught.value.problems] == ["/example.com/alias/0/subaddress_extension"]

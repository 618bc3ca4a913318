"""Sync as a hostile customer uses it: documents naming another customer's existing domain.

Customer B ("Bravo") hosts a mailbox and an alias on `bravo.example` and on an IDN domain.
Customer A ("Alpha") owns `alpha.example` (sorts before B's) and `charlie.example` (sorts
after). Every document A can write about B's domains is refused in the words used for a
domain that does not exist, and B's rows (and everything else) are byte for byte the same
afterwards: through `sync_document` (the CLI's path, also as a dry run) and through A's own
sync source, including a held mass deletion that A then confirms.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings, SyncSettings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.service import NewAddress, create_address
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.sync_sources.service import confirm_held_document, create_source, get_source
from postmeister.errors import Conflict, InvalidInput
from postmeister.models import Address, Domain
from postmeister.sync.service import run_source, sync_document
from tests.conftest import fast_password_settings
from tests.support.docserver import DocumentServer, Reply
from tests.support.factories import Tenant, add_domain_to, make_tenant
from tests.support.snapshot import snapshot
from tests.support.tls import TestPki

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
ATTACKER_HASH = "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"
IDN = "straße.example"  # B's; stored as its A-label
IDN_ALABEL = "xn--strae-oqa.example"


def raw(**domains: Any) -> bytes:
    return json.dumps(domains).encode()


def takeover() -> dict[str, Any]:
    """What A would like B's domain to say: B's mailbox with A's hash, B's alias to A."""
    return {
        "account": [{"name": "boss", "password": ATTACKER_HASH}],
        "alias": [{"name": "team", "to": "loot@attacker.example"}],
    }


def sync_state(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The whole database except the runs sync records even for a rejected document (and
    their audit events)."""
    state = snapshot(sessions)
    state.pop("sync_runs")
    state.pop("audit_events")
    return state


@pytest.fixture
def bravo(sessions: sessionmaker[Session]) -> Tenant:
    tenant = make_tenant(sessions, name="Bravo", domain="bravo.example")
    add_domain_to(sessions, tenant, IDN)
    passwords = Passwords(fast_password_settings())
    with unit_of_work(sessions) as session:
        actor = Actor.for_customer(tenant.customer_id)
        for domain in ("bravo.example", IDN):
            boss = NewAddress(local_part="boss", domain=domain, kind="mailbox")
            create_address(session, actor, boss, passwords=passwords, password_hash=MD5)
            team = NewAddress(
                local_part="team", domain=domain, kind="forward", forward_to=[f"boss@{domain}"]
            )
            create_address(session, actor, team, passwords=passwords)
    return tenant


@pytest.fixture
def alpha(sessions: sessionmaker[Session], bravo: Tenant) -> Tenant:
    tenant = make_tenant(sessions, name="Alpha", domain="alpha.example")
    add_domain_to(sessions, tenant, "charlie.example")
    return tenant


def own() -> dict[str, Any]:
    return {"account": [{"name": "me", "password": MD5}]}


# Every way A can name one of B's domains, alone and beside its own domains on either side.
SPELLINGS = ["bravo.example", "BRAVO.Example", "bravo.example.", IDN, IDN_ALABEL, "STRASSE.example"]
NEIGHBOURS = {
    "alone": [],
    "before A's own": ["charlie.example"],
    "after A's own": ["alpha.example"],
    "between A's own": ["alpha.example", "charlie.example"],
}


def attack_documents() -> list[Any]:
    cases = []
    for spelling in SPELLINGS:
        for neighbours, names in NEIGHBOURS.items():
            cases.append(pytest.param(spelling, names, id=f"{spelling}-{neighbours}"))
    return cases


@pytest.mark.parametrize(("spelling", "neighbours"), attack_documents())
@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
def test_a_document_naming_another_customers_domain_is_rejected_and_changes_nothing(
    sessions: sessionmaker[Session],
    settings: Settings,
    alpha: Tenant,
    spelling: str,
    neighbours: list[str],
    dry_run: bool,
) -> None:
    document = {name: own() for name in neighbours}
    document[spelling] = takeover()
    before = sync_state(sessions)
    with unit_of_work(sessions) as session, pytest.raises(InvalidInput) as caught:
        sync_document(
            session,
            customer_id=alpha.customer_id,
            raw=raw(**document),
            settings=settings.sync,
            dry_run=dry_run,
            allow_mass_deletion=True,
        )
    if spelling.lower().startswith("strasse"):
        # UTS-46 keeps ß (IDNA 2008): strasse.example is simply another, unhosted domain.
        expected = "the domain strasse.example does not belong to this customer"
    else:
        alabel = IDN_ALABEL if "stra" in spelling.lower() else "bravo.example"
        expected = f"the domain {alabel} does not belong to this customer"
    assert [(p.field, p.message, p.rule) for p in caught.value.problems] == [
        (f"/{spelling}", expected, "domain")
    ]
    assert sync_state(sessions) == before


def test_another_customers_domain_reads_exactly_like_a_missing_one(
    sessions: sessionmaker[Session], settings: Settings, alpha: Tenant
) -> None:
    def problems(name: str) -> list[tuple[str, str | None]]:
        with unit_of_work(sessions) as session, pytest.raises(InvalidInput) as caught:
            sync_document(
                session,
                customer_id=alpha.customer_id,
                raw=raw(**{name: {}, "alpha.example": {}}),
                settings=settings.sync,
            )
        return [(p.message.replace(name, "NAME"), p.rule) for p in caught.value.problems]

    assert problems("bravo.example") == problems("nowhere.example")


@pytest.fixture
def sync_settings(settings: Settings, pki: TestPki) -> SyncSettings:
    return settings.sync.model_copy(
        update={"ca_bundle": pki.ca_cert, "timeout_seconds": 5, "allow_private_networks": True}
    )


class Published:
    """A's web server: the document A's source fetches, under a new ETag when it changes."""

    def __init__(self, server: DocumentServer) -> None:
        self.body = b"{}"
        self.version = 0
        server.routes["/mail.json"] = self.reply

    def publish(self, body: bytes) -> None:
        self.body, self.version = body, self.version + 1

    def reply(self, headers: Any) -> Reply:
        return Reply(body=self.body, headers={"ETag": f'"v{self.version}"'})


def test_a_source_naming_bs_domain_is_never_held_so_confirming_cannot_apply_it(
    sessions: sessionmaker[Session],
    server: DocumentServer,
    sync_settings: SyncSettings,
    alpha: Tenant,
) -> None:
    published = Published(server)
    actor = Actor.for_customer(alpha.customer_id)
    with unit_of_work(sessions) as session:
        source_id = create_source(
            session,
            actor,
            url=server.url("/mail.json"),
            interval_seconds=60,
            settings=sync_settings,
        ).id

    # A's own domain first, so the source manages something and a deletion can be held.
    accounts = [{"name": f"user{i}", "password": MD5} for i in range(8)]
    published.publish(raw(**{"alpha.example": {"account": accounts}}))
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    before = sync_state(sessions)

    # Emptying B's domain (alone, or beside A's own emptied one) would be a mass deletion:
    # it is refused outright, never held, so there is nothing for A to confirm.
    attacks: list[dict[str, Any]] = [
        {"bravo.example": {}},
        {"alpha.example": {}, "bravo.example": {}},
        {"bravo.example": {}, "charlie.example": {}},
    ]
    for document in attacks:
        published.publish(raw(**document))
        outcome = run_source(sessions, source_id, settings=sync_settings)
        assert outcome.result == "rejected", outcome
        assert outcome.errors == [
            "/bravo.example: the domain bravo.example does not belong to this customer"
        ]
        with unit_of_work(sessions) as session:
            source = get_source(session, actor, source_id)
            assert source.pending_document_sha256 is None
            with pytest.raises(Conflict):
                confirm_held_document(session, actor, source)
        state = sync_state(sessions)
        state.pop("sync_sources")
        expected = dict(before)
        expected.pop("sync_sources")
        assert state == expected

    # A held deletion of A's own domain, confirmed by A, then swapped for a document naming
    # B's domain before the next poll: the confirmation names the held digest only.
    published.publish(raw(**{"alpha.example": {}}))
    assert run_source(sessions, source_id, settings=sync_settings).result == "held"
    with unit_of_work(sessions) as session:
        confirm_held_document(session, actor, get_source(session, actor, source_id))
    published.publish(raw(**{"alpha.example": {}, "bravo.example": {}}))
    assert run_source(sessions, source_id, settings=sync_settings).result == "rejected"
    published.publish(raw(**{"alpha.example": {}}))
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"

    with sessions() as session:
        bravo_rows = session.execute(
            select(Address.address, Address.password_hash)
            .join(Domain, Address.domain_id == Domain.id)
            .where(Domain.name.in_(["bravo.example", IDN_ALABEL]))
            .order_by(Address.address)
        ).all()
        managed = session.scalars(
            select(Domain.name).where(Domain.sync_source_id == source_id)
        ).all()
    assert [tuple(row) for row in bravo_rows] == [
        ("boss@bravo.example", MD5),
        ("boss@xn--strae-oqa.example", MD5),
        ("team@bravo.example", None),
        ("team@xn--strae-oqa.example", None),
    ]
    assert managed == ["alpha.example"]

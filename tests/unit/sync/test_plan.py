"""Planning a sync: only real differences become changes, in a stable order, quickly."""

from __future__ import annotations

import random

import pytest

from postmeister.sync.document import AccountEntry, AliasEntry, DomainEntry, SyncDocument
from postmeister.sync.plan import Change, CurrentAddress, Plan, make_plan

OLD = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
NEW = "$1$0MhHZVnG$d6rHD1KFLNOJ9EFdMKrB91"


def document(**domains: tuple[list[AccountEntry], list[AliasEntry]]) -> SyncDocument:
    """`document(example_com=([accounts], [aliases]))`; underscores in names become dots."""
    entries = {}
    for key, (accounts, aliases) in domains.items():
        name = key.replace("_", ".")
        entries[name] = DomainEntry(name, tuple(accounts), tuple(aliases))
    return SyncDocument(entries)


def mailbox(address: str, password_hash: str | None = OLD, *targets: str) -> CurrentAddress:
    return CurrentAddress(address, "mailbox", password_hash, targets)


def forward(address: str, *targets: str) -> CurrentAddress:
    return CurrentAddress(address, "forward", None, targets)


def state(*addresses: CurrentAddress) -> dict[str, CurrentAddress]:
    return {a.address: a for a in addresses}


def summary(plan: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.address, c.kind) for c in plan.changes]


SPEC = document(
    example_com=(
        [AccountEntry("alice", OLD), AccountEntry("bob", OLD)],
        [AliasEntry("office", ("alice@example.com", "bob@example.com"))],
    )
)
SPEC_STATE = state(
    mailbox("alice@example.com"),
    mailbox("bob@example.com"),
    forward("office@example.com", "alice@example.com", "bob@example.com"),
)


def test_first_import_creates_everything() -> None:
    plan = make_plan(SPEC, {})
    assert summary(plan) == [
        ("create", "alice@example.com", "mailbox"),
        ("create", "bob@example.com", "mailbox"),
        ("create", "office@example.com", "forward"),
    ]
    office = plan.changes[2]
    assert office.targets == ("alice@example.com", "bob@example.com")
    assert office.password_hash is None
    assert (plan.created, plan.updated, plan.deleted, plan.unchanged) == (3, 0, 0, 0)


def test_same_document_again_changes_nothing() -> None:
    plan = make_plan(SPEC, SPEC_STATE)
    assert plan.is_empty
    assert (plan.created, plan.updated, plan.deleted, plan.unchanged) == (0, 0, 0, 3)


def test_recipients_in_another_order_are_no_change() -> None:
    current = state(
        mailbox("alice@example.com"),
        mailbox("bob@example.com"),
        forward("office@example.com", "bob@example.com", "alice@example.com"),
    )
    assert make_plan(SPEC, current).is_empty


def test_a_mailbox_keeps_its_own_forwarding_which_the_document_cannot_express() -> None:
    current = dict(SPEC_STATE)
    current["alice@example.com"] = mailbox("alice@example.com", OLD, "alice@elsewhere.org")
    assert make_plan(SPEC, current).is_empty


def test_new_password_and_new_recipients_are_updates() -> None:
    wanted = document(
        example_com=(
            [AccountEntry("alice", NEW), AccountEntry("bob", OLD)],
            [AliasEntry("office", ("alice@example.com", "boss@example.org"))],
        )
    )
    plan = make_plan(wanted, SPEC_STATE)
    assert plan.changes == (
        Change("update", "alice@example.com", "mailbox", NEW, ()),
        Change(
            "update",
            "office@example.com",
            "forward",
            None,
            ("alice@example.com", "boss@example.org"),
        ),
    )
    assert (plan.created, plan.updated, plan.deleted, plan.unchanged) == (0, 2, 0, 1)


def test_a_mailbox_without_password_gets_the_documents_hash() -> None:
    current = dict(SPEC_STATE)
    current["bob@example.com"] = mailbox("bob@example.com", None)
    plan = make_plan(SPEC, current)
    assert plan.changes == (Change("update", "bob@example.com", "mailbox", OLD, ()),)


def test_addresses_missing_from_the_document_are_deleted() -> None:
    wanted = document(example_com=([AccountEntry("alice", OLD)], []))
    plan = make_plan(wanted, SPEC_STATE)
    assert summary(plan) == [
        ("delete", "bob@example.com", "mailbox"),
        ("delete", "office@example.com", "forward"),
    ]
    assert plan.changes[0] == Change("delete", "bob@example.com", "mailbox", None, ())
    assert plan.deletion_share(total_managed=3) == pytest.approx(2 / 3)


def test_an_empty_domain_entry_deletes_all_its_addresses() -> None:
    plan = make_plan(document(example_com=([], [])), SPEC_STATE)
    assert plan.deleted == 3
    assert plan.deletion_share(total_managed=3) == 1.0


def test_deletion_share_with_nothing_managed_is_zero() -> None:
    assert make_plan(SPEC, {}).deletion_share(total_managed=0) == 0.0


def test_changing_kind_deletes_the_old_address_before_creating_the_new_one() -> None:
    wanted = document(
        example_com=(
            [AccountEntry("alice", OLD), AccountEntry("office", NEW)],
            [AliasEntry("bob", ("alice@example.com",))],
        )
    )
    plan = make_plan(wanted, SPEC_STATE)
    assert summary(plan) == [
        ("delete", "bob@example.com", "mailbox"),
        ("delete", "office@example.com", "forward"),
        ("create", "bob@example.com", "forward"),
        ("create", "office@example.com", "mailbox"),
    ]
    assert (plan.created, plan.updated, plan.deleted, plan.unchanged) == (2, 0, 2, 1)
    # Turning a mailbox into an alias loses the mailbox: the mass-deletion guard counts it.
    assert plan.deletion_share(total_managed=3) == pytest.approx(2 / 3)


def test_order_is_deletes_updates_creates_each_by_domain_then_name() -> None:
    wanted = document(
        b_example=([AccountEntry("zed", NEW), AccountEntry("amy", OLD)], []),
        a_example=([AccountEntry("new", OLD), AccountEntry("keep", NEW)], []),
    )
    current = state(
        mailbox("keep@a.example"),
        mailbox("gone@b.example"),
        mailbox("gone@a.example"),
        mailbox("zed@b.example"),
    )
    assert summary(make_plan(wanted, current)) == [
        ("delete", "gone@a.example", "mailbox"),
        ("delete", "gone@b.example", "mailbox"),
        ("update", "keep@a.example", "mailbox"),
        ("update", "zed@b.example", "mailbox"),
        ("create", "new@a.example", "mailbox"),
        ("create", "amy@b.example", "mailbox"),
    ]


def test_plan_does_not_depend_on_the_order_of_the_input() -> None:
    doc, current = generated(domains=20, accounts=30, aliases=15)
    for entry in list(current)[::3]:
        del current[entry]
    reference = make_plan(doc, current)
    rng = random.Random(3)
    shuffled_current = dict(rng.sample(list(current.items()), len(current)))
    shuffled_doc = SyncDocument(
        {
            name: DomainEntry(
                name,
                tuple(rng.sample(e.accounts, len(e.accounts))),
                tuple(rng.sample(e.aliases, len(e.aliases))),
            )
            for name, e in rng.sample(list(doc.domains.items()), len(doc.domains))
        }
    )
    assert make_plan(shuffled_doc, shuffled_current) == reference


def test_an_address_outside_the_documents_domains_is_a_caller_error() -> None:
    current = dict(SPEC_STATE)
    current["x@unrelated.example"] = mailbox("x@unrelated.example")
    with pytest.raises(ValueError, match=r"x@unrelated\.example"):
        make_plan(SPEC, current)


def generated(
    *, domains: int, accounts: int, aliases: int
) -> tuple[SyncDocument, dict[str, CurrentAddress]]:
    """A document and the state that matches it exactly."""
    entries: dict[str, DomainEntry] = {}
    current: dict[str, CurrentAddress] = {}
    for d in range(domains):
        name = f"customer{d}.example"
        account_entries = tuple(
            AccountEntry(f"user{i}", f"$1$salt{i % 100}$hash") for i in range(accounts)
        )
        alias_entries = tuple(
            AliasEntry(f"list{i}", (f"user{i}@{name}", f"user{i + 1}@{name}"))
            for i in range(aliases)
        )
        entries[name] = DomainEntry(name, account_entries, alias_entries)
        for a in account_entries:
            address = f"{a.local_part}@{name}"
            current[address] = mailbox(address, a.password_hash)
        for f in alias_entries:
            address = f"{f.local_part}@{name}"
            current[address] = forward(address, *f.targets)
    return SyncDocument(entries), current


def test_150k_addresses_plan_to_creates_then_to_nothing() -> None:
    """100,000 accounts and 50,000 aliases on 1,000 domains, as in the benchmark (how long
    planning takes is measured there, `bench.sync_import`, never asserted in a test)."""
    doc, current = generated(domains=1000, accounts=100, aliases=50)
    assert len(current) == 150_000

    plan = make_plan(doc, {})
    assert plan.created == 150_000 and plan.updated == plan.deleted == 0

    plan = make_plan(doc, current)
    assert plan.is_empty and plan.unchanged == 150_000

"""The pure address rules (`domain.addresses.rules`) that the API service, the sync document
parser and the sync bulk writer share."""

from __future__ import annotations

import pytest

from postmeister.domain.addresses import rules
from postmeister.errors import FieldProblem, InvalidInput


def codes(problems: list[FieldProblem]) -> list[tuple[str, str | None]]:
    return [(p.field, p.rule) for p in problems]


def test_targets_are_canonical_and_in_order() -> None:
    targets, problems = rules.check_targets(
        ["B@Example.ORG", "a@bücher.example"], own="me@example.org", kind="forward"
    )
    assert (targets, problems) == (["b@example.org", "a@xn--bcher-kva.example"], [])


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        ([f"t{i}@x.org" for i in range(101)], "forward", [("forward_to", "length")]),
        (["not-an-address"] * 10_000, "forward", [("forward_to", "length")]),
        (["me@example.org"], "mailbox", [("forward_to", "loop")]),
        (["a@x.org", "A@X.org"], "forward", [("forward_to[1]", "duplicate")]),
        ([], "forward", [("forward_to", "required")]),
        ([], "mailbox", []),
        (["a@x.org", "bad"], "mailbox", [("forward_to[1]", None)]),
    ],
)
def test_each_target_rule_has_its_code(
    values: list[str], kind: str, expected: list[tuple[str, str | None]]
) -> None:
    _, problems = rules.check_targets(values, own="me@example.org", kind=kind)
    assert codes(problems) == expected


def test_exactly_the_cap_is_allowed() -> None:
    values = [f"t{i}@x.org" for i in range(rules.MAX_FORWARD_TARGETS)]
    assert rules.check_targets(values, own=None, kind="forward")[1] == []


def test_without_per_item_fields_every_problem_is_at_the_field() -> None:
    def parse(value: str, field: str) -> str:
        if "@" not in value:
            raise InvalidInput.single(field, "not an address")
        return value.lower()

    _, problems = rules.check_targets(
        ["x", "a@x.org", "A@x.org"], own=None, kind="forward", field="/d/alias/0/to",
        per_item=False, parse=parse,
    )  # fmt: skip
    assert codes(problems) == [("/d/alias/0/to", None), ("/d/alias/0/to", "duplicate")]


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (None, None, []),
        (2**50, None, []),
        (2**50 + 1, None, ["range"]),
        (-1, 10, ["range"]),
        (10, 10, []),
        (11, 10, ["quota_limit"]),
        (None, 10, ["quota_limit"]),
    ],
)
def test_quota(value: int | None, limit: int | None, expected: list[str]) -> None:
    assert [p.rule for p in rules.quota_problems(value, limit=limit)] == expected


U = rules.PackageUsage


@pytest.mark.parametrize(
    ("limits", "before", "after", "broken"),
    [
        (rules.PackageLimits(), U(0, 0, 0, 0), U(10**6, 10**6, 0, 10**6), []),
        (rules.PackageLimits(max_addresses=3), U(2), U(3), []),
        (rules.PackageLimits(max_addresses=3), U(3), U(4), ["max_addresses"]),
        # Over a lowered limit, a package may shrink or stay, not grow.
        (rules.PackageLimits(max_addresses=3), U(6), U(5), []),
        (rules.PackageLimits(max_addresses=3), U(5), U(5), []),
        (rules.PackageLimits(max_mailboxes=1), U(1, 1, 5, 0), U(2, 2, 10, 0), ["max_mailboxes"]),
        (rules.PackageLimits(max_mailboxes=1), U(1, 1), U(2, 1), []),  # a forward
        (rules.PackageLimits(max_storage_bytes=10), U(1, 1, 5, 0), U(2, 2, 10, 0), []),
        (
            rules.PackageLimits(max_storage_bytes=10),
            U(1, 1, 5, 0),
            U(2, 2, 11, 0),
            ["max_storage_bytes"],
        ),
        # A mailbox without a quota could fill any storage.
        (
            rules.PackageLimits(max_storage_bytes=10),
            U(1, 1, 5),
            U(2, 2, 5, 1),
            ["max_storage_bytes"],
        ),
        (
            rules.PackageLimits(max_addresses=1, max_mailboxes=1),
            U(1, 1),
            U(2, 2),
            ["max_addresses", "max_mailboxes"],
        ),
    ],
)
def test_package_limits_refuse_growth_past_a_limit(
    limits: rules.PackageLimits,
    before: rules.PackageUsage,
    after: rules.PackageUsage,
    broken: list[str],
) -> None:
    problems = rules.package_problems(limits, before, after, field="address")
    assert [p.rule for p in problems] == broken
    assert all(p.field == "address" for p in problems)


def test_the_quota_of_one_mailbox_and_its_default_follow_the_package() -> None:
    limits = rules.PackageLimits(max_quota_bytes=100)
    assert rules.package_quota_problems(100, limits) == []
    assert [p.rule for p in rules.package_quota_problems(101, limits)] == ["max_quota_bytes"]
    assert [p.rule for p in rules.package_quota_problems(None, limits)] == ["max_quota_bytes"]
    assert rules.default_quota(None, limits) == 100  # an admin
    assert rules.default_quota(50, limits) == 50  # a customer with a smaller setting
    assert rules.default_quota(None, rules.PackageLimits()) is None
    limits = rules.PackageLimits(max_app_passwords=2)
    assert rules.app_password_problems(2, limits) == []
    assert [p.rule for p in rules.app_password_problems(3, limits)] == ["max_app_passwords"]


def test_foreign_senders_are_named_by_position_and_star_never() -> None:
    patterns = ["*", "b.example", "boss@b.example", "own.example", "x@elsewhere.example"]
    problems = rules.foreign_sender_problems(patterns, {"b.example"})
    assert codes(problems) == [
        ("spoofing_whitelist[1]", "foreign_sender"),
        ("spoofing_whitelist[2]", "foreign_sender"),
    ]

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


@pytest.mark.parametrize(
    ("limit", "after", "added", "exceeded"),
    [
        (None, 10**6, 1, False),
        (3, 3, 1, False),
        (3, 4, 1, True),
        (3, 5, 0, False),  # over a lowered limit, but adding nothing
        (3, 4, 2, True),
    ],
)
def test_package_limit(limit: int | None, after: int, added: int, exceeded: bool) -> None:
    assert rules.package_exceeded(limit, after=after, added=added) is exceeded


def test_foreign_senders_are_named_by_position_and_star_never() -> None:
    patterns = ["*", "b.example", "boss@b.example", "own.example", "x@elsewhere.example"]
    problems = rules.foreign_sender_problems(patterns, {"b.example"})
    assert codes(problems) == [
        ("spoofing_whitelist[1]", "foreign_sender"),
        ("spoofing_whitelist[2]", "foreign_sender"),
    ]

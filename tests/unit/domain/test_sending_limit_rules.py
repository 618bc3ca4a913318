"""The pure sending-limit rules: which counters a message counts against, which limit it
breaks first, what the sender is told, and what a customer may set."""

from __future__ import annotations

import datetime as dt

from postmeister.domain.sending_limits.rules import (
    Counter,
    Limits,
    above_package,
    counters,
    first_exceeded,
    oldest_period_kept,
    value_problems,
)

# 00:30 in Berlin is still the previous UTC day: periods are UTC on every node.
BERLIN_AFTER_MIDNIGHT = dt.datetime(2026, 12, 2, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_a_message_counts_for_the_mailbox_and_its_domain_in_utc_periods() -> None:
    assert counters("info@alice.example", "alice.example", BERLIN_AFTER_MIDNIGHT) == [
        Counter("info@alice.example", "2026-12-01T23", "mailbox", "hour"),
        Counter("info@alice.example", "2026-12-01", "mailbox", "day"),
        Counter("@alice.example", "2026-12-01T23", "domain", "hour"),
        Counter("@alice.example", "2026-12-01", "domain", "day"),
    ]


def _counted(*values: tuple[int, int]) -> list[tuple[Counter, int, int]]:
    found = counters("info@alice.example", "alice.example", BERLIN_AFTER_MIDNIGHT)
    return [(c, m, r) for c, (m, r) in zip(found, values, strict=True)]


def test_no_limit_means_no_limit() -> None:
    huge = (10**6, 10**6)
    assert first_exceeded(_counted(huge, huge, huge, huge), Limits(), Limits(), recipients=1) is None


def test_the_first_broken_limit_is_named_with_the_mailbox_before_the_domain() -> None:
    exceeded = first_exceeded(
        _counted((3, 3), (3, 3), (9, 9), (9, 9)),
        Limits(messages_per_hour=2),
        Limits(messages_per_hour=5),
        recipients=1,
    )
    assert exceeded is not None
    assert (exceeded.counter.of, exceeded.limit_name, exceeded.limit) == (
        "mailbox", "messages_per_hour", 2,
    )  # fmt: skip
    assert exceeded.reply("info@alice.example") == (
        "451 4.7.1 Sending limit reached: 2 messages per hour for info@alice.example;"
        " try again later"
    )


def test_reaching_a_limit_exactly_is_allowed() -> None:
    assert first_exceeded(
        _counted((2, 7), (2, 7), (2, 7), (2, 7)),
        Limits(messages_per_hour=2, recipients_per_hour=7),
        Limits(messages_per_day=2),
        recipients=5,
    ) is None


def test_a_message_too_big_for_the_limit_is_a_permanent_failure() -> None:
    exceeded = first_exceeded(
        _counted((1, 11), (1, 11), (1, 11), (1, 11)),
        Limits(recipients_per_hour=10),
        Limits(),
        recipients=11,
    )
    assert exceeded is not None and exceeded.alone
    assert exceeded.reply("info@alice.example").startswith("550 5.7.1 Too many recipients")
    # A zero message limit is a pause, not a refusal for good.
    paused = first_exceeded(
        _counted((1, 1), (1, 1), (1, 1), (1, 1)), Limits(messages_per_day=0), Limits(), recipients=1
    )
    assert paused is not None and not paused.alone
    assert paused.reply("x@alice.example").startswith("451 ")


def test_the_domain_reply_names_the_domain() -> None:
    exceeded = first_exceeded(
        _counted((1, 1), (1, 1), (1, 1), (51, 51)), Limits(), Limits(messages_per_day=50),
        recipients=1,
    )  # fmt: skip
    assert exceeded is not None
    assert "50 messages per day for the domain alice.example" in exceeded.reply("info@alice.example")


def test_own_limits_replace_the_packages_one_by_one() -> None:
    own = Limits(messages_per_hour=5)
    package = Limits(messages_per_hour=200, messages_per_day=1000)
    assert own.over(package) == Limits(messages_per_hour=5, messages_per_day=1000)


def test_a_customer_may_only_tighten_the_package() -> None:
    package = Limits(messages_per_hour=200, recipients_per_day=None)
    assert above_package(Limits(messages_per_hour=200), package) == []
    assert above_package(Limits(messages_per_hour=201, recipients_per_day=10**6), package) == [
        ("messages_per_hour", "at most the package's limit of 200")
    ]


def test_values_must_be_null_or_a_32_bit_count() -> None:
    assert value_problems({"messages_per_hour": None, "messages_per_day": 0}) == []
    bad = {"a": -1, "b": 2**31, "c": True, "d": "5", "e": 1.0}
    assert [name for name, _ in value_problems(bad)] == ["a", "b", "c", "d", "e"]


def test_counters_older_than_yesterday_are_finished_with() -> None:
    now = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)
    kept = oldest_period_kept(now)
    assert kept == "2026-11-30"
    assert "2026-11-29T23" < kept <= "2026-11-30T00"
    assert kept <= "2026-11-30" and kept < "2026-12-01T05"

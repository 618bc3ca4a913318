"""Sending limits: what counts, against which limit, and what the sender is told. Pure.

A submitted message counts once, with all its recipients, against four counters: the
mailbox's hour and day and its domain's hour and day (all mailboxes of the domain
together). Periods are fixed UTC hours and days (`2026-12-01T22`, `2026-12-01`), the same on
every mail node whatever its clock's zone; a sender can therefore send a full hour's limit
just before and just after the hour turns, which is the price of counters that are one
row each and need no history.

A message is admitted only if, counted, it keeps every counter within its limit; otherwise
it is deferred (4xx: the client keeps it and retries later, nothing is lost), it is not
counted, and the first limit it would break is named. The sender milter applies these rules
(`dataplane.milter.limits`) from the database, so every mail node judges alike; the
controller uses them to check the limits it stores. This module imports no database code:
the milter loads it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Final, Literal

Subject = Literal["mailbox", "domain"]

# The limit names, in the order they are judged (and reported).
NAMES: Final = (
    "messages_per_hour",
    "messages_per_day",
    "recipients_per_hour",
    "recipients_per_day",
)
# The package's columns of them: `<subject>_<name>`.
PACKAGE_COLUMNS: Final = tuple(
    f"{subject}_{name}" for subject in ("mailbox", "domain") for name in NAMES
)
MAX_LIMIT: Final = 2**31 - 1  # a 32-bit integer column
# The limits a new package gets unless its creator gives others (package column -> value):
# a compromised mailbox stops after 200 messages an hour instead of never. Migration 0015
# gave every existing package the same.
PACKAGE_DEFAULTS: Final = {
    "mailbox_messages_per_hour": 200,
    "mailbox_messages_per_day": 1000,
    "mailbox_recipients_per_hour": 500,
    "mailbox_recipients_per_day": 2500,
}


@dataclass(frozen=True)
class Limits:
    """One subject's limits; None: no limit."""

    messages_per_hour: int | None = None
    messages_per_day: int | None = None
    recipients_per_hour: int | None = None
    recipients_per_day: int | None = None

    @classmethod
    def of(cls, values: Mapping[str, int | None]) -> Limits:
        return cls(**{name: values.get(name) for name in NAMES})

    def as_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def over(self, other: Limits) -> Limits:
        """These limits where set, else `other`'s: a mailbox's own over its package's."""
        return Limits(
            *(
                mine if mine is not None else theirs
                for mine, theirs in zip(
                    self.as_dict().values(), other.as_dict().values(), strict=True
                )
            )
        )


@dataclass(frozen=True)
class Counter:
    """One counter a message counts against: its subject key and period key."""

    subject: str  # "local@domain" or "@domain"
    period: str  # "YYYY-MM-DDTHH" or "YYYY-MM-DD"
    of: Subject
    per: Literal["hour", "day"]


def counters(login: str, domain: str, now: dt.datetime) -> list[Counter]:
    """The four counters a message of `login` (canonical) in `domain` (A-label) counts against."""
    utc = now.astimezone(dt.UTC)
    hour, day = utc.strftime("%Y-%m-%dT%H"), utc.strftime("%Y-%m-%d")
    return [
        Counter(login, hour, "mailbox", "hour"),
        Counter(login, day, "mailbox", "day"),
        Counter(f"@{domain}", hour, "domain", "hour"),
        Counter(f"@{domain}", day, "domain", "day"),
    ]


def oldest_period_kept(now: dt.datetime) -> str:
    """Counters of periods before this one are finished with: yesterday's day key (UTC).
    Both kinds of key compare as text, and every hour of today sorts after it."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Exceeded:
    """The limit a message would break."""

    counter: Counter
    limit_name: str  # one of NAMES
    limit: int
    # The message alone breaks it (more recipients than the limit): waiting cannot help.
    alone: bool = False

    def reply(self, login: str) -> str:
        """The SMTP reply: 4xx, so that the client keeps the message and tries again later,
        unless the message alone is too big for the limit (5xx: waiting cannot help)."""
        what, _, per = self.limit_name.partition("_per_")
        whose = login if self.counter.of == "mailbox" else f"the domain {self.counter.subject[1:]}"
        if self.alone:
            return (
                f"550 5.7.1 Too many recipients: {whose} may send to {self.limit} {what} per {per}"
            )
        return (
            f"451 4.7.1 Sending limit reached: {self.limit} {what} per {per} for {whose};"
            " try again later"
        )


def first_exceeded(
    counted: Sequence[tuple[Counter, int, int]],
    mailbox: Limits,
    domain: Limits,
    *,
    recipients: int,
) -> Exceeded | None:
    """The first limit broken by counts that include the message (counter, messages,
    recipients of the period), or None: the message may go. `recipients`: the message's."""
    for counter, period_messages, period_recipients in counted:
        limits = mailbox if counter.of == "mailbox" else domain
        for name, value, own in (
            (f"messages_per_{counter.per}", period_messages, 1),
            (f"recipients_per_{counter.per}", period_recipients, recipients),
        ):
            limit = getattr(limits, name)
            if limit is not None and value > limit:
                return Exceeded(
                    counter, name, limit, alone=name.startswith("recipients") and own > limit
                )
    return None


def value_problems(values: Mapping[str, object]) -> list[tuple[str, str]]:
    """(field, message) for every value that is neither None nor an integer 0..MAX_LIMIT."""
    return [
        (name, f"must be null or an integer from 0 to {MAX_LIMIT}")
        for name, value in values.items()
        if value is not None
        and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT)
    ]


def above_package(own: Limits, package: Limits) -> list[tuple[str, str]]:
    """(field, message) for every own limit above the package's: a customer may tighten a
    mailbox's limits, never lift them beyond what the package allows (an admin may)."""
    found = []
    for name in NAMES:
        mine, allowed = getattr(own, name), getattr(package, name)
        if mine is not None and allowed is not None and mine > allowed:
            found.append((name, f"at most the package's limit of {allowed}"))
    return found

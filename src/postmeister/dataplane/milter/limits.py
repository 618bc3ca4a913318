"""Sending limits on submission: count each message, defer it when a limit is reached.

The sender milter asks this after the header From check passed, at end of headers, with the
number of recipients Postfix accepted (`RCPT` commands it passed on). The rules are
`postmeister.domain.sending_limits.rules`; the counters are rows in the database that every
mail node writes (`dataplane.contract.COUNT_SENDING`), so a mailbox cannot spread its mail
over several nodes to multiply its limit.

- Counting and checking are one write transaction: the message's counts are added, and kept
  only if no limit is broken; a deferred message is not counted, so retries cost nothing.
- A deferral is recorded once per subject, period and limit (`RECORD_LIMIT_HIT`); the
  controller's `sending-limits` job turns it into an audit event and a webhook.
- The database cannot be read or written: temporary failure (451 4.3.0), like the From check.
- Except one case: on SQLite, another writer (a long controller transaction) holds the write
  lock for more than half a second (the store raises `TimeoutError`). Readers are not
  blocked in WAL mode, so the From check passed; making submission wait for the controller
  would be worse than letting this one message go uncounted, so it goes (logged).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from postmeister.domain.sending_limits.rules import Exceeded, Limits, counters, first_exceeded

log = logging.getLogger("postmeister.milter.limits")

UNAVAILABLE: Final = "451 4.3.0 Sending limit check temporarily unavailable, try again later"


class CounterStore(Protocol):
    def sending_limits_of(self, login: str) -> tuple[Any, ...] | None: ...

    def count_sending(
        self,
        counters: list[tuple[str, str]],
        recipients: int,
        keep: Callable[[list[tuple[Any, ...]]], bool],
    ) -> list[tuple[Any, ...]]: ...

    def record_limit_hit(
        self, *, login: str, subject: str, period: str, limit_name: str, limit_value: int
    ) -> None: ...


@dataclass(frozen=True)
class Admission:
    accept: bool
    reply: str = ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SendingLimiter:
    store: CounterStore
    clock: Callable[[], dt.datetime] = _now

    def admit(self, login: str, recipients: int) -> Admission:
        """Count a message of `login` (canonical) with `recipients`, or defer it."""
        try:
            row = self.store.sending_limits_of(login)
            if row is None:  # not a mailbox (the login check would have refused it)
                return Admission(True)
            domain, *values = row
            mailbox = Limits(*values[:4])
            domain_limits = Limits(*values[4:])
            judged = counters(login, str(domain), self.clock())
            found: list[Exceeded] = []

            def keep(results: list[tuple[Any, ...]]) -> bool:
                counted = [
                    (counter, int(r[0]), int(r[1]))
                    for counter, r in zip(judged, results, strict=True)
                ]
                exceeded = first_exceeded(counted, mailbox, domain_limits, recipients=recipients)
                if exceeded is not None:
                    found.append(exceeded)
                return exceeded is None

            try:
                self.store.count_sending([(c.subject, c.period) for c in judged], recipients, keep)
            except TimeoutError:
                log.warning("sending limit not counted for %s: the write lock is busy", login)
                return Admission(True)
            if not found:
                return Admission(True)
            exceeded = found[0]
            try:
                self.store.record_limit_hit(
                    login=login,
                    subject=exceeded.counter.subject,
                    period=exceeded.counter.period,
                    limit_name=exceeded.limit_name,
                    limit_value=exceeded.limit,
                )
            except TimeoutError:  # deferred all the same; a retry records it
                log.warning("sending limit hit not recorded for %s: the write lock is busy", login)
        except Exception:
            log.exception("sending limit check failed")
            return Admission(False, UNAVAILABLE)
        reply = exceeded.reply(login)
        log.info("deferred for %s: %s", login, reply)
        return Admission(False, reply)

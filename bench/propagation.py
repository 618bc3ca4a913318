"""Section 2: propagation latency, API write answered → the data plane acts on it.

The write goes through `postmeister serve` over HTTPS. The clock starts when its response
has arrived; then the next client attempt is made at once (a fresh SMTP or IMAP connection,
as real clients make them), and repeated until it shows the change. The figure is the time
from the response to the end of the first attempt that showed it, so it includes that
attempt's own cost (TLS handshake, Dovecot's password verification); `first try` is the share
of changes the very first attempt already showed (Postfix and Dovecot have no cache here).

| change                | write                                   | seen when                      |
|-----------------------|-----------------------------------------|--------------------------------|
| new mailbox           | POST /mail/account/                     | IMAP LOGIN succeeds            |
| new password          | POST /mail/account/{id}/set_password/   | IMAP LOGIN with it succeeds    |
| deleted account       | DELETE /mail/account/{id}/              | SMTP RCPT TO it answers 550    |
| new alias target      | PUT /mail/alias/{id}/                   | a message sent to the alias    |
|                       |                                         | lands in the new target's      |
|                       |                                         | Maildir (includes delivery)    |
| submission disabled   | POST /mail/account/{id}/disable_sub… | submission RCPT answers 554    |

The accounts changed are bulk-loaded ones (password BULK_PASSWORD), a different one for
each change, on the large database that section 1 used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import Json, latency_summary, log
from bench.load import BULK_PASSWORD, domain_name, forward, mailbox
from bench.mail import imap_login, maildir_has, rcpt_code, send, submission_code
from bench.servers import Server

NEW_PASSWORD = "Harbor-Quill-Mango-Tundra-71"
GIVE_UP_SECONDS = 10.0
GIVE_UP_AFTER = 3  # changes in a row never seen: the kind is broken, not slow
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class Change:
    """One change: the API write and the check that shows it took effect."""

    write: Callable[[httpx.Client], httpx.Response]
    seen: Callable[[], bool]
    before: Callable[[httpx.Client], object] | None = None  # untimed preparation
    then: Callable[[], object] | None = None  # timed, once, right after the response


def _until_seen(seen: Callable[[], bool], started: float) -> tuple[float, int]:
    """Seconds from `started` until `seen()` first returns True, and the attempts it took."""
    attempts = 0
    while True:
        attempts += 1
        if seen():
            return time.perf_counter() - started, attempts
        if time.perf_counter() - started > GIVE_UP_SECONDS:
            return float("inf"), attempts
        time.sleep(POLL_SECONDS)


def _kinds(ports: dict[str, Any], mail_root: Path) -> dict[str, Callable[[int], Change]]:
    imap, smtp, submission = ports["imap"], ports["smtp"], ports["submission"]
    run = uuid.uuid4().hex[:6]

    def new_mailbox(i: int) -> Change:
        domain = domain_name(i)
        name = f"p{run}n{i}"
        return Change(
            write=lambda api: api.post(
                "/mail/account/",
                json={"name": name, "domain": domain, "password": NEW_PASSWORD},
            ),
            seen=lambda: imap_login(imap, f"{name}@{domain}", NEW_PASSWORD),
        )

    def new_password(i: int) -> Change:
        account = mailbox(50, i)
        return Change(
            write=lambda api: api.post(
                f"/mail/account/{account}/set_password/", json={"password": NEW_PASSWORD}
            ),
            seen=lambda: imap_login(imap, account, NEW_PASSWORD),
        )

    def deleted_account(i: int) -> Change:
        account = mailbox(51, i)
        return Change(
            write=lambda api: api.delete(f"/mail/account/{account}/"),
            seen=lambda: rcpt_code(smtp, account) == 550,
        )

    def new_alias_target(i: int) -> Change:
        alias, old, new = forward(0, i), mailbox(54, i), mailbox(53, i)
        token = f"bench-{run}-{i}"
        return Change(
            before=lambda api: api.put(f"/mail/alias/{alias}/", json={"to": old}),
            write=lambda api: api.put(f"/mail/alias/{alias}/", json={"to": new}),
            then=lambda: send(smtp, alias, token),
            seen=lambda: maildir_has(mail_root, new, token),
        )

    def submission_disabled(i: int) -> Change:
        account = mailbox(52, i)
        return Change(
            write=lambda api: api.post(f"/mail/account/{account}/disable_submission/"),
            seen=lambda: submission_code(submission, account, BULK_PASSWORD) == 554,
        )

    return {
        "new mailbox → IMAP LOGIN works": new_mailbox,
        "new password → IMAP LOGIN with it works": new_password,
        "deleted account → SMTP RCPT 550": deleted_account,
        "new alias target → next message lands there": new_alias_target,
        "submission disabled → submission RCPT 554": submission_disabled,
    }


def measure(*, server: Server, token: str, ports: dict[str, Any], changes: int) -> list[Json]:
    """`changes` changes of each kind, one after another; one row per kind."""
    with server.client(token) as api:
        return measure_kinds(api, _kinds(ports, Path(ports["mail_root"])), changes)


# A response header naming the server behind a load balancer (bench/cluster.py's HAProxy).
SERVED_BY = "X-Served-By"


def measure_kinds(
    api: httpx.Client, kinds: dict[str, Callable[[int], Change]], changes: int
) -> list[Json]:
    """`changes` changes of each kind through `api`, one after another; one row per kind."""
    rows: list[Json] = []
    for label, make in kinds.items():
        latencies: list[float] = []
        writes: list[float] = []
        served_by: dict[str, int] = {}
        first_try = 0
        failures = 0
        for i in range(changes):
            change = make(i)
            if change.before is not None:
                change.before(api)
            started = time.perf_counter()
            response = change.write(api)
            writes.append(time.perf_counter() - started)
            if response.status_code >= 300:
                raise RuntimeError(
                    f"{label}: the API answered {response.status_code}: {response.text[:300]}"
                )
            if SERVED_BY in response.headers:
                server = response.headers[SERVED_BY]
                served_by[server] = served_by.get(server, 0) + 1
            answered = time.perf_counter()
            if change.then is not None:
                change.then()
            seconds, attempts = _until_seen(change.seen, answered)
            if seconds == float("inf"):
                failures += 1
                if failures == GIVE_UP_AFTER and not latencies:
                    log(f"  {label}: the first {failures} changes were never seen; skipped")
                    break
                continue
            latencies.append(seconds)
            # With a message sent once (`then`), polling the Maildir is not a new attempt:
            # the one message reaching the new target is the first try succeeding.
            first_try += attempts == 1 or change.then is not None
        row: Json = {
            "change": label,
            "changes": changes,
            "propagation": latency_summary(latencies),
            "first_try_share": round(first_try / changes, 3),
            "not_seen_within_10s": failures,
            "api_write": latency_summary(writes),
        }
        if served_by:
            row["served_by"] = served_by
        rows.append(row)
        log(
            f"  {label:<46} p50 {row['propagation']['p50_ms']:>7.1f} ms  "
            f"p99 {row['propagation']['p99_ms']:>7.1f} ms  first try {first_try}/{changes}"
        )
    return rows

"""How long a change takes to go live: API response → the next SMTP/IMAP attempt sees it.

Postfix and Dovecot read the contract views on every lookup, with no cache, so the first
attempt after the API answered must already see the change. The measured figures are printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, strong_password
from tests.e2e.mail import deliver, imap_login_works, submit

pytestmark = pytest.mark.e2e

LIMIT_SECONDS = 1.0


def seconds_until(seen: Callable[[], bool], *, give_up: float = 5.0) -> float:
    """Seconds from now until `seen()` first returns True (attempts included)."""
    start = time.monotonic()
    while not seen():
        if time.monotonic() - start > give_up:
            return float("inf")
        time.sleep(0.01)
    return time.monotonic() - start


def test_changes_are_live_within_a_second(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    imap, smtp, submission = stack.ports["imap"], stack.ports["smtp"], stack.ports["submission"]
    figures: dict[str, float] = {}

    account = stack.create_account()
    figures["create account → IMAP login"] = seconds_until(
        lambda: imap_login_works(imap, account.address, account.password)
    )

    new_password = strong_password(account.address)
    stack.call("POST", f"/mail/account/{account.address}/set_password/", password=new_password)
    figures["set_password → new password logs in"] = seconds_until(
        lambda: imap_login_works(imap, account.address, new_password)
    )

    alias = stack.create_alias([account.address])
    figures["create alias → RCPT accepted"] = seconds_until(
        lambda: (
            deliver(smtp, sender="a@sender.example", recipients=[alias], subject="x")[alias] == 250
        )
    )

    stack.call("POST", f"/mail/account/{account.address}/disable_submission/")
    figures["disable_submission → sending refused"] = seconds_until(
        lambda: submit(
            submission, login=account.address, password=new_password,
            envelope_from=account.address, header_from=account.address, to=account.address,
        ).code == 554
    )  # fmt: skip

    stack.call("DELETE", f"/mail/alias/{alias}/")
    figures["delete alias → RCPT 550"] = seconds_until(
        lambda: (
            deliver(smtp, sender="a@sender.example", recipients=[alias], subject="x")[alias] == 550
        )
    )

    with capsys.disabled():
        print(f"\npropagation latency on {stack.backend} (API response → next attempt sees it):")
        for what, seconds in figures.items():
            print(f"  {what:<42} {seconds * 1000:7.1f} ms")
    assert all(seconds < LIMIT_SECONDS for seconds in figures.values()), figures

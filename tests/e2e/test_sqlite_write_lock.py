"""A long write transaction in the controller must not make SMTP or IMAP clients hang.

The database is in WAL mode: readers (Postfix's proxymap, Dovecot's auth, the milter) read the
last committed state while a writer holds the lock, so they answer at their normal speed.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.mail import deliver, imap_login_works, submit, unique_subject, wait_for_subject

pytestmark = pytest.mark.e2e

LOCK_SECONDS = 10.0
NORMAL_ANSWER_SECONDS = 2.0


def test_ten_second_write_lock_does_not_hang_smtp_or_imap(
    sqlite_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = sqlite_stack
    account, other = stack.create_account(), stack.create_account()
    unknown = f"nobody-here@{stack.domain}"
    database = stack.settings.resolved_database_url.removeprefix("sqlite:///")
    locked = threading.Event()
    release = threading.Event()

    def hold_write_lock() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE addresses SET description = 'held' WHERE address = ?",
                           (other.address,))  # fmt: skip
        locked.set()
        release.wait(LOCK_SECONDS + 5)
        connection.execute("ROLLBACK")
        connection.close()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    assert locked.wait(5)
    started = time.monotonic()
    slowest = 0.0
    subjects = []
    try:
        while time.monotonic() - started < LOCK_SECONDS:
            before = time.monotonic()
            subject = unique_subject("during the lock")
            codes = deliver(
                stack.ports["smtp"], sender="f@sender.example",
                recipients=[account.address, unknown], subject=subject,
            )  # fmt: skip
            assert codes == {account.address: 250, unknown: 550}
            subjects.append(subject)
            assert imap_login_works(stack.ports["imap"], account.address, account.password)
            sent = submit(
                stack.ports["submission"], login=account.address, password=account.password,
                envelope_from=account.address, header_from=account.address, to=account.address,
            )  # fmt: skip
            assert sent.sent, sent
            slowest = max(slowest, time.monotonic() - before)
        held = time.monotonic() - started
    finally:
        release.set()
        holder.join()

    with capsys.disabled():
        print(f"\nSQLite write lock held {held:.1f} s; slowest SMTP+IMAP+submission round "
              f"{slowest:.2f} s")  # fmt: skip
    assert held >= LOCK_SECONDS
    assert slowest < NORMAL_ANSWER_SECONDS
    for subject in subjects:
        assert wait_for_subject(stack.ports["imap"], account.address, account.password, subject)

"""The mail data plane follows a PostgreSQL failover: the primary is SIGKILLed during a
stream of SMTP deliveries and IMAP logins. PostgreSQL only (the point is PostgreSQL's
replication and libpq's multi-host connections; SQLite is one file on one machine).

The database is a pg_auto_failover monitor, primary and synchronous standby, each in a
network namespace on a bridge of this module's own (`tests/support/pgcluster.py`); the data
plane (`dataplane up`: Postfix, Dovecot, the milters, rspamd) runs on the host's loopback
and reaches the nodes through the bridge with the one multi-host URL a controller has
(`host=a&host=b&target_session_attrs=read-write`), rendered per component.
"""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from postmeister.models import SendingCounter
from postmeister.store import migrate
from tests.e2e.conftest import Account, Stack, shared_tmp_dir, start_stack
from tests.e2e.mail import (
    HOST,
    imap_login_works,
    imap_subjects,
    message,
    subject_is,
    submit,
    unique_subject,
    wait_for_messages,
    wait_for_subject,
)
from tests.support.pgcluster import Bridge, FailoverCluster

pytestmark = pytest.mark.e2e

BEFORE, AFTER = 8, 20  # messages sent before the crash, and accepted after it
RETRY_SECONDS = 60.0  # how long the sender retries one message answered 4xx
FLUSH_SECONDS = 60.0
NO_ANSWER = 0  # the connection broke or timed out: no SMTP reply at all
# The states of a promoted node: `wait_primary` while it is alone (the old primary is dead).
PROMOTED = ("wait_primary", "primary")


@pytest.fixture(scope="module")
def failover_stack() -> Iterator[tuple[Stack, FailoverCluster]]:
    root = shared_tmp_dir("pm-e2e-dpfailover-")
    bridge = Bridge()
    try:
        cluster = FailoverCluster(bridge, root)
        cluster.start()
        url = cluster.database_url(application_name="mail-node")
        migrate(url)
        for stack in start_stack("postgresql", root, url):
            yield stack, cluster
    finally:
        bridge.remove()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Sender:
    """A remote MTA: retries a message answered 4xx until it is accepted (bounded); a 5xx
    would be a bounce, so the test fails on one."""

    port: int
    recipient: str
    answers: Counter[int] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    temporary_at: list[float] = field(default_factory=list)  # monotonic times of 4xx answers
    slowest: float = 0.0  # the longest one transaction took, in seconds

    def attempt(self, subject: str) -> int:
        """One SMTP transaction; the reply that decided it (RCPT, or DATA's end)."""
        try:
            with smtplib.SMTP(HOST, self.port, timeout=20) as smtp:
                smtp.ehlo("mx.sender.example")
                code = smtp.mail("someone@sender.example")[0]
                if code == 250:
                    code = smtp.rcpt(self.recipient)[0]
                if code == 250:
                    body = message(header_from="someone@sender.example", to=self.recipient,
                                   subject=subject)  # fmt: skip
                    code = smtp.data(body)[0]
        except smtplib.SMTPResponseException as refused:  # e.g. a 421 greeting
            code = refused.smtp_code
        except (OSError, smtplib.SMTPServerDisconnected):
            code = NO_ANSWER  # a sending MTA retries later, as after a 4xx
        return code

    def send(self, subject: str) -> None:
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            began = time.monotonic()
            code = self.attempt(subject)
            self.slowest = max(self.slowest, time.monotonic() - began)
            self.answers[code] += 1
            assert code < 500, f"{subject!r} answered {code}: a sender would bounce it"
            if 200 <= code < 300:
                self.accepted.append(subject)
                return
            self.temporary_at.append(time.monotonic())
            assert time.monotonic() < deadline, f"{subject!r} still deferred after retries"
            time.sleep(0.5)


def _imap_login(port: int, account: Account) -> bool:
    try:
        return imap_login_works(port, account.address, account.password)
    except (OSError, imaplib.IMAP4.error):
        return False


def _postfix(stack: Stack, *args: str) -> str:
    config = str(stack.root / "etc" / "postfix")
    return subprocess.run([args[0], "-c", config, *args[1:]], capture_output=True, text=True,
                          timeout=60, check=True).stdout  # fmt: skip


def test_mail_and_logins_follow_the_new_primary_and_no_accepted_message_is_lost(
    failover_stack: tuple[Stack, FailoverCluster], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, cluster = failover_stack
    old, new = cluster.nodes
    assert cluster.primary() is old
    account = stack.create_account()
    smtp, imap = stack.ports["smtp"], stack.ports["imap"]
    assert _imap_login(imap, account)
    sender = Sender(smtp, account.address)
    started = time.monotonic()
    for number in range(BEFORE):
        sender.send(unique_subject(f"failover before-{number}"))

    old.host.crash()
    crashed = time.monotonic()
    logins: list[tuple[float, bool]] = []  # (seconds after the kill, logged in)
    login_after: float | None = None
    number = 0
    while number < AFTER or login_after is None:
        number += 1
        sender.send(unique_subject(f"failover after-{number}"))
        if number % 3 == 0 or number >= AFTER:
            works = _imap_login(imap, account)
            logins.append((time.monotonic() - crashed, works))
            if works and login_after is None and cluster.state(new) in PROMOTED:
                login_after = time.monotonic() - crashed
        assert time.monotonic() - crashed < 2 * RETRY_SECONDS, "no IMAP login after the switch"
    assert cluster.state(new) in PROMOTED

    # Postfix retries deferred mail by itself after minimal_backoff_time (300 s); the test
    # asks it to now, until every accepted message is in the mailbox.
    deadline = time.monotonic() + FLUSH_SECONDS
    while True:
        subjects = set(imap_subjects(imap, account.address, account.password))
        missing = [subject for subject in sender.accepted if subject not in subjects]
        if not missing:
            break
        assert time.monotonic() < deadline, f"{len(missing)} accepted messages never arrived"
        _postfix(stack, "postqueue", "-f")
        time.sleep(1)
    delivered_after = time.monotonic() - crashed
    log = (stack.root / "log" / "postfix.log").read_text()
    assert "status=bounced" not in log
    assert _imap_login(imap, account)

    # A mailbox created after the switch exists only on the new primary: Postfix, the
    # milters and Dovecot find it there (no cache: auth_cache_size = 0).
    newcomer = stack.create_account()
    fresh = Sender(smtp, newcomer.address)
    fresh.send(unique_subject("failover newcomer"))
    assert _imap_login(imap, newcomer)
    assert wait_for_subject(imap, newcomer.address, newcomer.password, fresh.accepted[0])
    # Submission after the switch: the sender milter counts the message (a write: only the
    # new primary takes it) and OpenDKIM signs it with the key it reads from the database.
    subject = unique_subject("failover submitted")
    sent = submit(stack.ports["submission"], login=newcomer.address, password=newcomer.password,
                  envelope_from=newcomer.address, header_from=newcomer.address,
                  to=account.address, subject=subject)  # fmt: skip
    assert sent.sent, sent
    signed = wait_for_messages(imap, account.address, account.password, subject_is(subject))
    assert signed and "DKIM-Signature" in signed[0], signed
    with stack.sessions() as session:
        counted = session.scalars(
            select(SendingCounter.messages).where(SendingCounter.subject == newcomer.address)
        ).all()
    assert counted and max(counted) == 1, counted
    deferred = log.count("status=deferred")

    window = (
        f"4xx from {min(sender.temporary_at) - crashed:.1f} s to"
        f" {max(sender.temporary_at) - crashed:.1f} s after the kill"
        if sender.temporary_at
        else "no 4xx at all"
    )
    with capsys.disabled():
        print(
            f"\ndata-plane failover: {len(sender.accepted)} messages accepted"
            f" ({BEFORE} before the kill), all {len(sender.accepted)} in the mailbox"
            f" {delivered_after:.1f} s after the kill; SMTP answers {dict(sender.answers)}"
            f" ({window}), slowest transaction {sender.slowest:.1f} s; {deferred} LMTP"
            f" deliveries deferred and retried; IMAP logins (s after the kill, ok)"
            f" {[(round(at, 1), ok) for at, ok in logins]}, first after the promotion at"
            f" {login_after:.1f} s; a mailbox created after the switch got mail, logged in"
            f" and sent a signed, counted submission; test body"
            f" {time.monotonic() - started:.1f} s"
        )

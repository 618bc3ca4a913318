"""Outbound through an authenticated smarthost, end to end on both databases: the remote
(a second real Postfix on 127.0.0.2, tests/support/receiver.py) accepts mail only after
STARTTLS and SMTP AUTH; the stack's Postfix gets there with the username from its settings
and the password from a file, which appears in no rendered file but the 0600 map."""

from __future__ import annotations

import os
import shutil
import smtplib
import ssl
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import Stack, scratch_database, shared_tmp_dir, start_stack
from tests.e2e.mail import submit, unique_subject
from tests.support.receiver import Receiver, running_receiver

PASSWORD = f"relay {uuid.uuid4().hex}"
USERNAME = "mail-node-1"


@dataclass
class Relayed:
    stack: Stack
    receiver: Receiver


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relayed(request: pytest.FixtureRequest) -> Iterator[Relayed]:
    root = shared_tmp_dir(f"pm-relay-{request.param}-")
    password_file = root / "relay-password"
    password_file.write_text(PASSWORD + "\n")
    os.chmod(password_file, 0o600)
    try:
        users = {USERNAME: PASSWORD}
        with (
            running_receiver(root / "receiver", sasl_users=users) as receiver,
            scratch_database(request.param, root, prefix="pm_relay") as url,
        ):
            env = {
                "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY": receiver.relay,
                "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY_USERNAME": USERNAME,
                "POSTMEISTER_DATAPLANE__OUTBOUND_RELAY_PASSWORD_FILE": str(password_file),
            }
            for stack in start_stack(request.param, root, url, extra_env=env):
                yield Relayed(stack, receiver)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_mail_reaches_the_smarthost_with_tls_and_auth(relayed: Relayed) -> None:
    stack, receiver = relayed.stack, relayed.receiver
    account = stack.create_account()
    subject = unique_subject("via the smarthost")
    sent = submit(
        stack.ports["submission"],
        login=account.address,
        password=account.password,
        envelope_from=account.address,
        header_from=account.address,
        to="someone@remote.example",
        subject=subject,
    )
    assert sent.sent, sent
    (raw,) = [r for r in receiver.wait_for(1) if subject.encode() in r]
    assert b"DKIM-Signature:" in raw
    log = receiver.log_file.read_text()
    assert f"sasl_username={USERNAME}" in log
    # The hop to the smarthost was encrypted (the receiver notes TLS in its Received line).
    assert b"(using TLS" in raw


def test_the_relay_password_is_only_in_the_0600_map(relayed: Relayed) -> None:
    etc = relayed.stack.root / "etc"
    holders = [p for p in etc.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert holders == [etc / "postfix" / "relay-password"]
    assert stat.S_IMODE(holders[0].stat().st_mode) == 0o600
    assert PASSWORD not in (etc / "postfix" / "main.cf").read_text()
    for log in (relayed.stack.root / "log").glob("*"):
        assert PASSWORD not in log.read_text(errors="replace"), log


def test_without_auth_the_smarthost_refuses(relayed: Relayed) -> None:
    """The remote really requires AUTH: what arrived there came through the login."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    receiver = relayed.receiver
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.starttls(context=context)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("x@outside.example", ["y@remote.example"], b"Subject: no\r\n\r\nno\r\n")

"""SRS for forwards, end to end on both databases: a private stack (with its postsrsd, a real
process started by `dataplane up` on free loopback ports and stopped by its pid) relays
everything off the machine through its smarthost setting to a second, separate real Postfix
on 127.0.0.2 (tests/support/receiver.py), which plays the other provider a forward leads to.

- Mail from an outside sender forwarded to the other provider (by a forward or a catch-all)
  arrives there with an SRS0 envelope sender in the SRS domain (the stack's host name); a hosted mailbox that gets the
  same message sees the original sender as its Return-Path.
- Mail from a hosted mailbox, forwarded outside or sent to another hosted domain, keeps its
  envelope sender.
- A bounce (null sender) to the SRS address reaches the original sender at the other
  provider; an SRS address with a forged hash is refused at RCPT time.
"""

from __future__ import annotations

import json
import re
import shutil
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import (
    Stack,
    dataplane_cli,
    scratch_database,
    shared_tmp_dir,
    start_stack,
    strong_password,
    unique,
)
from tests.e2e.mail import (
    HOST,
    deliver,
    send_raw,
    subject_is,
    submit,
    unique_subject,
    wait_for_messages,
)
from tests.support.factories import add_domain_to, make_token
from tests.support.receiver import Receiver, running_receiver

pytestmark = pytest.mark.e2e

SRS_DOMAIN = "mail.postmeister.test"  # the stack's host name: the default SRS domain
OUTSIDE_TARGET = "friend@remote.example"
SRS_ADDRESS = re.compile(r"SRS0=[^=]+=[^=]+=(?P<domain>[^=]+)=(?P<local>[^@]+)@(?P<srs>.+)")


@dataclass
class Forwarding:
    stack: Stack
    receiver: Receiver


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def forwarding(request: pytest.FixtureRequest) -> Iterator[Forwarding]:
    root = shared_tmp_dir(f"pm-srs-{request.param}-")
    try:
        with (
            running_receiver(root / "receiver") as receiver,
            scratch_database(request.param, root, prefix="pm_srs") as url,
        ):
            env = {"POSTMEISTER_DATAPLANE__OUTBOUND_RELAY": receiver.relay}
            for stack in start_stack(request.param, root, url, extra_env=env):
                yield Forwarding(stack, receiver)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _arrived(receiver: Receiver, subject: str, timeout: float = 30.0) -> EmailMessage:
    """The one message with `subject` at the other provider, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in receiver.messages() if str(m["Subject"]) == subject]
        if found:
            (message,) = found
            return message
        time.sleep(0.1)
    log = receiver.log_file.read_text() if receiver.log_file.exists() else "(no log)"
    raise AssertionError(f"{subject!r} did not arrive at the other provider:\n{log}")


def _return_path(message: EmailMessage) -> str:
    """The envelope sender the delivering server saw (Return-Path, without the brackets)."""
    return str(message["Return-Path"]).strip().strip("<>")


def _outside_sender() -> str:
    return f"{unique('bob')}@outside.example"


def test_a_forward_to_another_provider_leaves_with_an_srs_sender(
    forwarding: Forwarding,
) -> None:
    stack, receiver = forwarding.stack, forwarding.receiver
    keeper = hosting.mailbox(stack, prefix="keeper")
    _, forward = hosting.forward(stack, [OUTSIDE_TARGET, keeper.address])
    sender, subject = _outside_sender(), unique_subject("forwarded outside")

    assert deliver(stack.ports["smtp"], sender=sender, recipients=[forward], subject=subject) == {
        forward: 250
    }

    arrived = _arrived(receiver, subject)
    rewritten = SRS_ADDRESS.fullmatch(_return_path(arrived))
    assert rewritten is not None, arrived["Return-Path"]
    assert (rewritten["local"], rewritten["domain"]) == tuple(sender.split("@"))
    assert rewritten["srs"] == SRS_DOMAIN
    # Only the envelope: the reader still sees the author.
    assert str(arrived["From"]) == sender
    # The hosted copy keeps the original sender as its Return-Path.
    (kept,) = wait_for_messages(
        stack.ports["imap"], keeper.address, keeper.password, subject_is(subject)
    )
    assert _return_path(kept) == sender


def test_a_catchall_to_another_provider_leaves_with_an_srs_sender(
    forwarding: Forwarding,
) -> None:
    stack, receiver = forwarding.stack, forwarding.receiver
    domain = f"{unique('catchall')}.e2e.example"
    admin = make_token(stack.sessions, admin=True)
    attributes = {"name": domain, "customer_id": stack.tenant.customer_id}
    created = hosting.request_as(
        stack, admin, "POST", "/domains",
        {"data": {"type": "domain", "attributes": {**attributes, "catchall": [OUTSIDE_TARGET]}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    sender, subject = _outside_sender(), unique_subject("caught and forwarded")
    anyone = f"{unique('anyone')}@{domain}"

    assert deliver(stack.ports["smtp"], sender=sender, recipients=[anyone], subject=subject) == {
        anyone: 250
    }

    rewritten = SRS_ADDRESS.fullmatch(_return_path(_arrived(receiver, subject)))
    assert rewritten is not None
    assert f"{rewritten['local']}@{rewritten['domain']}" == sender


def test_a_hosted_sender_forwarded_outside_is_not_rewritten(forwarding: Forwarding) -> None:
    stack, receiver = forwarding.stack, forwarding.receiver
    account = stack.create_account()
    forward = stack.create_alias([OUTSIDE_TARGET])
    subject = unique_subject("hosted sender")

    sent = submit(
        stack.ports["submission"],
        login=account.address,
        password=account.password,
        envelope_from=account.address,
        header_from=account.address,
        to=forward,
        subject=subject,
    )
    assert sent.sent, sent

    # Its own domain's SPF covers this server already: the sender stays.
    assert _return_path(_arrived(receiver, subject)) == account.address


def test_mail_between_hosted_domains_keeps_its_sender(forwarding: Forwarding) -> None:
    stack = forwarding.stack
    other_domain = f"{unique('second')}.e2e.example"
    add_domain_to(stack.sessions, stack.tenant, other_domain)
    local = unique("reader")
    password = strong_password(f"{local}@{other_domain}")
    stack.call("POST", "/mail/account/", name=local, domain=other_domain, password=password)
    reader = f"{local}@{other_domain}"
    writer = stack.create_account()
    subject = unique_subject("between hosted domains")

    sent = submit(
        stack.ports["submission"],
        login=writer.address,
        password=writer.password,
        envelope_from=writer.address,
        header_from=writer.address,
        to=reader,
        subject=subject,
    )
    assert sent.sent, sent

    (arrived,) = wait_for_messages(stack.ports["imap"], reader, password, subject_is(subject))
    assert _return_path(arrived) == writer.address
    # Postfix queued it with the sender as it was (its log names the queue's sender).
    queue_id = sent.text.rsplit(" ", 1)[-1]
    log = (stack.root / "log" / "postfix.log").read_text()
    assert f"{queue_id}: from=<{writer.address}>" in log


def _bounce(*, srs_address: str, subject: str) -> bytes:
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@mx.remote.example"
    report["To"] = srs_address
    report["Subject"] = subject
    report["Auto-Submitted"] = "auto-replied"
    report.set_content(
        "This is the mail system at host mx.remote.example.\n\n"
        f"<{OUTSIDE_TARGET}>: mailbox unavailable\n"
    )
    return report.as_bytes()


def test_a_bounce_to_the_srs_address_reaches_the_original_sender(
    forwarding: Forwarding,
) -> None:
    stack, receiver = forwarding.stack, forwarding.receiver
    forward = stack.create_alias([OUTSIDE_TARGET])
    sender, subject = _outside_sender(), unique_subject("to be bounced")
    assert deliver(stack.ports["smtp"], sender=sender, recipients=[forward], subject=subject) == {
        forward: 250
    }
    srs_address = _return_path(_arrived(receiver, subject))
    assert SRS_ADDRESS.fullmatch(srs_address), srs_address
    bounce = unique_subject("Undelivered Mail Returned to Sender")

    # The other provider's bounce: null sender, to the SRS address, at our MX.
    codes, reply = send_raw(
        stack.ports["smtp"],
        sender="",
        recipients=[srs_address],
        raw=_bounce(srs_address=srs_address, subject=bounce),
    )
    assert codes == {srs_address: 250}
    assert reply is not None and reply[0] == 250, reply

    returned = _arrived(receiver, bounce)
    # Delivered to the original sender, still with the null sender (no bounce loops).
    assert str(returned["Delivered-To"]) == sender
    assert _return_path(returned) == ""


def test_a_forged_srs_address_is_refused_at_rcpt(forwarding: Forwarding) -> None:
    """Only addresses postsrsd signed are accepted: a forged hash gets 550 in the session,
    so nobody can use the SRS domain to relay or to provoke bounces."""
    stack = forwarding.stack
    forged = f"SRS0=AAAA=ZZ=outside.example=victim@{SRS_DOMAIN}"
    with smtplib.SMTP(HOST, stack.ports["smtp"], timeout=15) as smtp:
        smtp.ehlo("mx.remote.example")
        assert smtp.mail("")[0] == 250
        code, reply = smtp.rcpt(forged)
    assert code == 550, reply


def test_dataplane_status_reports_postsrsd(forwarding: Forwarding) -> None:
    stack = forwarding.stack
    result = dataplane_cli("status", "--dir", str(stack.root), env=stack.env)
    report = json.loads(result.stdout)
    assert report["daemons"]["postsrsd"] == {
        "answers": True,
        "reads_contract": None,
        "detail": "answers",
    }, report

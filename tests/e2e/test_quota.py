"""Quota in the mail flow: Dovecot enforces it, Postfix asks Dovecot's quota-status service at
RCPT time, and the usage Dovecot counts shows in the hosting API's mailbox details."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from sqlalchemy import select

from postmeister import models as m
from postmeister.config import AddressSettings
from tests.e2e import hosting
from tests.e2e.conftest import Stack
from tests.e2e.mail import (
    compose,
    fetch_messages,
    send_raw,
    subject_is,
    unique_subject,
    wait_for_messages,
)

pytestmark = pytest.mark.e2e

SENDER = "someone@sender.example"


# Room again: the most a customer may give a mailbox (POSTMEISTER_ADDRESSES__MAX_QUOTA_BYTES);
# only an admin may make it unlimited.
ROOM = AddressSettings().max_quota_bytes


def fill(stack: Stack, box: hosting.Mailbox, *, size: int = 4000) -> str:
    """Deliver one message of about `size` bytes and wait until it is stored."""
    subject = unique_subject("filler")
    raw = compose(header_from=SENDER, to=box.address, subject=subject, body="x" * size + "\n")
    _, reply = send_raw(stack.ports["smtp"], sender=SENDER, recipients=[box.address], raw=raw)
    assert reply is not None and reply[0] == 250, reply
    assert wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(subject))
    return subject


def queued(stack: Stack) -> list[dict[str, Any]]:
    """Postfix's queue of the stack, one JSON object per message (`postqueue -j`)."""
    result = subprocess.run(
        ["postqueue", "-c", str(stack.root / "etc" / "postfix"), "-j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_usage_shows_in_the_api_within_seconds_of_a_delivery(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="usage")
    assert hosting.details(stack, box.id)["quota"]["usage"] == 0

    started = time.monotonic()
    fill(stack, box, size=5000)
    usage = 0
    while time.monotonic() - started < 10:
        usage = hosting.details(stack, box.id)["quota"]["usage"]
        if usage:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    print(
        f"\nusage {usage} bytes visible in the API {elapsed:.2f} s after sending ({stack.backend})"
    )
    assert 5000 < usage < 10000
    assert elapsed < 5
    with stack.sessions() as session:
        row = session.scalars(
            select(m.MailboxUsage).where(m.MailboxUsage.username == box.address)
        ).one()
        assert (row.bytes, row.messages) == (usage, 1)


def test_a_full_mailbox_is_refused_at_rcpt_time_with_552(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="full")
    fill(stack, box)
    hosting.set_quota(stack, box.id, 1000)

    subject = unique_subject("refused")
    raw = compose(header_from=SENDER, to=box.address, subject=subject)
    codes, reply = send_raw(stack.ports["smtp"], sender=SENDER, recipients=[box.address], raw=raw)
    assert codes == {box.address: 552}
    assert reply is None

    hosting.set_quota(stack, box.id, ROOM)
    codes, reply = send_raw(stack.ports["smtp"], sender=SENDER, recipients=[box.address], raw=raw)
    assert codes == {box.address: 250} and reply is not None and reply[0] == 250


def test_a_message_larger_than_the_space_left_is_refused_at_rcpt_time(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="space")
    hosting.set_quota(stack, box.id, 50_000)
    raw = compose(header_from=SENDER, to=box.address, subject=unique_subject("big"))

    codes, _ = send_raw(
        stack.ports["smtp"], sender=SENDER, recipients=[box.address], raw=raw, size=200_000
    )
    assert codes == {box.address: 552}
    codes, reply = send_raw(
        stack.ports["smtp"], sender=SENDER, recipients=[box.address], raw=raw, size=len(raw)
    )
    assert codes == {box.address: 250} and reply is not None and reply[0] == 250


def test_mail_to_an_alias_of_a_full_mailbox_is_deferred_not_bounced(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="target")
    sender = hosting.mailbox(stack, prefix="writer")
    fill(stack, box)
    hosting.set_quota(stack, box.id, 1000)
    _, alias = hosting.forward(stack, [box.address])
    subject = unique_subject("deferred")

    raw = compose(header_from=sender.address, to=alias, subject=subject)
    codes, reply = send_raw(stack.ports["smtp"], sender=sender.address, recipients=[alias], raw=raw)
    assert codes == {alias: 250} and reply is not None and reply[0] == 250

    deadline = time.monotonic() + 15
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        mine = [
            q
            for q in queued(stack)
            if q["sender"] == sender.address and q["queue_name"] == "deferred"
        ]
        if mine:
            break
        time.sleep(0.2)
    assert len(mine) == 1, queued(stack)
    (recipient,) = mine[0]["recipients"]
    assert recipient["address"] == box.address
    print(f"\ndeferred: {recipient['delay_reason']}")
    assert "452 4.2.2" in recipient["delay_reason"]
    # No bounce went back to the sender.
    assert fetch_messages(stack.ports["imap"], sender.address, sender.password) == []

    # Room again: the queued message is delivered on the next attempt.
    hosting.set_quota(stack, box.id, ROOM)
    subprocess.run(
        ["postqueue", "-c", str(stack.root / "etc" / "postfix"), "-i", mine[0]["queue_id"]],
        check=True,
        timeout=30,
    )
    assert wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(subject))

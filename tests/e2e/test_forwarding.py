"""Forwarding in the mail flow: a mailbox that keeps a copy and forwards, a forward that only
forwards, and targets added or removed through the hosting API taking effect at once."""

from __future__ import annotations

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import Stack
from tests.e2e.mail import (
    deliver,
    fetch_messages,
    imap_login_works,
    subject_is,
    unique_subject,
    wait_for_messages,
)

pytestmark = pytest.mark.e2e

SENDER = "someone@sender.example"


def subjects(stack: Stack, box: hosting.Mailbox) -> list[str]:
    return [
        str(m["Subject"]) for m in fetch_messages(stack.ports["imap"], box.address, box.password)
    ]


def arrives(stack: Stack, box: hosting.Mailbox, subject: str) -> bool:
    return bool(
        wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(subject))
    )


def send(stack: Stack, to: str, subject: str) -> None:
    assert deliver(stack.ports["smtp"], sender=SENDER, recipients=[to], subject=subject) == {
        to: 250
    }


def test_a_mailbox_with_forward_targets_keeps_a_copy_and_forwards(stack: Stack) -> None:
    target = hosting.mailbox(stack, prefix="target")
    keeper = hosting.mailbox(stack, prefix="keeper", forward_to=[target.address])
    subject = unique_subject("kept")

    send(stack, keeper.address, subject)

    assert arrives(stack, keeper, subject)
    assert arrives(stack, target, subject)
    assert subjects(stack, keeper).count(subject) == 1

    # Without targets it is a plain mailbox again, at once.
    hosting.patch(stack, keeper.id, {"forward_to": []})
    alone = unique_subject("alone")
    send(stack, keeper.address, alone)
    assert arrives(stack, keeper, alone)
    send(stack, target.address, barrier := unique_subject("barrier"))
    assert arrives(stack, target, barrier)
    assert alone not in subjects(stack, target)


def test_a_forward_delivers_only_to_its_targets_and_target_changes_are_live(stack: Stack) -> None:
    first = hosting.mailbox(stack, prefix="first")
    second = hosting.mailbox(stack, prefix="second")
    forward_id, forward = hosting.forward(stack, [first.address])
    before, added, removed = (unique_subject(s) for s in ("before", "added", "removed"))

    send(stack, forward, before)
    assert arrives(stack, first, before)
    # A forward stores nothing and cannot log in.
    assert not imap_login_works(stack.ports["imap"], forward, first.password)

    hosting.request(stack, "POST", f"/email-addresses/{forward_id}/forward-to/{second.address}")
    send(stack, forward, added)
    assert arrives(stack, first, added)
    assert arrives(stack, second, added)

    hosting.request(stack, "DELETE", f"/email-addresses/{forward_id}/forward-to/{first.address}")
    send(stack, forward, removed)
    assert arrives(stack, second, removed)
    send(stack, first.address, barrier := unique_subject("barrier"))
    assert arrives(stack, first, barrier)
    assert removed not in subjects(stack, first)
    assert before not in subjects(stack, second)

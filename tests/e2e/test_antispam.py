"""Spam policy in the mail flow: rspamd judges, the antispam milter applies each address's
`antispam` setting at SMTP time, Sieve files marked mail into Junk.

Spam is a GTUBE test message, which rspamd always answers with its `reject` action, offline.
"""

from __future__ import annotations

import pytest

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

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SENDER = "someone@sender.example"


def spam(to: str, subject: str) -> bytes:
    return compose(header_from=SENDER, to=to, subject=subject, body=f"Buy now!\n{GTUBE}\n")


def clean(to: str, subject: str, **extra: str) -> bytes:
    return compose(
        header_from=SENDER,
        to=to,
        subject=subject,
        body="Lunch on Thursday at noon? The usual place.\n",
        extra=extra,
    )


def send(stack: Stack, to: list[str], raw: bytes) -> tuple[dict[str, int], tuple[int, str] | None]:
    return send_raw(stack.ports["smtp"], sender=SENDER, recipients=to, raw=raw)


def test_reject_refuses_spam_at_smtp_time_and_delivers_clean_mail(stack: Stack) -> None:
    box = hosting.mailbox(stack, antispam="reject")
    ham_subject, spam_subject = unique_subject("ham"), unique_subject("spam")

    _, ham_reply = send(stack, [box.address], clean(box.address, ham_subject))
    _, spam_reply = send(stack, [box.address], spam(box.address, spam_subject))

    assert ham_reply is not None and ham_reply[0] == 250
    assert spam_reply is not None and spam_reply[0] == 550, spam_reply
    assert "spam" in spam_reply[1].lower()
    imap = stack.ports["imap"]
    assert wait_for_messages(imap, box.address, box.password, subject_is(ham_subject))
    everything = [str(m["Subject"]) for m in fetch_messages(imap, box.address, box.password)]
    everything += [
        str(m["Subject"]) for m in fetch_messages(imap, box.address, box.password, "Junk")
    ]
    assert spam_subject not in everything


def test_junk_folder_files_spam_into_junk_and_clean_mail_into_the_inbox(stack: Stack) -> None:
    box = hosting.mailbox(stack, antispam="junk-folder")
    ham_subject, spam_subject = unique_subject("ham"), unique_subject("spam")
    forged_subject = unique_subject("forged")

    for raw in (
        clean(box.address, ham_subject),
        spam(box.address, spam_subject),
        # A sender's own spam mark counts for nothing: only the milter's does.
        clean(box.address, forged_subject, **{"X-Spam": "Yes"}),
    ):
        _, reply = send(stack, [box.address], raw)
        assert reply is not None and reply[0] == 250, reply

    imap = stack.ports["imap"]
    junk = wait_for_messages(
        imap, box.address, box.password, subject_is(spam_subject), mailbox="Junk"
    )
    assert len(junk) == 1 and junk[0]["X-Spam"] == "Yes"
    inbox = wait_for_messages(
        imap,
        box.address,
        box.password,
        lambda m: str(m["Subject"]) in (ham_subject, forged_subject),
        count=2,
    )
    assert sorted(str(m["Subject"]) for m in inbox) == sorted([ham_subject, forged_subject])
    assert all(m["X-Spam"] is None for m in inbox)
    assert spam_subject not in [
        str(m["Subject"]) for m in fetch_messages(imap, box.address, box.password)
    ]


def test_subject_rewrite_marks_the_subject_of_spam_only(stack: Stack) -> None:
    box = hosting.mailbox(stack, antispam="subject-rewrite")
    ham_subject, spam_subject = unique_subject("ham"), unique_subject("spam")

    for raw in (clean(box.address, ham_subject), spam(box.address, spam_subject)):
        _, reply = send(stack, [box.address], raw)
        assert reply is not None and reply[0] == 250, reply

    inbox = wait_for_messages(
        stack.ports["imap"],
        box.address,
        box.password,
        lambda m: ham_subject in str(m["Subject"]) or spam_subject in str(m["Subject"]),
        count=2,
    )
    subjects = sorted(str(m["Subject"]) for m in inbox)
    assert subjects == sorted([ham_subject, f"[SPAM] {spam_subject}"])
    marked = next(m for m in inbox if spam_subject in str(m["Subject"]))
    assert marked["X-Spam"] == "Yes"


def test_none_delivers_spam_untouched(stack: Stack) -> None:
    box = hosting.mailbox(stack, antispam="none")
    ham_subject, spam_subject = unique_subject("ham"), unique_subject("spam")

    for raw in (clean(box.address, ham_subject), spam(box.address, spam_subject)):
        _, reply = send(stack, [box.address], raw)
        assert reply is not None and reply[0] == 250, reply

    inbox = wait_for_messages(
        stack.ports["imap"],
        box.address,
        box.password,
        lambda m: str(m["Subject"]) in (ham_subject, spam_subject),
        count=2,
    )
    assert sorted(str(m["Subject"]) for m in inbox) == sorted([ham_subject, spam_subject])
    assert all(m["X-Spam"] is None for m in inbox)
    received = next(m for m in inbox if str(m["Subject"]) == spam_subject)
    assert GTUBE in received.get_content()


def test_recipients_of_different_policies_are_handled_in_separate_transactions(
    stack: Stack,
) -> None:
    """One policy per transaction: the second policy's recipient is deferred with 452 at
    RCPT time (the sender delivers it separately), so each gets exactly its own policy."""
    strict = hosting.mailbox(stack, antispam="reject")
    relaxed = hosting.mailbox(stack, antispam="none")
    subject = unique_subject("mixed")

    codes, reply = send(stack, [strict.address, relaxed.address], spam(strict.address, subject))
    assert codes == {strict.address: 250, relaxed.address: 452}
    assert reply is not None and reply[0] == 550

    # What the sending server does with the deferred recipient: a transaction of its own.
    codes, reply = send(stack, [relaxed.address], spam(relaxed.address, subject))
    assert codes == {relaxed.address: 250}
    assert reply is not None and reply[0] == 250
    imap = stack.ports["imap"]
    assert wait_for_messages(imap, relaxed.address, relaxed.password, subject_is(subject))
    assert fetch_messages(imap, strict.address, strict.password) == []


def test_a_changed_policy_counts_for_the_next_message(stack: Stack) -> None:
    box = hosting.mailbox(stack, antispam="reject")
    first, second = unique_subject("first"), unique_subject("second")
    _, reply = send(stack, [box.address], spam(box.address, first))
    assert reply is not None and reply[0] == 550

    hosting.patch(stack, box.id, {"antispam": "junk-folder"})

    _, reply = send(stack, [box.address], spam(box.address, second))
    assert reply is not None and reply[0] == 250
    assert wait_for_messages(
        stack.ports["imap"], box.address, box.password, subject_is(second), mailbox="Junk"
    )

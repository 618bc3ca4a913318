"""Every account and alias feature of the controller API, seen by real SMTP and IMAP clients."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack, strong_password, unique
from tests.e2e.mail import (
    deliver,
    imap_login_works,
    imap_subjects,
    submit,
    unique_subject,
    wait_for_subject,
)

pytestmark = pytest.mark.e2e


def test_mailbox_receives_mail_and_its_owner_reads_it_over_imap(stack: Stack) -> None:
    account = stack.create_account()
    subject = unique_subject("welcome")

    codes = deliver(
        stack.ports["smtp"], sender="friend@sender.example", recipients=[account.address],
        subject=subject,
    )  # fmt: skip

    assert codes == {account.address: 250}
    assert wait_for_subject(stack.ports["imap"], account.address, account.password, subject)


def test_login_name_is_case_insensitive(stack: Stack) -> None:
    account = stack.create_account()
    assert imap_login_works(stack.ports["imap"], account.address.upper(), account.password)


def test_new_password_works_and_old_one_fails_at_once(stack: Stack) -> None:
    account = stack.create_account()
    assert imap_login_works(stack.ports["imap"], account.address, account.password)
    new_password = strong_password(account.address)

    stack.call("POST", f"/mail/account/{account.address}/set_password/", password=new_password)

    assert not imap_login_works(stack.ports["imap"], account.address, account.password)
    assert imap_login_works(stack.ports["imap"], account.address, new_password)
    refused = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from=account.address, to=account.address,
    )  # fmt: skip
    assert refused.stage == "auth"
    assert refused.code == 535


def test_deleted_account_can_no_longer_log_in_nor_receive(stack: Stack) -> None:
    account = stack.create_account()
    assert imap_login_works(stack.ports["imap"], account.address, account.password)

    stack.call("DELETE", f"/mail/account/{account.address}/")

    assert not imap_login_works(stack.ports["imap"], account.address, account.password)
    codes = deliver(
        stack.ports["smtp"], sender="friend@sender.example", recipients=[account.address],
        subject="too late",
    )  # fmt: skip
    assert codes == {account.address: 550}


def test_alias_delivers_to_every_recipient(stack: Stack) -> None:
    first, second = stack.create_account(), stack.create_account()
    alias = stack.create_alias([first.address, second.address])
    subject = unique_subject("to the team")

    codes = deliver(
        stack.ports["smtp"], sender="customer@sender.example", recipients=[alias], subject=subject
    )

    assert codes == {alias: 250}
    for account in (first, second):
        assert wait_for_subject(stack.ports["imap"], account.address, account.password, subject)


def test_changed_alias_targets_apply_to_the_next_message(stack: Stack) -> None:
    first, second = stack.create_account(), stack.create_account()
    alias = stack.create_alias([first.address])

    stack.call("PUT", f"/mail/alias/{alias}/", to=second.address)
    subject = unique_subject("after the change")
    deliver(stack.ports["smtp"], sender="c@sender.example", recipients=[alias], subject=subject)

    assert wait_for_subject(stack.ports["imap"], second.address, second.password, subject)
    assert subject not in imap_subjects(stack.ports["imap"], first.address, first.password)


def test_unknown_and_deleted_addresses_of_a_hosted_domain_get_550_at_rcpt(stack: Stack) -> None:
    alias = stack.create_alias([stack.create_account().address])
    stack.call("DELETE", f"/mail/alias/{alias}/")
    unknown = f"{unique('nobody')}@{stack.domain}"

    codes = deliver(
        stack.ports["smtp"], sender="spammer@sender.example", recipients=[unknown, alias],
        subject="anyone there?",
    )  # fmt: skip

    assert codes == {unknown: 550, alias: 550}


def test_mail_for_foreign_domains_is_not_relayed(stack: Stack) -> None:
    codes = deliver(
        stack.ports["smtp"], sender="spammer@sender.example",
        recipients=["victim@elsewhere.example"], subject="relay?",
    )  # fmt: skip
    assert codes["victim@elsewhere.example"] >= 500


def test_account_sends_as_its_own_address(stack: Stack) -> None:
    sender, receiver = stack.create_account(), stack.create_account()
    subject = unique_subject("submitted")

    result = submit(
        stack.ports["submission"], login=sender.address, password=sender.password,
        envelope_from=sender.address, header_from=f"Me <{sender.address}>",
        to=receiver.address, subject=subject,
    )  # fmt: skip

    assert result.sent, result
    assert wait_for_subject(stack.ports["imap"], receiver.address, receiver.password, subject)


def test_submission_requires_authentication(stack: Stack) -> None:
    receiver = stack.create_account()
    result = submit(
        stack.ports["submission"], login=None, password="",
        envelope_from=receiver.address, header_from=receiver.address, to=receiver.address,
    )  # fmt: skip
    assert not result.sent
    assert result.code >= 500


@pytest.mark.parametrize(
    ("whitelist", "sender_local", "sender_domain", "allowed"),
    [
        ("", "other", "OWN", False),
        ("EXACT", "exact", "OWN", True),
        ("EXACT", "other", "OWN", False),
        ("partner.example", "anyone", "partner.example", True),
        ("partner.example", "anyone", "sub.partner.example", False),
        ("partner.example", "anyone", "other.example", False),
        ("*", "anyone", "anywhere.example", True),
    ],
)
def test_spoofing_whitelist_decides_envelope_and_header_sender(
    stack: Stack, whitelist: str, sender_local: str, sender_domain: str, allowed: bool
) -> None:
    domain = stack.domain if sender_domain == "OWN" else sender_domain
    exact = f"exact-{unique('x')}@{stack.domain}"
    whitelist = whitelist.replace("EXACT", exact)
    sender = exact if sender_local == "exact" else f"{sender_local}@{domain}"
    account, receiver = stack.create_account(whitelist=whitelist), stack.create_account()

    result = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=sender, header_from=sender, to=receiver.address,
    )  # fmt: skip

    if allowed:
        assert result.sent, result
    else:
        assert (result.stage, result.code) == ("rcpt", 553), result
        assert "not owned by user" in result.text


@pytest.mark.parametrize(
    "header_from",
    [
        "someone@partner.example",
        '"OWN" <someone@partner.example>',
        "OWN, someone@partner.example",
    ],
)
def test_header_from_is_checked_even_when_the_envelope_is_allowed(
    stack: Stack, header_from: str
) -> None:
    account, receiver = stack.create_account(), stack.create_account()
    subject = unique_subject("spoofed header")

    result = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from=header_from.replace("OWN", account.address),
        to=receiver.address, subject=subject,
    )  # fmt: skip

    assert (result.stage, result.code) == ("data", 550), result
    assert "Header From <someone@partner.example> is not permitted" in result.text
    time.sleep(0.5)
    assert subject not in imap_subjects(stack.ports["imap"], receiver.address, receiver.password)


def test_header_from_follows_the_whitelist(stack: Stack) -> None:
    account, receiver = stack.create_account(), stack.create_account()
    stack.call(
        "POST", f"/mail/account/{account.address}/set_spoofing_whitelist/",
        spoofing_whitelist="partner.example",
    )  # fmt: skip
    result = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from="Team <team@partner.example>",
        to=receiver.address,
    )  # fmt: skip
    assert result.sent, result


def test_disabled_submission_refuses_sending_but_mail_still_arrives_and_reads(
    stack: Stack,
) -> None:
    account, receiver = stack.create_account(), stack.create_account()

    stack.call("POST", f"/mail/account/{account.address}/disable_submission/")

    refused = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from=account.address, to=receiver.address,
    )  # fmt: skip
    assert (refused.stage, refused.code) == ("rcpt", 554), refused
    assert "Sending is disabled for this account" in refused.text
    subject = unique_subject("still receiving")
    deliver(
        stack.ports["smtp"], sender="f@sender.example", recipients=[account.address],
        subject=subject,
    )  # fmt: skip
    assert wait_for_subject(stack.ports["imap"], account.address, account.password, subject)

    stack.call("POST", f"/mail/account/{account.address}/enable_submission/")

    sent = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from=account.address, to=receiver.address,
    )  # fmt: skip
    assert sent.sent, sent


def test_account_created_disabled_cannot_send(stack: Stack) -> None:
    account, receiver = stack.create_account(disabled=True), stack.create_account()
    refused = submit(
        stack.ports["submission"], login=account.address, password=account.password,
        envelope_from=account.address, header_from=account.address, to=receiver.address,
    )  # fmt: skip
    assert (refused.stage, refused.code) == ("rcpt", 554), refused

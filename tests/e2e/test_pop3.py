"""POP3 from real clients (Python's poplib): the same logins as IMAP (the mailbox password and
application passwords, each revoked on the very next login), on the plain port after STLS
and on the POP3S port with implicit TLS; DELE removes the message from the Maildir IMAP reads
and the quota usage the API shows."""

from __future__ import annotations

import poplib
import socket
import time
from collections.abc import Callable

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import Stack, strong_password
from tests.e2e.mail import (
    HOST,
    TLS,
    deliver,
    imap_login_works,
    imap_subjects,
    pop3_connect,
    pop3_delete,
    pop3_login_works,
    pop3_subjects,
    unique_subject,
    wait_for_subject,
)

pytestmark = pytest.mark.e2e

SENDER = "friend@sender.example"
# Another loopback address is another client to Dovecot: neither local nor a trusted network,
# so it is treated like a client on the internet.
REMOTE_CLIENT = "127.0.5.1"


def delivered(stack: Stack, box: hosting.Mailbox, prefix: str) -> str:
    """Deliver one message over SMTP and wait until it is stored; its subject."""
    subject = unique_subject(prefix)
    accepted = deliver(
        stack.ports["smtp"], sender=SENDER, recipients=[box.address], subject=subject
    )
    assert accepted == {box.address: 250}
    assert wait_for_subject(stack.ports["imap"], box.address, box.password, subject)
    return subject


def logins(stack: Stack, user: str, password: str) -> tuple[bool, bool]:
    """Whether `password` logs in over POP3 with STLS and over POP3S."""
    return (
        pop3_login_works(stack.ports["pop3"], user, password),
        pop3_login_works(stack.ports["pop3s"], user, password, implicit_tls=True),
    )


def test_mail_delivered_over_smtp_is_read_over_pop3_with_the_password_and_an_app_password(
    stack: Stack,
) -> None:
    box = hosting.mailbox(stack, prefix="pop")
    _, phone = hosting.app_password(stack, box, "Telefon")
    subject = delivered(stack, box, "pop3")

    for secret in (box.password, phone):
        assert pop3_subjects(stack.ports["pop3"], box.address, secret) == [subject]
        assert pop3_subjects(stack.ports["pop3s"], box.address, secret, implicit_tls=True) == [
            subject
        ]
    # Reading over POP3 leaves the message on the server.
    assert subject in imap_subjects(stack.ports["imap"], box.address, box.password)


def test_a_wrong_password_is_refused_and_an_app_password_is_bound_to_its_mailbox(
    stack: Stack,
) -> None:
    box = hosting.mailbox(stack, prefix="popwrong")
    other = hosting.mailbox(stack, prefix="popother")
    _, phone = hosting.app_password(stack, box, "Telefon")

    assert logins(stack, box.address, box.password + "x") == (False, False)
    assert not pop3_login_works(stack.ports["pop3"], other.address, phone)
    assert logins(stack, box.address, box.password) == (True, True)


def test_after_a_password_change_the_old_password_fails_at_once(stack: Stack) -> None:
    account = stack.create_account()
    assert logins(stack, account.address, account.password) == (True, True)
    new_password = strong_password(account.address)

    stack.call("POST", f"/mail/account/{account.address}/set_password/", password=new_password)

    assert logins(stack, account.address, account.password) == (False, False)
    assert logins(stack, account.address, new_password) == (True, True)


def test_a_deleted_app_password_fails_at_once_and_the_others_keep_working(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="popapps")
    phone_id, phone = hosting.app_password(stack, box, "Telefon")
    _, laptop = hosting.app_password(stack, box, "Laptop")
    assert logins(stack, box.address, phone) == (True, True)

    hosting.revoke_app_password(stack, box, phone_id)

    assert logins(stack, box.address, phone) == (False, False)
    assert logins(stack, box.address, laptop) == (True, True)
    assert logins(stack, box.address, box.password) == (True, True)


def test_a_suspended_customers_mailbox_cannot_log_in_over_pop3(stack: Stack) -> None:
    customer = hosting.customer(stack, prefix="popsuspend")
    address = f"box@{customer.domain}"
    password = strong_password(address)
    created = hosting.request_as(
        stack, customer.token, "POST", "/email-addresses",
        {"data": {"type": "email-address", "attributes": {
            "address": address, "address_type": "mailbox", "password": password,
        }}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert logins(stack, address, password) == (True, True)

    hosting.suspend(stack, customer)

    assert logins(stack, address, password) == (False, False)

    hosting.suspend(stack, customer, suspended=False)

    assert logins(stack, address, password) == (True, True)


def usage_once(
    stack: Stack, box: hosting.Mailbox, settled: Callable[[int], bool], timeout: float = 10.0
) -> int:
    """The quota usage the API shows, once `settled(usage)` holds (Dovecot copies it over)."""
    deadline = time.monotonic() + timeout
    while True:
        usage: int = hosting.details(stack, box.id)["quota"]["usage"]
        if settled(usage) or time.monotonic() > deadline:
            return usage
        time.sleep(0.1)


def test_dele_and_quit_remove_the_message_for_imap_and_from_the_quota_usage(
    stack: Stack,
) -> None:
    box = hosting.mailbox(stack, prefix="popdele")
    kept = delivered(stack, box, "kept")
    deleted = delivered(stack, box, "deleted")
    before = usage_once(stack, box, lambda usage: usage > 0)
    assert before > 0

    assert pop3_delete(stack.ports["pop3"], box.address, box.password, deleted)

    assert imap_subjects(stack.ports["imap"], box.address, box.password) == [kept]
    assert pop3_subjects(stack.ports["pop3"], box.address, box.password) == [kept]
    after = usage_once(stack, box, lambda usage: usage < before)
    assert 0 < after < before


def imap_greeting_from(address: str, port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=15, source_address=(address, 0)) as sock:
        return sock.makefile("rb").readline(1024)


def test_plaintext_login_before_stls_is_refused_as_on_imap(stack: Stack) -> None:
    box = hosting.mailbox(stack, prefix="popplain")
    # IMAP tells such a client that LOGIN is disabled until STARTTLS ...
    assert b"LOGINDISABLED" in imap_greeting_from(REMOTE_CLIENT, stack.ports["imap"])
    # ... and POP3 refuses USER the same way, before the password is even sent.
    pop = pop3_connect(stack.ports["pop3"], source=REMOTE_CLIENT)
    try:
        with pytest.raises(poplib.error_proto, match=r"Plaintext authentication disallowed"):
            pop.user(box.address)
        pop.stls(context=TLS)
        pop.user(box.address)
        assert pop.pass_(box.password).startswith(b"+OK")
        pop.quit()
    finally:
        pop.close()
    assert imap_login_works(stack.ports["imap"], box.address, box.password)

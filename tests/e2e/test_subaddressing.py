"""Subaddressing in the real mail flow (issue 11, items 3 and 4).

With `subaddress_extension` on, mail to `name+anything@domain` is delivered to the mailbox
`name@domain` (and follows its forwards); off, it is refused at RCPT like any unknown
address; the switch is live on the next message. The extended address counts for nothing
else: it cannot log in and its owner cannot send as it. An address that exists itself always
gets its own mail. A document shaped like the hosting panel's export sets the switch and a
spoofing whitelist through sync, and both take effect.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from postmeister.db import unit_of_work
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.sync.service import sync_document
from tests.e2e import hosting
from tests.e2e.conftest import Account, Stack, strong_password, unique
from tests.e2e.mail import (
    deliver,
    imap_login_works,
    subject_is,
    submit,
    unique_subject,
    wait_for_messages,
)
from tests.support.factories import make_tenant

pytestmark = pytest.mark.e2e

SENDER = "someone@sender.example"


def account(stack: Stack, local: str | None = None, **extra: Any) -> Account:
    """A new account of the stack's customer through the controller API."""
    local = local or unique("sub")
    password = strong_password(f"{local}@{stack.domain}")
    body = {"name": local, "domain": stack.domain, "password": password, **extra}
    response = stack.api.post("/mail/account/", json=body, headers=stack.tenant.auth)
    assert response.status_code == 201, response.text
    return Account(f"{local}@{stack.domain}", password)


def tagged(address: str, tag: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{tag}@{domain}"


def rcpt_code(stack: Stack, to: str, subject: str = "probe") -> int:
    return deliver(stack.ports["smtp"], sender=SENDER, recipients=[to], subject=subject)[to]


def arrives(stack: Stack, box: Account, subject: str) -> bool:
    found = wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(subject))
    return bool(found)


def test_the_switch_decides_at_rcpt_and_is_live_on_the_next_message(stack: Stack) -> None:
    box = account(stack)
    assert rcpt_code(stack, tagged(box.address, "news")) == 550

    switched = stack.call("POST", f"/mail/account/{box.address}/enable_subaddress/")
    assert switched.json()["subaddress_extension"] is True
    subject = unique_subject("tagged")
    assert rcpt_code(stack, tagged(box.address, "news"), subject) == 250
    assert arrives(stack, box, subject)
    # Any tag, and a tag that itself holds a '+': the mailbox is the part before the first.
    deeper = unique_subject("deeper")
    assert rcpt_code(stack, tagged(box.address, "a+b"), deeper) == 250
    assert arrives(stack, box, deeper)

    stack.call("POST", f"/mail/account/{box.address}/disable_subaddress/")
    assert rcpt_code(stack, tagged(box.address, "news")) == 550
    # The plain address is never affected.
    plain = unique_subject("plain")
    assert rcpt_code(stack, box.address, plain) == 250
    assert arrives(stack, box, plain)


def test_the_extended_address_counts_for_nothing_else(stack: Stack) -> None:
    box = account(stack, subaddress_extension=True)
    other = account(stack)
    extended = tagged(box.address, "shop")
    assert not imap_login_works(stack.ports["imap"], extended, box.password)
    assert imap_login_works(stack.ports["imap"], box.address, box.password)
    # The owner cannot send as the extended address (envelope check at MAIL FROM).
    attempt = submit(
        stack.ports["submission"],
        login=box.address,
        password=box.password,
        envelope_from=extended,
        header_from=extended,
        to=other.address,
    )
    assert not attempt.sent, attempt
    assert attempt.stage in ("mail", "rcpt") and attempt.code == 553, attempt
    sent = submit(
        stack.ports["submission"],
        login=box.address,
        password=box.password,
        envelope_from=box.address,
        header_from=box.address,
        to=other.address,
        subject=(subject := unique_subject("own")),
    )
    assert sent.sent, sent
    assert arrives(stack, other, subject)


def test_an_address_that_exists_gets_its_own_mail(stack: Stack) -> None:
    box = account(stack, subaddress_extension=True)
    local, _, _ = box.address.partition("@")
    exact = account(stack, f"{local}+exact")
    subject = unique_subject("exact")
    assert rcpt_code(stack, exact.address, subject) == 250
    assert arrives(stack, exact, subject)
    barrier = unique_subject("barrier")
    assert rcpt_code(stack, tagged(box.address, "other"), barrier) == 250
    assert arrives(stack, box, barrier)
    # box got the message for its other tag but not the one for the existing address.
    subjects = [
        str(m["Subject"])
        for m in wait_for_messages(stack.ports["imap"], box.address, box.password, lambda _: True)
    ]
    assert barrier in subjects and subject not in subjects


def test_a_tagged_message_follows_the_mailboxs_forwards(stack: Stack) -> None:
    target = hosting.mailbox(stack, prefix="target")
    keeper = hosting.mailbox(
        stack, prefix="keeper", forward_to=[target.address], subaddress_extension=True
    )
    subject = unique_subject("forwarded tag")
    to = tagged(keeper.address, "list")
    assert deliver(stack.ports["smtp"], sender=SENDER, recipients=[to], subject=subject) == {
        to: 250
    }
    for box in (keeper, target):
        found = wait_for_messages(
            stack.ports["imap"], box.address, box.password, subject_is(subject)
        )
        assert found, box.address


def test_a_panel_document_sets_whitelist_and_subaddressing_in_the_mail_flow(stack: Stack) -> None:
    domain = f"{unique('panel')}.example"
    tenant = make_tenant(stack.sessions, name=unique("Panel customer "), domain=domain)
    hashing = PasswordHashing(stack.settings.passwords)
    alice = Account(f"alice@{domain}", strong_password(f"alice@{domain}"))
    bob = Account(f"bob@{domain}", strong_password(f"bob@{domain}"))
    document = {
        domain: {
            "account": [
                {
                    "name": "alice",
                    "password": hashing.hash(alice.password),
                    "spoofing_whitelist": domain,
                    "subaddress_extension": True,
                },
                {
                    "name": "bob",
                    "password": hashing.hash(bob.password),
                    "spoofing_whitelist": "",
                    "subaddress_extension": False,
                },
            ]
        }
    }
    with unit_of_work(stack.sessions) as session:
        outcome = sync_document(
            session,
            customer_id=tenant.customer_id,
            raw=json.dumps(document).encode(),
            settings=stack.settings.sync,
        )
    assert outcome.result == "applied", outcome.errors

    subject = unique_subject("panel tag")
    assert rcpt_code(stack, f"alice+orders@{domain}", subject) == 250
    assert arrives(stack, alice, subject)
    assert rcpt_code(stack, f"bob+orders@{domain}") == 550

    # alice's whitelist names the whole domain: she may send as any address of it; bob not.
    office = f"office@{domain}"
    as_office = unique_subject("as office")
    sent = submit(
        stack.ports["submission"],
        login=alice.address,
        password=alice.password,
        envelope_from=office,
        header_from=office,
        to=bob.address,
        subject=as_office,
    )
    assert sent.sent, sent
    assert arrives(stack, bob, as_office)
    refused = submit(
        stack.ports["submission"],
        login=bob.address,
        password=bob.password,
        envelope_from=office,
        header_from=office,
        to=alice.address,
    )
    assert refused.stage in ("mail", "rcpt") and refused.code == 553, refused

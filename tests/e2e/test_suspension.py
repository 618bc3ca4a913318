"""A customer suspended through `/customers`, seen by real clients: its mailboxes can neither
log in over IMAP nor send through submission, its API token is refused, mail for it is still
accepted and stored; after unsuspending, everything works again."""

from __future__ import annotations

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import Stack, strong_password
from tests.e2e.mail import deliver, imap_login_works, submit, unique_subject, wait_for_subject

pytestmark = pytest.mark.e2e


def test_a_suspended_customer_receives_mail_but_cannot_log_in_send_or_use_its_token(
    stack: Stack,
) -> None:
    customer = hosting.customer(stack, prefix="suspend")
    token = customer.token
    address = f"box@{customer.domain}"
    password = strong_password(address)
    box = hosting.request_as(
        stack, token, "POST", "/email-addresses",
        {"data": {"type": "email-address", "attributes": {
            "address": address, "address_type": "mailbox", "password": password,
        }}},
    )  # fmt: skip
    assert box.status_code == 201, box.text
    imap, smtp, submission = stack.ports["imap"], stack.ports["smtp"], stack.ports["submission"]

    def sends() -> tuple[str, int]:
        result = submit(
            submission, login=address, password=password,
            envelope_from=address, header_from=address, to=address,
        )  # fmt: skip
        return result.stage, result.code

    assert imap_login_works(imap, address, password)
    assert sends() == ("sent", 250)

    hosting.suspend(stack, customer)

    assert not imap_login_works(imap, address, password)
    assert sends() == ("auth", 535)
    assert hosting.request_as(stack, token, "GET", "/email-addresses").status_code == 401
    subject = unique_subject("while-suspended")
    accepted = deliver(smtp, sender="friend@sender.example", recipients=[address], subject=subject)
    assert accepted == {address: 250}

    hosting.suspend(stack, customer, suspended=False)

    assert imap_login_works(imap, address, password)
    assert wait_for_subject(imap, address, password, subject)
    assert sends() == ("sent", 250)
    assert hosting.request_as(stack, token, "GET", "/email-addresses").status_code == 200

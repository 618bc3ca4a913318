"""A customer suspended through `/customers`, seen by real clients: its mailboxes can neither
log in over IMAP nor send through submission, its API token is refused, mail for it is still
accepted and stored; after unsuspending, everything works again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postmeister.db import unit_of_work
from postmeister.domain.domains.service import add_domain
from tests.e2e.conftest import Stack, strong_password, unique
from tests.e2e.mail import deliver, imap_login_works, submit, unique_subject, wait_for_subject
from tests.support.factories import make_token

pytestmark = pytest.mark.e2e
JSONAPI = "application/vnd.api+json"


def call(stack: Stack, token: str, method: str, path: str, document: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI, "Content-Type": JSONAPI}
    response: httpx.Response = stack.api.request(method, path, json=document, headers=headers)
    return response


def test_a_suspended_customer_receives_mail_but_cannot_log_in_send_or_use_its_token(
    stack: Stack,
) -> None:
    admin = make_token(stack.sessions, admin=True)
    name = unique("suspend")
    created = call(
        stack, admin, "POST", "/customers",
        {"data": {"type": "customer", "attributes": {"name": name}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    customer_id = int(created.json()["data"]["id"])
    domain = f"{name}.e2e.example"
    with unit_of_work(stack.sessions) as session:
        add_domain(session, customer_id=customer_id, name=domain)
    issued = call(
        stack, admin, "POST", "/api-tokens",
        {"data": {"type": "api-token", "attributes": {"customer_id": customer_id}}},
    )  # fmt: skip
    token = issued.json()["data"]["attributes"]["token"]
    address = f"box@{domain}"
    password = strong_password(address)
    box = call(
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

    customer = f"/customers/{customer_id}"
    suspend = {"data": {"type": "customer", "id": str(customer_id), "attributes": {}}}
    suspend["data"]["attributes"] = {"suspended": True}
    assert call(stack, admin, "PATCH", customer, suspend).status_code == 200

    assert not imap_login_works(imap, address, password)
    assert sends() == ("auth", 535)
    assert call(stack, token, "GET", "/email-addresses").status_code == 401
    subject = unique_subject("while-suspended")
    accepted = deliver(smtp, sender="friend@sender.example", recipients=[address], subject=subject)
    assert accepted == {address: 250}

    suspend["data"]["attributes"] = {"suspended": False}
    assert call(stack, admin, "PATCH", customer, suspend).status_code == 200

    assert imap_login_works(imap, address, password)
    assert wait_for_subject(imap, address, password, subject)
    assert sends() == ("sent", 250)
    assert call(stack, token, "GET", "/email-addresses").status_code == 200

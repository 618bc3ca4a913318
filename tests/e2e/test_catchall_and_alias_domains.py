"""Catch-all and alias domains in the real mail flow (issue 12): set through `/domains`, live
on the next message, and an existing address always keeps its own mail.

Each test adds its own domains (the stack's domain is shared by the whole session, and a
catch-all there would accept what other tests expect to be refused)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import hosting
from tests.e2e.conftest import Stack, unique
from tests.e2e.mail import deliver, fetch_messages, subject_is, unique_subject, wait_for_messages
from tests.support.factories import make_token

pytestmark = pytest.mark.e2e

SENDER = "someone@sender.example"


def admin(stack: Stack) -> dict[str, str]:
    token = make_token(stack.sessions, admin=True)
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": hosting.JSONAPI,
        "Accept": hosting.JSONAPI,
    }


def add_domain(stack: Stack, auth: dict[str, str], **attributes: Any) -> tuple[str, str]:
    name = f"{unique('dom')}.e2e.example"
    document = {
        "data": {
            "type": "domain",
            "attributes": {"name": name, "customer_id": stack.tenant.customer_id, **attributes},
        }
    }
    response = stack.api.post("/domains", json=document, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"], name


def change_domain(stack: Stack, auth: dict[str, str], key: str, **attributes: Any) -> None:
    document = {"data": {"type": "domain", "id": key, "attributes": attributes}}
    response = stack.api.patch(f"/domains/{key}", json=document, headers=auth)
    assert response.status_code == 200, response.text


def address(stack: Stack, local: str, domain: str, **attributes: Any) -> hosting.Mailbox:
    """A mailbox (or, with address_type=forward, a forward) of the customer at `domain`."""
    document = {
        "data": {
            "type": "email-address",
            "attributes": {
                "address": f"{unique(local)}@{domain}",
                "address_type": attributes.pop("address_type", "mailbox"),
                **attributes,
            },
        }
    }
    data = hosting.request(stack, "POST", "/email-addresses", document).json()["data"]
    found = data["attributes"]
    return hosting.Mailbox(data["id"], found["address"], found.get("password") or "")


def rcpt(stack: Stack, to: str, subject: str) -> int:
    return deliver(stack.ports["smtp"], sender=SENDER, recipients=[to], subject=subject)[to]


def arrives(stack: Stack, box: hosting.Mailbox, subject: str) -> bool:
    return bool(
        wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(subject))
    )


def subjects(stack: Stack, box: hosting.Mailbox) -> list[str]:
    return [
        str(m["Subject"]) for m in fetch_messages(stack.ports["imap"], box.address, box.password)
    ]


def test_a_catchall_takes_unknown_local_parts_and_existing_addresses_keep_theirs(
    stack: Stack,
) -> None:
    auth = admin(stack)
    key, domain = add_domain(stack, auth)
    keeper = address(stack, "keeper", domain)
    catcher = address(stack, "catcher", domain)
    unknown = f"nobody-{unique('x')}@{domain}"
    assert rcpt(stack, unknown, unique_subject("before")) == 550

    # The customer sets its own domain's catch-all: live on the next message.
    change_domain(
        stack,
        stack.tenant.auth | {"Content-Type": hosting.JSONAPI},
        key,
        catchall=[catcher.address],
    )
    caught, own = unique_subject("caught"), unique_subject("own")
    assert rcpt(stack, unknown, caught) == 250
    assert rcpt(stack, keeper.address, own) == 250
    assert arrives(stack, catcher, caught)
    assert arrives(stack, keeper, own)
    barrier = unique_subject("barrier")
    assert rcpt(stack, f"other-{unique('y')}@{domain}", barrier) == 250
    assert arrives(stack, catcher, barrier)
    assert own not in subjects(stack, catcher)
    assert caught not in subjects(stack, keeper)

    # Switched off: the next message to an unknown local part is refused at RCPT again.
    change_domain(stack, auth, key, catchall=[])
    assert rcpt(stack, unknown, unique_subject("after")) == 550
    still = unique_subject("still")
    assert rcpt(stack, keeper.address, still) == 250
    assert arrives(stack, keeper, still)


def test_an_alias_domain_delivers_where_the_main_domain_delivers(stack: Stack) -> None:
    auth = admin(stack)
    _, main = add_domain(stack, auth)
    alias_key, alias = add_domain(stack, auth, alias_of=main)
    box = address(stack, "box", main)
    target = address(stack, "target", main)
    office = address(stack, "office", main, address_type="forward", forward_to=[target.address])

    def at_alias(found: hosting.Mailbox) -> str:
        return found.address.replace(f"@{main}", f"@{alias}")

    to_box, to_office = unique_subject("alias-box"), unique_subject("alias-office")
    assert rcpt(stack, at_alias(box), to_box) == 250
    assert rcpt(stack, at_alias(office), to_office) == 250
    assert arrives(stack, box, to_box)
    assert arrives(stack, target, to_office)
    # An unknown local part at the alias domain is refused like one at the main domain.
    assert rcpt(stack, f"nobody-{unique('x')}@{alias}", unique_subject("unknown")) == 550

    # The main domain's catch-all also takes the alias domain's unknown local parts.
    main_key = next(
        item["id"]
        for item in stack.api.get("/domains", params={"filter[name]": main}, headers=auth).json()[
            "data"
        ]
    )
    change_domain(stack, auth, main_key, catchall=[box.address])
    caught = unique_subject("alias-caught")
    assert rcpt(stack, f"nobody-{unique('x')}@{alias}", caught) == 250
    assert arrives(stack, box, caught)
    change_domain(stack, auth, main_key, catchall=[])

    # No longer an alias domain: the next message to it is refused.
    change_domain(stack, auth, alias_key, alias_of=None)
    assert rcpt(stack, at_alias(box), unique_subject("ended")) == 550

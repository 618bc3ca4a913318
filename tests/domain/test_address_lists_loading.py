"""An address's two lists come with the statement that finds it (`addresses.loading`).

They must be the same lists, in the same order, that the rows hold, and behave like lists
the ORM loaded itself: replacing one in a later change stores exactly the new list (rows
updated, added and removed), and a list changed earlier in the same transaction is not
overwritten by a later read.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.service import (
    AddressChanges,
    NewAddress,
    create_address,
    get_address,
    list_addresses,
    update_address,
)
from postmeister.domain.passwords.service import Passwords
from postmeister.models import ForwardTarget, SenderPermission
from tests.conftest import fast_password_settings
from tests.support.factories import STRONG_PASSWORD, make_tenant

PASSWORDS = Passwords(fast_password_settings())
# Twelve, so that position 10 must follow 9 (not 1, as text sorting would put it).
TARGETS = [f"to{n}@elsewhere.example" for n in range(12)]
WHITELIST = ["other.example", "boss@other.example", "*"]


def stored(session: Session, address_id: int) -> tuple[list[str], list[str]]:
    targets = session.scalars(
        select(ForwardTarget.target)
        .where(ForwardTarget.address_id == address_id)
        .order_by(ForwardTarget.position)
    ).all()
    patterns = session.scalars(
        select(SenderPermission.pattern)
        .where(SenderPermission.address_id == address_id)
        .order_by(SenderPermission.position)
    ).all()
    return list(targets), list(patterns)


def test_lists_load_in_order_and_change_like_orm_lists(sessions: sessionmaker[Session]) -> None:
    tenant = make_tenant(sessions, name="Lists GmbH", domain="lists.example")
    actor = Actor.for_customer(tenant.customer_id)
    with unit_of_work(sessions) as session:
        new = NewAddress(
            local_part="anna",
            domain=tenant.domain,
            kind="mailbox",
            password=STRONG_PASSWORD,
            forward_to=TARGETS,
            spoofing_whitelist=WHITELIST,
        )
        address_id = create_address(session, actor, new, passwords=PASSWORDS).address.id
        bare = NewAddress(local_part="bert", domain=tenant.domain, kind="mailbox")
        empty_id = create_address(session, actor, bare, passwords=PASSWORDS).address.id

    with unit_of_work(sessions, write=False) as session:
        found = get_address(session, actor, address_id)
        assert [t.target for t in found.forward_targets] == TARGETS
        assert [p.pattern for p in found.sender_permissions] == WHITELIST
        empty = get_address(session, actor, empty_id)
        assert empty.forward_targets == [] and empty.sender_permissions == []

    shorter = [*TARGETS[5:], "new@elsewhere.example"]
    with unit_of_work(sessions) as session:
        found = get_address(session, actor, f"anna@{tenant.domain}")
        changes = AddressChanges(forward_to=shorter, spoofing_whitelist=["*"])
        update_address(session, actor, found, changes, passwords=PASSWORDS)
        # Read again in the same transaction: the changed lists stay as changed.
        again = list_addresses(session, actor, address=f"anna@{tenant.domain}")
        assert [t.target for t in again[0].forward_targets] == shorter
    with unit_of_work(sessions, write=False) as session:
        assert stored(session, address_id) == (shorter, ["*"])
        assert [t.target for t in get_address(session, actor, address_id).forward_targets] == (
            shorter
        )

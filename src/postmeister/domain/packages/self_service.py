"""What a package lets the owner of one of its mailboxes change by themselves (the web
self-service, logged in with the mailbox's own password).

Forwarding is granted per package (`Package.allow_self_service_forwarding`): a forward
target sends the mailbox's mail out of the provider, so a customer's package decides it,
not the mailbox owner. The targets themselves are judged by the address service, exactly
as for the API (syntax, canonical form, duplicates, loops, the count limit).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.addresses import service as addresses
from postmeister.domain.addresses.schemas import AddressChanges
from postmeister.domain.passwords.service import Passwords
from postmeister.errors import PermissionDenied
from postmeister.models import Address, Domain, Package


def may_change_own_forwarding(session: Session, address: Address) -> bool:
    """Whether the owner of this mailbox may set its forward targets."""
    if address.kind != "mailbox":
        return False
    domain = session.get(Domain, address.domain_id)
    assert domain is not None  # an address always has its domain
    package = session.get(Package, domain.package_id)
    return package is not None and package.allow_self_service_forwarding


def change_own_forwarding(
    session: Session, actor: Actor, address: Address, targets: list[str], *, passwords: Passwords
) -> Address:
    """Replace the mailbox's forward targets (an empty list: keep all mail here), if its
    package allows it; otherwise `PermissionDenied` and nothing changes."""
    if not may_change_own_forwarding(session, address):
        raise PermissionDenied(f"the package of {address.address} does not let its owner forward")
    return addresses.update_address(
        session, actor, address, AddressChanges(forward_to=targets), passwords=passwords
    )

"""Customers (tenants) and their packages.

Only admins see customers: to anyone else every customer, its own included, is `NotFound`
(a customer's token learns nothing about which customers exist). The CLI acts as
`Actor.system()`, an admin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.paging import Page, keyset_page
from postmeister.domain.sending_limits.rules import PACKAGE_DEFAULTS
from postmeister.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from postmeister.models import Address, Customer, Domain, MailboxUsage, Package

DEFAULT_PACKAGE = "default"
MAX_NAME = 200


def _clean_name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or "\x00" in clean:
        raise InvalidInput.single(
            "name", f"a customer name of 1 to {MAX_NAME} characters is required", "length"
        )
    return clean


def _check_unique(session: Session, name: str, *, but: int | None = None) -> None:
    statement = select(Customer.id).where(Customer.name == name)
    if but is not None:
        statement = statement.where(Customer.id != but)
    if session.scalar(statement) is not None:
        raise AlreadyExists("customer", name)


def create_customer(session: Session, *, name: str) -> Customer:
    """A new customer with its default package (for the CLI and internal callers)."""
    clean = _clean_name(name)
    _check_unique(session, clean)
    customer = Customer(name=clean)
    session.add(customer)
    session.flush()
    session.add(Package(customer_id=customer.id, name=DEFAULT_PACKAGE, **PACKAGE_DEFAULTS))
    session.flush()
    audit.changed(session, snapshots.CUSTOMER, customer, "created")
    return customer


MAX_ID: Final = 2**31 - 1  # the id column is a 32-bit integer on every database


def get_customer(session: Session, customer_id: int) -> Customer:
    # An id no column can hold names no customer (and must not reach the driver).
    customer = session.get(Customer, customer_id) if 1 <= customer_id <= MAX_ID else None
    if customer is None:
        raise NotFound("customer", str(customer_id))
    return customer


# ---------------------------------------------------------------------------- as an actor


def _require_admin(actor: Actor, key: str) -> None:
    """Customers do not see customers at all: the same `NotFound` as a missing one."""
    if not actor.is_admin:
        raise NotFound("customer", key)


def register_customer(session: Session, actor: Actor, *, name: str) -> Customer:
    _require_admin(actor, name)
    actor.require_write()
    return create_customer(session, name=name)


def find_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    _require_admin(actor, str(customer_id))
    return get_customer(session, customer_id)


def list_customer_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
    suspended: bool | None = None,
) -> Page[Customer]:
    _require_admin(actor, "*")
    statement = select(Customer)
    if suspended is not None:
        statement = statement.where(
            Customer.suspended_at.is_not(None) if suspended else Customer.suspended_at.is_(None)
        )
    return keyset_page(session, statement, Customer.id, size=size, after=after, before=before)


@dataclass(frozen=True)
class CustomerChanges:
    """Only what is given changes (None: leave as it is)."""

    name: str | None = None
    suspended: bool | None = None
    # Its web users must log in with a TOTP code (set by an admin in the web interface).
    totp_required: bool | None = None


def update_customer(
    session: Session,
    actor: Actor,
    customer: Customer,
    changes: CustomerChanges,
    *,
    now: dt.datetime | None = None,
) -> Customer:
    """Rename, suspend or unsuspend, require TOTP or not. Suspending an already suspended
    customer keeps the time it was first suspended."""
    _require_admin(actor, str(customer.id))
    actor.require_write()
    before = snapshots.customer(customer)
    if changes.name is not None:
        clean = _clean_name(changes.name)
        _check_unique(session, clean, but=customer.id)
        customer.name = clean
    if changes.suspended is True and customer.suspended_at is None:
        customer.suspended_at = now or dt.datetime.now(dt.UTC)
    elif changes.suspended is False:
        customer.suspended_at = None
    if changes.totp_required is not None:
        customer.totp_required = changes.totp_required
    session.flush()
    audit.changed(session, snapshots.CUSTOMER, customer, "updated", before=before)
    return customer


def delete_customer(
    session: Session, actor: Actor, customer: Customer, *, cascade: bool = False
) -> None:
    """Delete a customer with its packages, tokens and sync sources. Refused (`Conflict`)
    while it has domains, unless `cascade`: then its domains and every address on them go
    too (the database's ON DELETE CASCADE), with their mail servers' usage rows."""
    _require_admin(actor, str(customer.id))
    actor.require_write()
    domains = session.scalar(select(func.count(Domain.id)).where(Domain.customer_id == customer.id))
    if domains and not cascade:
        raise Conflict(
            f"customer {customer.id} still has {domains} domain(s); delete them first "
            "or pass cascade=true"
        )
    own_addresses = (
        select(Address.address)
        .join(Domain, Domain.id == Address.domain_id)
        .where(Domain.customer_id == customer.id)
    )
    session.execute(
        delete(MailboxUsage).where(MailboxUsage.username.in_(own_addresses)),
        execution_options={"synchronize_session": False},
    )
    # One event for the customer and what went with it (the cascade writes none of its own).
    gone = {**snapshots.customer(customer), "domains": domains or 0}
    audit.changed(session, snapshots.CUSTOMER, customer, "deleted", before=gone, gone=True)
    # A bulk delete: the foreign keys' ON DELETE CASCADE removes everything that hangs on
    # the customer in one statement (the ORM would try to detach the packages instead).
    session.flush()
    session.execute(
        delete(Customer).where(Customer.id == customer.id),
        execution_options={"synchronize_session": False},
    )
    session.expunge_all()


# ---------------------------------------------------------------------------- packages


def default_package(session: Session, customer_id: int) -> Package:
    package = session.scalar(
        select(Package).where(Package.customer_id == customer_id, Package.name == DEFAULT_PACKAGE)
    )
    if package is None:
        package = Package(customer_id=customer_id, name=DEFAULT_PACKAGE, **PACKAGE_DEFAULTS)
        session.add(package)
        session.flush()
    return package


def get_package(session: Session, *, customer_id: int, package_id: int) -> Package:
    package = session.get(Package, package_id)
    if package is None or package.customer_id != customer_id:
        raise NotFound("package", str(package_id))
    return package

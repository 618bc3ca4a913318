"""Hosting packages: their CRUD (admins) and their usage against each limit.

Tenancy: an admin sees every package; a customer sees its own; a token limited to domains
sees only the packages that hold one of them. Anything else is `NotFound`. A customer may
read its packages but never change them (`PermissionDenied`): limits are what it paid for.

The limits are judged by the address rules on every write path (`domain.addresses.rules`);
this module only stores them and reports usage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_packages
from postmeister.domain.addresses.limits import load_usage
from postmeister.domain.addresses.rules import PackageUsage as CountedUsage
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.customers.service import get_customer
from postmeister.domain.paging import Page, keyset_page
from postmeister.domain.sending_limits.rules import NAMES as SENDING_LIMIT_NAMES
from postmeister.domain.sending_limits.rules import PACKAGE_DEFAULTS
from postmeister.errors import AlreadyExists, Conflict, NotFound, PermissionDenied, ProblemList
from postmeister.models import Address, AppPassword, Domain, Package

MAX_NAME: Final = 200
COUNT_LIMIT: Final = 2**31 - 1  # counts are 32-bit integers in the database
BYTES_LIMIT: Final = 2**62  # storage in bytes: 4 EiB, far below a 64-bit integer's end
# Limit name -> its upper bound.
LIMITS: Final = {
    "max_addresses": COUNT_LIMIT,
    "max_mailboxes": COUNT_LIMIT,
    "max_storage_bytes": BYTES_LIMIT,
    "max_quota_bytes": BYTES_LIMIT,
    "max_app_passwords": COUNT_LIMIT,
    # Sending limits (`domain.sending_limits`): judged by the sender milter on submission.
    **{f"{of}_{name}": COUNT_LIMIT for of in ("mailbox", "domain") for name in SENDING_LIMIT_NAMES},
}


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("only an admin changes packages and their limits")
    actor.require_write()


def _check(problems: ProblemList, *, name: str | None, limits: dict[str, int | None]) -> None:
    if name is not None:
        clean = name.strip()
        if not clean or len(clean) > MAX_NAME or "\x00" in clean:
            problems.add(
                "name", f"a package name of 1 to {MAX_NAME} characters is required", "length"
            )
    for limit, value in limits.items():
        bound = LIMITS[limit]
        if value is not None and not 0 <= value <= bound:
            problems.add(limit, f"must be null (no limit) or an integer from 0 to {bound}", "range")


def _check_unique(session: Session, customer_id: int, name: str, but: int | None = None) -> None:
    statement = select(Package.id).where(Package.customer_id == customer_id, Package.name == name)
    if but is not None:
        statement = statement.where(Package.id != but)
    if session.scalar(statement) is not None:
        raise AlreadyExists("package", name, f"customer {customer_id} has a package {name!r}")


@dataclass(frozen=True)
class NewPackage:
    customer_id: int
    name: str
    limits: dict[str, int | None] = field(default_factory=dict)
    allow_self_service_forwarding: bool = False


@dataclass(frozen=True)
class PackageChanges:
    """`name` None: unchanged; `limits` holds only the limits to change (None: no limit);
    `allow_self_service_forwarding` None: unchanged."""

    name: str | None = None
    limits: dict[str, int | None] = field(default_factory=dict)
    allow_self_service_forwarding: bool | None = None


def create_package(session: Session, actor: Actor, new: NewPackage) -> Package:
    _require_admin(actor)
    problems = ProblemList()
    _check(problems, name=new.name, limits=new.limits)
    problems.raise_if_any()
    try:
        get_customer(session, new.customer_id)
    except NotFound:
        problems.add("customer_id", f"there is no customer {new.customer_id}", "exists")
        problems.raise_if_any()
    name = new.name.strip()
    _check_unique(session, new.customer_id, name)
    package = Package(
        customer_id=new.customer_id,
        name=name,
        allow_self_service_forwarding=new.allow_self_service_forwarding,
        **{**PACKAGE_DEFAULTS, **new.limits},
    )
    session.add(package)
    session.flush()
    audit.changed(session, snapshots.PACKAGE, package, "created")
    return package


def get_package(session: Session, actor: Actor, package_id: int) -> Package:
    package = session.scalar(visible_packages(actor).where(Package.id == package_id))
    if package is None:
        raise NotFound("package", str(package_id))
    return package


def list_package_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
    customer_id: int | None = None,
) -> Page[Package]:
    statement = visible_packages(actor)
    if customer_id is not None:
        statement = statement.where(Package.customer_id == customer_id)
    return keyset_page(session, statement, Package.id, size=size, after=after, before=before)


def update_package(
    session: Session, actor: Actor, package: Package, changes: PackageChanges
) -> Package:
    """Lowering a limit below the current usage is allowed (the admin decides); it only
    stops new growth, the address rules judge each later write."""
    _require_admin(actor)
    problems = ProblemList()
    _check(problems, name=changes.name, limits=changes.limits)
    problems.raise_if_any()
    before = snapshots.package(package)
    if changes.name is not None:
        name = changes.name.strip()
        _check_unique(session, package.customer_id, name, but=package.id)
        package.name = name
    for limit, value in changes.limits.items():
        setattr(package, limit, value)
    if changes.allow_self_service_forwarding is not None:
        package.allow_self_service_forwarding = changes.allow_self_service_forwarding
    session.flush()
    audit.changed(session, snapshots.PACKAGE, package, "updated", before=before)
    return package


def delete_package(session: Session, actor: Actor, package: Package) -> None:
    """Refused while domains are in it: move or delete them first."""
    _require_admin(actor)
    domains = session.scalar(select(func.count(Domain.id)).where(Domain.package_id == package.id))
    if domains:
        raise Conflict(f"package {package.id} still holds {domains} domain(s); move or delete them")
    before = snapshots.package(package)
    session.delete(package)
    session.flush()
    audit.changed(session, snapshots.PACKAGE, package, "deleted", before=before, gone=True)


# ---------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class PackageUsage:
    """What a package uses, one figure per limit (storage: the sum of mailbox quotas)."""

    addresses: int = 0
    mailboxes: int = 0
    storage_bytes: int = 0  # sum of the quotas of the mailboxes that have one
    mailboxes_without_quota: int = 0  # each may fill the whole storage
    largest_quota_bytes: int | None = None  # None: no mailbox has a quota
    most_app_passwords: int = 0  # of one mailbox


def usage_of(session: Session, package_ids: list[int]) -> dict[int, PackageUsage]:
    """Usage of each package. The figures that limits judge come from the same query as the
    enforcement (`domain.addresses.limits.load_usage`), so what is shown is what is judged;
    two more aggregates add the largest quota and the most app passwords of one mailbox."""
    if not package_ids:
        return {}
    counted = load_usage(session, package_ids)
    largest = dict(
        session.execute(
            select(Domain.package_id, func.max(Address.quota_bytes))
            .join(Domain, Domain.id == Address.domain_id)
            .where(Domain.package_id.in_(package_ids), Address.kind == "mailbox")
            .group_by(Domain.package_id)
        ).all()
    )
    per_mailbox = (
        select(Domain.package_id.label("package_id"), func.count(AppPassword.id).label("n"))
        .join(Address, Address.id == AppPassword.address_id)
        .join(Domain, Domain.id == Address.domain_id)
        .where(Domain.package_id.in_(package_ids))
        .group_by(Domain.package_id, AppPassword.address_id)
        .subquery()
    )
    most = dict(
        session.execute(
            select(per_mailbox.c.package_id, func.max(per_mailbox.c.n)).group_by(
                per_mailbox.c.package_id
            )
        ).all()
    )
    found: dict[int, PackageUsage] = {}
    for package_id in package_ids:
        figures = counted.get(package_id, CountedUsage())
        biggest = largest.get(package_id)
        found[package_id] = PackageUsage(
            addresses=figures.addresses,
            mailboxes=figures.mailboxes,
            storage_bytes=figures.storage_bytes,
            mailboxes_without_quota=figures.unlimited_mailboxes,
            largest_quota_bytes=None if biggest is None else int(biggest),
            most_app_passwords=int(most.get(package_id, 0)),
        )
    return found

"""Package limits, the database side: what a package allows and what it holds.

The judgement is `rules.package_problems` and friends (pure); this module only reads the
numbers they judge, for the per-address service and the sync bulk writer alike, and for
anything that shows usage against the limits. Package ids come from domains the caller
already resolved through `access.visible_domains`, so nothing here is scoped again.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import BigInteger, case, func, select
from sqlalchemy.orm import Session

from postmeister.domain.addresses.rules import DomainUsage, PackageLimits, PackageUsage
from postmeister.models import Address, AppPassword, Domain, Package

# The columns of `PackageLimits`, in its field order.
LIMIT_COLUMNS: Final = (
    Package.max_addresses,
    Package.max_mailboxes,
    Package.max_storage_bytes,
    Package.max_quota_bytes,
    Package.max_app_passwords,
)


def load_limits(session: Session, package_ids: Collection[int]) -> dict[int, PackageLimits]:
    rows = session.execute(
        select(Package.id, *LIMIT_COLUMNS).where(Package.id.in_(list(package_ids)))
    )
    return {row.id: PackageLimits(*row[1:]) for row in rows}


def load_usage(session: Session, package_ids: Collection[int]) -> dict[int, PackageUsage]:
    """Each package's usage in one grouped query; a package without addresses is absent
    (use `.get(id, PackageUsage())`)."""
    return _usage_by(session, Domain.package_id, package_ids)


def load_domain_usage(session: Session, domain_id: int) -> DomainUsage:
    """What one domain brings into a package it moves to: its share of the counted limits,
    and the figures the per-mailbox limits judge."""
    usage = _usage_by(session, Domain.id, [domain_id]).get(domain_id, PackageUsage())
    largest = session.scalar(
        select(func.max(Address.quota_bytes)).where(
            Address.domain_id == domain_id, Address.kind == "mailbox"
        )
    )
    per_mailbox = (
        select(func.count(AppPassword.id).label("n"))
        .join(Address, Address.id == AppPassword.address_id)
        .where(Address.domain_id == domain_id)
        .group_by(AppPassword.address_id)
        .subquery()
    )
    most = session.scalar(select(func.max(per_mailbox.c.n)))
    return DomainUsage(usage, int(largest) if largest is not None else None, int(most or 0))


def _usage_by(session: Session, key: Any, ids: Collection[int]) -> dict[int, PackageUsage]:
    """The usage grouped by `key` (a package id or a domain id column of `domains`)."""
    mailbox = Address.kind == "mailbox"
    rows = session.execute(
        select(
            key,
            func.count(Address.id),
            func.count(case((mailbox, 1))),
            func.coalesce(func.sum(case((mailbox, Address.quota_bytes))), 0).cast(BigInteger),
            func.count(case((mailbox & Address.quota_bytes.is_(None), 1))),
        )
        .join(Address, Address.domain_id == Domain.id)
        .where(key.in_(list(ids)))
        .group_by(key)
    )
    return {
        row[0]: PackageUsage(int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows
    }


def app_password_count(session: Session, address_id: int) -> int:
    count = session.scalar(
        select(func.count(AppPassword.id)).where(AppPassword.address_id == address_id)
    )
    return int(count or 0)

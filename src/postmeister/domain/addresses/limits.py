"""Package limits, the database side: what a package allows and what it holds.

The judgement is `rules.package_problems` and friends (pure); this module only reads the
numbers they judge, for the per-address service and the sync bulk writer alike, and for
anything that shows usage against the limits. Package ids come from domains the caller
already resolved through `access.visible_domains`, so nothing here is scoped again.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import BigInteger, case, func, select
from sqlalchemy.orm import Session

from postmeister.domain.addresses.rules import PackageLimits, PackageUsage
from postmeister.models import Address, AppPassword, Domain, Package


def load_limits(session: Session, package_ids: Collection[int]) -> dict[int, PackageLimits]:
    rows = session.execute(
        select(
            Package.id,
            Package.max_addresses,
            Package.max_mailboxes,
            Package.max_storage_bytes,
            Package.max_quota_bytes,
            Package.max_app_passwords,
        ).where(Package.id.in_(list(package_ids)))
    )
    return {row.id: PackageLimits(*row[1:]) for row in rows}


def load_usage(session: Session, package_ids: Collection[int]) -> dict[int, PackageUsage]:
    """Each package's usage in one grouped query; a package without addresses is absent
    (use `.get(id, PackageUsage())`)."""
    mailbox = Address.kind == "mailbox"
    rows = session.execute(
        select(
            Domain.package_id,
            func.count(Address.id),
            func.count(case((mailbox, 1))),
            func.coalesce(func.sum(case((mailbox, Address.quota_bytes))), 0).cast(BigInteger),
            func.count(case((mailbox & Address.quota_bytes.is_(None), 1))),
        )
        .join(Address, Address.domain_id == Domain.id)
        .where(Domain.package_id.in_(list(package_ids)))
        .group_by(Domain.package_id)
    )
    return {
        row[0]: PackageUsage(int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows
    }


def app_password_count(session: Session, address_id: int) -> int:
    count = session.scalar(
        select(func.count(AppPassword.id)).where(AppPassword.address_id == address_id)
    )
    return int(count or 0)

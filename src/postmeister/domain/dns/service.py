"""A hosted domain's DNS records: which it needs (from the database and the settings) and
how they stand when looked up live.

Two steps, so that no transaction is held while the resolver is asked: `domain_records`
reads (the caller's transaction), then `check` looks up (no database). Tenancy is the
domain lookup's (`domains.service`, `access.visible_domains`): another customer's domain is
`NotFound` like a missing one. Reads only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from postmeister.config import DnsSettings, Settings
from postmeister.domain.access import Actor
from postmeister.domain.dkim.service import published_records
from postmeister.domain.dns import zone
from postmeister.domain.dns.check import RecordCheck, check_records
from postmeister.domain.dns.rules import DkimRecord, ExpectedRecord, expected_records
from postmeister.domain.domains.service import get_domain, get_domain_by_id
from postmeister.models import Domain


@dataclass(frozen=True, slots=True)
class DomainRecords:
    """The records one domain needs: `ascii_name` the A-label, `shown_name` as entered."""

    domain_id: int
    ascii_name: str
    shown_name: str
    ttl: int
    records: tuple[ExpectedRecord, ...]

    def zone(self) -> str:
        return zone.zone_snippet(
            self.records, ascii_domain=self.ascii_name, shown_domain=self.shown_name, ttl=self.ttl
        )


def dkim_records(session: Session, domain: Domain) -> Sequence[DkimRecord]:
    """The DKIM keys the domain signs with, as their TXT records: the one place the DNS
    records learn about DKIM (the keys still in their overlap after a rotation too)."""
    return published_records(session, domain)


def _records(session: Session, domain: Domain, settings: Settings) -> DomainRecords:
    records = expected_records(
        domain.name, settings=settings, dkim=list(dkim_records(session, domain))
    )
    return DomainRecords(
        domain_id=domain.id,
        ascii_name=domain.name,
        shown_name=domain.display_name,
        ttl=settings.dns.ttl,
        records=tuple(records),
    )


def domain_records(
    session: Session, actor: Actor, domain_id: int, *, settings: Settings
) -> DomainRecords:
    """The records of the visible domain `domain_id` (else `NotFound`)."""
    return _records(session, get_domain_by_id(session, actor, domain_id), settings)


def domain_records_named(
    session: Session, actor: Actor, name: str, *, settings: Settings
) -> DomainRecords:
    """The records of the visible domain called `name` (any spelling; else `NotFound`)."""
    return _records(session, get_domain(session, actor, name), settings)


def check(records: DomainRecords, settings: DnsSettings) -> list[RecordCheck]:
    """Each record looked up live and judged; call it after the transaction."""
    return check_records(records.records, settings)

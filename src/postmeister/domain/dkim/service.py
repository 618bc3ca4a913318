"""DKIM keys of a domain: created with the domain, rotated on request, removed after the
overlap. Services flush; the caller commits.

Tenancy: every public entry point takes a `Domain` that the caller got through
`domain.domains.service.get_domain_by_id` (the one tenancy statement, `domain.access`), so
another customer's domain is `NotFound` before anything here runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from postmeister.config import DkimSettings
from postmeister.domain.access import Actor
from postmeister.domain.audit import service as audit
from postmeister.domain.dkim import rules
from postmeister.domain.dkim.rules import Algorithm, PublishedKey
from postmeister.models import DkimKey, Domain

__all__ = [
    "KeyView",
    "create_keys",
    "ensure_keys",
    "list_keys",
    "published_records",
    "remove_expired",
    "rotate",
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class KeyView:
    """What the API shows of a key: never the private key."""

    id: int
    selector: str
    algorithm: str
    state: str
    record: PublishedKey
    created_at: dt.datetime
    retired_at: dt.datetime | None
    published_until: dt.datetime | None


def _keys(session: Session, domain: Domain) -> Sequence[DkimKey]:
    return session.scalars(
        select(DkimKey).where(DkimKey.domain_id == domain.id).order_by(DkimKey.id)
    ).all()


def create_keys(
    session: Session, domain: Domain, settings: DkimSettings, *, now: dt.datetime | None = None
) -> list[DkimKey]:
    """A new signing key for each configured algorithm (one selector letter for all)."""
    when = now or _now()
    taken = {key.selector for key in _keys(session, domain)}
    created = []
    algorithms: list[Algorithm] = list(settings.algorithms)
    # The RSA selector decides the letter; the Ed25519 one takes the same with `-ed`.
    base = rules.next_selector(
        prefix=settings.selector_prefix, year=when.year, algorithm="rsa", taken=taken
    )
    for algorithm in algorithms:
        pair = rules.generate(algorithm, rsa_bits=settings.rsa_bits)
        key = DkimKey(
            domain_id=domain.id,
            selector=base if algorithm == "rsa" else f"{base}-ed",
            algorithm=algorithm,
            private_key=pair.private_pem,
            public_key=pair.public,
            created_at=when,
        )
        session.add(key)
        created.append(key)
    session.flush()
    return created


def ensure_keys(
    session: Session, settings: DkimSettings, *, now: dt.datetime, limit: int | None = None
) -> int:
    """Give domains without a signing key their keys (those added before keys were made at
    creation, i.e. before migration 0013), at most `limit` of them; returns how many."""
    signing = select(DkimKey.domain_id).where(DkimKey.retired_at.is_(None))
    missing = session.scalars(
        select(Domain).where(Domain.id.not_in(signing)).order_by(Domain.id).limit(limit)
    ).all()
    for domain in missing:
        create_keys(session, domain, settings, now=now)
    return len(missing)


def rotate(
    session: Session,
    actor: Actor,
    domain: Domain,
    settings: DkimSettings,
    *,
    now: dt.datetime | None = None,
) -> list[DkimKey]:
    """New keys sign from now on; the old signing keys stay published for the overlap."""
    actor.require_write()
    when = now or _now()
    until = when + dt.timedelta(days=settings.overlap_days)
    retired = []
    for key in _keys(session, domain):
        if key.retired_at is None:
            key.retired_at = when
            key.published_until = until
            retired.append(key.selector)
    session.flush()
    created = create_keys(session, domain, settings, now=when)
    audit.record(
        session,
        audit.event(
            resource="dkim_keys",
            resource_id=domain.id,
            action="rotated",
            customer_id=domain.customer_id,
            domain_id=domain.id,
            name=domain.name,
            before={"signing": retired},
            after={"signing": [key.selector for key in created]},
        ),
    )
    return created


def list_keys(session: Session, domain: Domain, *, now: dt.datetime | None = None) -> list[KeyView]:
    """The domain's keys that are still published, newest last."""
    when = now or _now()
    views = []
    for key in _keys(session, domain):
        state = rules.state(
            retired_at=key.retired_at, published_until=key.published_until, now=when
        )
        if state == "expired":
            continue
        views.append(
            KeyView(
                id=key.id,
                selector=key.selector,
                algorithm=key.algorithm,
                state=state,
                record=rules.published_key(
                    selector=key.selector,
                    domain=domain.name,
                    algorithm=key.algorithm,
                    public=key.public_key,
                ),
                created_at=key.created_at,
                retired_at=key.retired_at,
                published_until=key.published_until,
            )
        )
    return views


def published_records(session: Session, domain: Domain) -> list[PublishedKey]:
    """Every TXT record the domain must publish now (signing keys and those in overlap)."""
    return [view.record for view in list_keys(session, domain)]


def remove_expired(session: Session, *, now: dt.datetime) -> int:
    """Delete retired keys whose overlap has passed: they are no longer published and the
    signer never reads retired keys. Returns how many."""
    result = session.execute(
        delete(DkimKey).where(DkimKey.retired_at.is_not(None), DkimKey.published_until <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)

"""A mailbox's sending limits through the API, and what the mail nodes reported.

- `sending_limits_of` shows a mailbox's own limits, the effective ones (own, else its
  package's), its domain's, and what the mailbox and its domain sent this hour and today.
- `change_sending_limits` sets a mailbox's own limits. The tenancy is the address lookup's
  (`domain.addresses.queries.get_address`: another customer's mailbox is not found); a
  customer may only tighten its package's limits (`rules.above_package`), an admin may set
  any. Audited as resource `sending_limits`.
- `report_limit_hits` (the `sending-limits` job) turns each deferral the sender milters
  recorded into an audit event `mailbox` / `sending_limit_reached` (webhook
  `mailbox.sending_limit_reached`), switches submission off for the mailbox when configured,
  and forgets counters of finished periods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.addresses.queries import get_address
from postmeister.domain.addresses.service import AddressChanges, update_address
from postmeister.domain.audit import service as audit
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.sending_limits.rules import (
    NAMES,
    Limits,
    above_package,
    counters,
    oldest_period_kept,
    value_problems,
)
from postmeister.errors import FieldProblem, InvalidInput
from postmeister.models import (
    Address,
    Domain,
    Package,
    SendingCounter,
    SendingLimitHit,
    SendingLimitOverride,
)


def package_limits(package: Package) -> tuple[Limits, Limits]:
    """(each mailbox's, each domain's) limits of a package."""
    return (
        Limits.of({name: getattr(package, f"mailbox_{name}") for name in NAMES}),
        Limits.of({name: getattr(package, f"domain_{name}") for name in NAMES}),
    )


@dataclass(frozen=True)
class Usage:
    messages_this_hour: int = 0
    recipients_this_hour: int = 0
    messages_today: int = 0
    recipients_today: int = 0


@dataclass(frozen=True)
class SendingLimits:
    address: Address
    own: Limits
    effective: Limits
    domain: Limits
    usage: Usage
    domain_usage: Usage


def _own(session: Session, address: Address) -> Limits:
    row = session.get(SendingLimitOverride, address.id)
    if row is None:
        return Limits()
    return Limits.of({name: getattr(row, name) for name in NAMES})


def _usage(session: Session, login: str, domain: str, now: dt.datetime) -> tuple[Usage, Usage]:
    judged = counters(login, domain, now)
    found = {
        (row.subject, row.period): row
        for row in session.scalars(
            select(SendingCounter).where(
                SendingCounter.subject.in_({c.subject for c in judged}),
                SendingCounter.period.in_({c.period for c in judged}),
            )
        )
    }

    def usage(of: str) -> Usage:
        values: dict[str, int] = {}
        for counter in judged:
            if counter.of != of:
                continue
            row = found.get((counter.subject, counter.period))
            suffix = "this_hour" if counter.per == "hour" else "today"
            values[f"messages_{suffix}"] = row.messages if row else 0
            values[f"recipients_{suffix}"] = row.recipients if row else 0
        return Usage(**values)

    return usage("mailbox"), usage("domain")


def _mailbox(session: Session, actor: Actor, address_id: int) -> Address:
    return get_address(session, actor, address_id, kind="mailbox")


def sending_limits_of(
    session: Session, actor: Actor, address_id: int, *, now: dt.datetime
) -> SendingLimits:
    address = _mailbox(session, actor, address_id)
    package = session.get_one(Package, address.domain.package_id)
    mailbox_limits, domain_limits = package_limits(package)
    own = _own(session, address)
    usage, domain_usage = _usage(session, address.address, address.domain.name, now)
    return SendingLimits(
        address=address,
        own=own,
        effective=own.over(mailbox_limits),
        domain=domain_limits,
        usage=usage,
        domain_usage=domain_usage,
    )


def change_sending_limits(
    session: Session,
    actor: Actor,
    address_id: int,
    changes: Mapping[str, object],
    *,
    now: dt.datetime,
) -> SendingLimits:
    """Set the given own limits (None: the package's again); the others stay."""
    actor.require_write()
    address = _mailbox(session, actor, address_id)
    problems = [FieldProblem(name, message, "range") for name, message in value_problems(changes)]
    problems += [FieldProblem(name, "not a sending limit", "unknown") for name in changes
                 if name not in NAMES]  # fmt: skip
    if problems:
        raise InvalidInput(problems)
    before = _own(session, address)
    after = Limits.of({**before.as_dict(), **changes})  # type: ignore[dict-item]
    if not actor.is_admin:
        package = session.get_one(Package, address.domain.package_id)
        problems = [
            FieldProblem(name, message, "package")
            for name, message in above_package(after, package_limits(package)[0])
        ]
        if problems:
            raise InvalidInput(problems)
    row = session.get(SendingLimitOverride, address.id)
    if after == Limits():
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = SendingLimitOverride(address_id=address.id)
            session.add(row)
        for name, value in after.as_dict().items():
            setattr(row, name, value)
    session.flush()
    audit.record(
        session,
        audit.event(
            resource="sending_limits",
            resource_id=address.id,
            action="updated",
            customer_id=address.domain.customer_id,
            domain_id=address.domain_id,
            name=address.address,
            before=before.as_dict(),
            after=after.as_dict(),
        ),
    )
    return sending_limits_of(session, actor, address_id, now=now)


def report_limit_hits(
    session: Session, *, now: dt.datetime, disable_submission: Passwords | None
) -> int:
    """Audit (and so webhook) every deferral not yet reported; how many. With
    `disable_submission` (the password rules every address update takes, though this one
    sets no password) a mailbox over its own limit also has submission switched off."""
    hits = session.execute(
        select(SendingLimitHit, Address, Domain)
        .join(Address, Address.address == SendingLimitHit.login)
        .join(Domain, Domain.id == Address.domain_id)
        .where(SendingLimitHit.reported_at.is_(None))
        .order_by(SendingLimitHit.id)
    ).all()
    for hit, address, domain in hits:
        audit.record(
            session,
            audit.event(
                resource="mailbox",
                resource_id=address.id,
                action="sending_limit_reached",
                customer_id=domain.customer_id,
                domain_id=domain.id,
                name=address.address,
                after={
                    "limit": hit.limit_name,
                    "limit_value": hit.limit_value,
                    "of": "domain" if hit.subject.startswith("@") else "mailbox",
                    "period": hit.period,
                    "deferred_at": hit.hit_at.isoformat(),
                },
                when=now,
                actor=audit.actor_fields(),
            ),
        )
        hit.reported_at = now
        if (
            disable_submission is not None
            and not hit.subject.startswith("@")
            and not address.submission_disabled
        ):
            # The address service's own update: its rules, its audit event (and so the
            # `address.submission_disabled` webhook), as from any other write path.
            update_address(
                session,
                Actor.system(),
                address,
                AddressChanges(submission_disabled=True),
                passwords=disable_submission,
            )
    # Hits of a subject whose mailbox is gone have no one to report to.
    session.execute(
        delete(SendingLimitHit).where(
            SendingLimitHit.reported_at.is_(None),
            SendingLimitHit.login.not_in(select(Address.address)),
        ),
        execution_options={"synchronize_session": False},
    )
    kept = oldest_period_kept(now)
    session.execute(
        delete(SendingCounter).where(SendingCounter.period < kept),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        delete(SendingLimitHit).where(
            SendingLimitHit.reported_at.is_not(None), SendingLimitHit.period < kept
        ),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    return len(hits)

"""`mailbox.quota_warning`: a mailbox's usage reached 90 % of its quota.

A scheduler job (`quota-warnings`, every minute) compares `mailbox_usage.bytes` (written by
Dovecot) with each mailbox's quota and records an audit event (resource `mailbox`, action
`quota_warning`) for every mailbox that crossed the line since the last run; the audit trail
queues the webhook deliveries the usual way. `quota_warnings` remembers the reported ones; a
mailbox that falls below the line (or loses its quota) is forgotten, so the next crossing is
reported again: once per crossing, however often the job runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from postmeister.domain.audit import service as audit
from postmeister.models import Address, Domain, MailboxUsage, QuotaWarning

# The share of the quota at which a mailbox is reported, as a fraction (9/10).
NUMERATOR: Final = 9
DENOMINATOR: Final = 10


def warn_quotas(session: Session, *, now: dt.datetime) -> int:
    """Record a quota warning for every mailbox newly at or above 90 %; how many."""
    above = (MailboxUsage.bytes * DENOMINATOR) >= (Address.quota_bytes * NUMERATOR)
    warned = select(QuotaWarning.address_id)
    session.execute(
        delete(QuotaWarning).where(
            QuotaWarning.address_id.not_in(
                select(Address.id)
                .join(MailboxUsage, MailboxUsage.username == Address.address)
                .where(Address.quota_bytes > 0, above)
            )
        ),
        execution_options={"synchronize_session": False},
    )
    crossed = session.execute(
        select(
            Address.id,
            Address.address,
            Address.domain_id,
            Domain.customer_id,
            Address.quota_bytes,
            MailboxUsage.bytes,
        )
        .join(Domain, Domain.id == Address.domain_id)
        .join(MailboxUsage, MailboxUsage.username == Address.address)
        .where(Address.kind == "mailbox", Address.quota_bytes > 0, above)
        .where(Address.id.not_in(warned))
        .order_by(Address.id)
    ).all()
    if not crossed:
        return 0
    actor = audit.actor_fields()
    events = [
        audit.event(
            resource="mailbox",
            resource_id=address_id,
            action="quota_warning",
            customer_id=customer_id,
            domain_id=domain_id,
            name=name,
            after={
                "usage_bytes": used,
                "quota_bytes": quota,
                "usage_percent": round(used * 100 / (quota or 1), 1),
            },
            when=now,
            actor=actor,
        )
        for address_id, name, domain_id, customer_id, quota, used in crossed
    ]
    audit.record_many(session, events)
    session.execute(
        insert(QuotaWarning), [{"address_id": row[0], "warned_at": now} for row in crossed]
    )
    return len(crossed)

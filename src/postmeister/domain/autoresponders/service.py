"""Autoresponder rows and the date logic of `schedule.py`: reading, writing, settling.

The caller owns the transaction: `settle_due` only flushes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.autoresponders.schedule import Schedule
from postmeister.models import Address, Autoresponder

# What a mailbox without an autoresponder row shows: no text, off, no dates.
NO_AUTORESPONDER = Schedule(active=False)


def schedule_of(responder: Autoresponder | None) -> Schedule:
    if responder is None:
        return NO_AUTORESPONDER
    return Schedule(
        active=responder.active, activates=responder.activates, expires=responder.expires
    )


def store_schedule(responder: Autoresponder, schedule: Schedule) -> None:
    """Write `schedule` into the row, touching it only if something changed (the data plane
    recompiles a Sieve script whenever the row's version changes)."""
    if schedule_of(responder) == schedule:
        return
    responder.active = schedule.active
    responder.activates = schedule.activates
    responder.expires = schedule.expires
    responder.updated_at = dt.datetime.now(dt.UTC)


def settle_due(session: Session, *, today: dt.date) -> int:
    """Apply every switch due by the local day `today`; the number of rows changed.

    Idempotent, and safe to run late: a row whose dates passed while nobody ran this (the
    controller was down) is settled exactly as it would have been on the day.
    """
    due = session.scalars(
        select(Autoresponder)
        .where(or_(Autoresponder.activates <= today, Autoresponder.expires <= today))
        .order_by(Autoresponder.address_id)
    ).all()
    for responder in due:
        address = session.get_one(Address, responder.address_id)
        before = snapshots.address(address)
        store_schedule(responder, schedule_of(responder).settled(today))
        audit.changed(session, snapshots.ADDRESS, address, "updated", before=before)
    session.flush()
    return len(due)

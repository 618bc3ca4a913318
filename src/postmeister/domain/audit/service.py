"""Recording changes in the audit trail, reading it, and forgetting old events.

Every service that changes something calls `changed` or `record` (the sync bulk writer
`record_many`) in the caller's transaction, after its own flush: the event commits with the
change or not at all, and a crash between the two cannot exist. The actor comes from the
request context (`ops.context`): an API token, or the origin set by `context.acting` (CLI,
sync source, scheduler job). The same call queues the event's webhook deliveries
(`webhooks.outbox`), so the outbox is written in that transaction too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_audit_events
from postmeister.domain.audit.rules import Snapshot, changes_between
from postmeister.domain.audit.schemas import Event, EventFilter
from postmeister.domain.audit.snapshots import Audited
from postmeister.domain.paging import Page, keyset_page
from postmeister.domain.webhooks import outbox
from postmeister.errors import NotFound
from postmeister.models import AuditEvent
from postmeister.ops import context

T = TypeVar("T")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def actor_fields() -> dict[str, str | None]:
    """Who acts now, as the event's `actor_*`, `request_id` and `client_address` fields."""
    current = context.current()
    if current is None:
        return {"actor_kind": "system", "actor_id": None, "actor_label": None,
                "request_id": None, "client_address": None}  # fmt: skip
    kind: str = "system"
    actor_id: str | None = None
    label: str | None = None
    if current.origin is not None:
        kind, actor_id, label = current.origin, current.origin_id, current.origin_label
    elif current.token_id is not None:
        kind, actor_id, label = "token", str(current.token_id), current.token_label
    return {
        "actor_kind": kind,
        "actor_id": actor_id,
        "actor_label": label,
        "request_id": current.request_id,
        "client_address": current.client_address,
    }


def event(
    *,
    resource: str,
    resource_id: int | str,
    action: str,
    customer_id: int | None,
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    domain_id: int | None = None,
    name: str | None = None,
    when: dt.datetime | None = None,
    actor: dict[str, str | None] | None = None,
) -> Event:
    """An event of the current actor (not yet stored); `record_many` stores a list of them."""
    who = actor if actor is not None else actor_fields()
    return Event(
        resource=resource,
        resource_id=str(resource_id),
        resource_name=name,
        action=action,
        changes=changes_between(before, after),
        customer_id=customer_id,
        domain_id=domain_id,
        occurred_at=when or _now(),
        actor_kind=who["actor_kind"] or "system",
        actor_id=who["actor_id"],
        actor_label=who["actor_label"],
        request_id=who["request_id"],
        client_address=who["client_address"],
    )


def record(session: Session, recorded: Event) -> Event | None:
    """Store one change (and queue its webhooks). An update that changed no field is no
    event: None."""
    if recorded.action == "updated" and not recorded.changes:
        return None
    record_many(session, [recorded])
    return recorded


def changed(
    session: Session,
    kind: Audited[T],
    row: T,
    action: str,
    *,
    before: Snapshot | None = None,
    gone: bool = False,
) -> Event | None:
    """Record a change of `row`: `before` is its snapshot before the change (None: it was
    created); `gone` when it no longer exists (its `before` is then all there is)."""
    return record(
        session,
        event(
            resource=kind.resource,
            resource_id=getattr(row, "id"),  # noqa: B009 - every audited model has an id
            action=action,
            customer_id=kind.customer_of(row),
            domain_id=kind.domain_of(row),
            name=kind.name_of(row),
            before=before,
            after=None if gone else kind.snapshot(row),
        ),
    )


def record_many(session: Session, events: Sequence[Event]) -> None:
    """Store events in one executemany (the sync writer records thousands at a time); a
    single event in one INSERT that also says whether its webhooks need queueing."""
    if not events:
        return
    listened = outbox.listened(events)
    if len(events) == 1 and listened is not None:
        # One change (an API request): the insert also answers whether any webhook endpoint
        # may hear of it, so the endpoints are read only when one may (the same snapshot:
        # this transaction's).
        stored = insert(AuditEvent).values(events[0].row()).returning(listened)
        if not session.scalar(stored):
            return
    else:
        session.execute(insert(AuditEvent), [e.row() for e in events])
    outbox.enqueue(session, events)


def list_event_page(
    session: Session,
    actor: Actor,
    wanted: EventFilter,
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
) -> Page[AuditEvent]:
    """The events this actor may read that match `wanted`, oldest first, keyset-paged."""
    statement = visible_audit_events(actor)
    conditions = {
        AuditEvent.resource: wanted.resource,
        AuditEvent.resource_id: wanted.resource_id,
        AuditEvent.action: wanted.action,
        AuditEvent.actor_kind: wanted.actor_kind,
        AuditEvent.actor_id: wanted.actor_id,
        AuditEvent.customer_id: wanted.customer_id,
    }
    for column, value in conditions.items():
        if value is not None:
            statement = statement.where(column == value)
    if wanted.since is not None:
        statement = statement.where(AuditEvent.occurred_at >= wanted.since)
    if wanted.until is not None:
        statement = statement.where(AuditEvent.occurred_at < wanted.until)
    return keyset_page(session, statement, AuditEvent.id, size=size, after=after, before=before)


def get_event(session: Session, actor: Actor, event_id: int) -> AuditEvent:
    """One event this actor may read; any other id is `NotFound`."""
    found = session.scalar(visible_audit_events(actor).where(AuditEvent.id == event_id))
    if found is None:
        raise NotFound("audit event", str(event_id))
    return found


def prune(session: Session, *, older_than: dt.datetime) -> int:
    """Forget the events that occurred before `older_than`; how many went."""
    result = session.execute(
        delete(AuditEvent).where(AuditEvent.occurred_at < older_than),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)

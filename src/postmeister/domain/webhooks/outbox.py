"""The transactional outbox: deliveries queued in the transaction of the change.

`audit.service.record_many` calls `enqueue` right after storing its events, in the same
transaction: a change that commits has its deliveries committed with it, a change that rolls
back queued nothing, and a controller killed after the commit finds them at its next start.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, insert, or_, select
from sqlalchemy.orm import Session

from postmeister.domain.audit.schemas import Event
from postmeister.domain.webhooks.rules import event_types, ordering_key, payload
from postmeister.models import WebhookDelivery, WebhookEndpoint


def _may_hear(events: Sequence[Event]) -> ColumnElement[bool]:
    """The endpoints that may hear of some of `events`: enabled, and an admin's (no
    customer: every event) or one of the events' customers'."""
    customers = {event.customer_id for event in events if event.customer_id is not None}
    return and_(
        WebhookEndpoint.enabled.is_(True),
        or_(WebhookEndpoint.customer_id.is_(None), WebhookEndpoint.customer_id.in_(customers)),
    )


def listened(events: Sequence[Event]) -> ColumnElement[bool] | None:
    """Whether any endpoint may hear of `events`, as an expression the statement storing them
    returns (`audit.record_many`), so that a change nobody listens to costs no lookup of
    endpoints; None: no event has a type anyone could subscribe to."""
    typed = [event for event in events if event_types(event)]
    return exists().where(_may_hear(typed)) if typed else None


def enqueue(session: Session, events: Sequence[Event]) -> None:
    """Queue a delivery of each event to every endpoint that subscribed to it.

    An endpoint hears of an event when it is enabled, subscribed to the event's type, and
    either an admin's (no customer: every event) or the event's customer's. One query finds
    the endpoints for the whole batch and one executemany inserts the deliveries (sync
    records thousands of events at once)."""
    typed = [(event, types) for event in events if (types := event_types(event))]
    if not typed:
        return
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.customer_id, WebhookEndpoint.event_types)
        .where(_may_hear([event for event, _ in typed]))
        .order_by(WebhookEndpoint.id)
    ).all()
    if not endpoints:
        return
    rows: list[dict[str, Any]] = []
    for event, types in typed:
        key = ordering_key(event)
        for event_type in types:
            body: str | None = None
            for endpoint_id, customer_id, subscribed in endpoints:
                if customer_id is not None and customer_id != event.customer_id:
                    continue
                if event_type not in subscribed:
                    continue
                body = body if body is not None else payload(event, event_type)
                rows.append(
                    {
                        "endpoint_id": endpoint_id,
                        "event_type": event_type,
                        "message_id": f"msg_{uuid.uuid4().hex}",
                        "ordering_key": key,
                        "payload": body,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": event.occurred_at,
                        "created_at": event.occurred_at,
                    }
                )
    if rows:
        session.execute(insert(WebhookDelivery), rows)

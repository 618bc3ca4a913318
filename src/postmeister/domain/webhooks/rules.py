"""What an event means to a webhook subscriber: its event types, its payload, the retry
schedule. Pure functions, no database.

Event types (the README's "Webhooks" section lists them for users):
`address.created`, `address.updated`, `address.deleted`, `address.password_changed` (an
update that set a new password), `address.submission_disabled` (sending switched off),
`app_password.created`, `app_password.revoked`, `sync_run.held`, `sync_run.failed` (failed
or rejected), `mailbox.quota_warning`, `mailbox.sending_limit_reached` (a mail node deferred
a message of the mailbox: a limit of the mailbox or its domain was reached). One change may
be several types (a password change is also `address.updated`); a subscriber gets one
delivery per type it subscribed to.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

from postmeister.domain.audit.schemas import Event

EVENT_TYPES: Final = (
    "address.created",
    "address.updated",
    "address.deleted",
    "address.password_changed",
    "address.submission_disabled",
    "app_password.created",
    "app_password.revoked",
    "sync_run.held",
    "sync_run.failed",
    "mailbox.quota_warning",
    "mailbox.sending_limit_reached",
)

# (resource, action) -> event type; the conditional ones are in `event_types`.
_DIRECT: Final = {
    ("address", "created"): "address.created",
    ("address", "updated"): "address.updated",
    ("address", "deleted"): "address.deleted",
    ("app_password", "created"): "app_password.created",
    ("app_password", "revoked"): "app_password.revoked",
    ("sync_run", "held"): "sync_run.held",
    ("sync_run", "failed"): "sync_run.failed",
    ("sync_run", "rejected"): "sync_run.failed",
    ("mailbox", "quota_warning"): "mailbox.quota_warning",
    ("mailbox", "sending_limit_reached"): "mailbox.sending_limit_reached",
}


def event_types(event: Event) -> list[str]:
    """The event types of one audit event; empty: no subscriber hears of it."""
    direct = _DIRECT.get((event.resource, event.action))
    if direct is None:
        return []
    found = [direct]
    if event.resource == "address" and event.action == "updated":
        if "password" in event.changes:
            found.append("address.password_changed")
        if event.changes.get("submission_disabled", [None, None])[1] is True:
            found.append("address.submission_disabled")
    return found


def ordering_key(event: Event) -> str:
    """Deliveries with the same key reach an endpoint in the order they were queued."""
    return f"{event.resource}:{event.resource_id}"[:160]


def payload(event: Event, event_type: str) -> str:
    """The body of a delivery (Standard Webhooks' `type`, `timestamp`, `data`), as JSON text.

    `changes` comes from the audit trail, so secrets are already `"[redacted]"`."""
    data: dict[str, Any] = {
        "resource": event.resource,
        "id": event.resource_id,
        "name": event.resource_name,
        "action": event.action,
        "changes": event.changes,
        "customer_id": event.customer_id,
        "domain_id": event.domain_id,
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "label": event.actor_label},
        "request_id": event.request_id,
    }
    body = {"type": event_type, "timestamp": event.occurred_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def backoff(failed_attempts: int, *, base_seconds: float, max_seconds: float) -> dt.timedelta:
    """The wait after the `failed_attempts`-th failed attempt: base, 2x base, 4x base, ...
    never more than `max_seconds`."""
    exponent = min(max(failed_attempts - 1, 0), 40)  # 2**40 x base is past any cap
    return dt.timedelta(seconds=min(base_seconds * 2**exponent, max_seconds))


def subscribed_types(wanted: list[str]) -> tuple[list[str], list[str]]:
    """The event types asked for, each once in the order given, and the unknown ones."""
    known: list[str] = []
    unknown: list[str] = []
    for name in wanted:
        target = known if name in EVENT_TYPES else unknown
        if name not in target:
            target.append(name)
    return known, unknown

"""The shapes of the audit trail: one event as recorded, and a query over the trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

# The kinds of actor an event names (`actor_kind`): an API token (`actor_id` its id,
# `actor_label` its label), the CLI (the operating-system user), a sync source (its id),
# a scheduler job (its name), or the system itself (migrations, tests).
ActorKind = Literal["token", "cli", "sync", "scheduler", "web", "system"]
ACTOR_KINDS: Final = get_args(ActorKind)


@dataclass(frozen=True)
class Event:
    """One change. `changes` is `{field: [before, after]}`, already redacted."""

    resource: str
    resource_id: str
    action: str
    changes: dict[str, list[Any]]
    customer_id: int | None
    occurred_at: dt.datetime
    actor_kind: str
    actor_id: str | None = None
    actor_label: str | None = None
    domain_id: int | None = None
    resource_name: str | None = None
    request_id: str | None = None
    client_address: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "resource_id": self.resource_id,
            "resource_name": self.resource_name,
            "action": self.action,
            "changes": self.changes,
            "customer_id": self.customer_id,
            "domain_id": self.domain_id,
            "occurred_at": self.occurred_at,
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "request_id": self.request_id,
            "client_address": self.client_address,
        }


@dataclass(frozen=True)
class EventFilter:
    """Conditions of `GET /audit-events` and `postmeister audit`; None: any."""

    resource: str | None = None
    resource_id: str | None = None
    action: str | None = None
    actor_kind: str | None = None
    actor_id: str | None = None
    customer_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

"""`/audit-events`: the audit trail, read-only (admins: every event; customers: their own).

Oldest first by id, keyset-paged like every list of the hosting dialect; filters:
`filter[resource]`, `filter[resource_id]`, `filter[action]`, `filter[actor_kind]`,
`filter[actor_id]`, `filter[customer_id]`, `filter[since]` and `filter[until]` (RFC 3339
times with a zone; `since` inclusive, `until` exclusive). A domain-limited token sees the
events about its domains only. Events are written by the services, never through here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from postmeister.api.common import current_actor, transaction
from postmeister.api.errors import InvalidQueryParameter
from postmeister.api.hosting import requests
from postmeister.api.hosting.media import JsonApiResponse
from postmeister.api.hosting.render import SelfLink
from postmeister.api.hosting.resources import (
    CollectionDocument,
    PageAfter,
    PageBefore,
    PageSize,
    ResourceDocument,
    collection,
    document,
    id_path,
    page_links,
    page_query,
    router,
    self_link,
)
from postmeister.domain.access import Actor
from postmeister.domain.audit import service
from postmeister.domain.audit.schemas import ActorKind, EventFilter
from postmeister.models import AuditEvent

BASE: Final = "/audit-events"
TYPE: Final = "audit-event"
routes = router(BASE, "audit trail (JSON:API)")
EventId = Annotated[str, id_path("the event's id")]


class AuditEventAttributes(BaseModel):
    occurred_at: dt.datetime
    resource: str = Field(examples=["address"])
    resource_id: str
    resource_name: str | None = Field(description="the address, domain or customer name")
    action: str = Field(examples=["created", "updated", "deleted", "revoked", "held"])
    changes: dict[str, list[Any]] = Field(
        description='field -> [before, after]; a secret shows only as "[redacted]"'
    )
    customer_id: int | None
    domain_id: int | None
    actor_kind: str = Field(description="token, cli, sync, scheduler, web or system")
    actor_id: str | None = Field(description="token id, OS user, sync source id or job name")
    actor_label: str | None
    request_id: str | None
    client_address: str | None


class AuditEventResource(BaseModel):
    type: Literal["audit-event"]
    id: str
    attributes: AuditEventAttributes
    links: SelfLink


def path_of(event_id: int) -> str:
    return f"{BASE}/{event_id}"


def resource(event: AuditEvent) -> AuditEventResource:
    return AuditEventResource(
        type="audit-event",
        id=str(event.id),
        attributes=AuditEventAttributes(
            occurred_at=event.occurred_at,
            resource=event.resource,
            resource_id=event.resource_id,
            resource_name=event.resource_name,
            action=event.action,
            changes=event.changes,
            customer_id=event.customer_id,
            domain_id=event.domain_id,
            actor_kind=event.actor_kind,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            request_id=event.request_id,
            client_address=event.client_address,
        ),
        links=self_link(path_of(event.id)),
    )


def _instant(name: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidQueryParameter(f"filter[{name}]", "give a time zone, e.g. 2026-12-01T10:00Z")
    return value


# No control characters (a NUL could not even be compared on PostgreSQL).
Text = Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]


@routes.get("", response_model=CollectionDocument[AuditEventResource], summary="List events")
def list_events(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
    filter_resource: Annotated[Text, Query(alias="filter[resource]")] = None,
    filter_resource_id: Annotated[Text, Query(alias="filter[resource_id]")] = None,
    filter_action: Annotated[Text, Query(alias="filter[action]")] = None,
    filter_actor_kind: Annotated[ActorKind | None, Query(alias="filter[actor_kind]")] = None,
    filter_actor_id: Annotated[Text, Query(alias="filter[actor_id]")] = None,
    filter_customer_id: Annotated[
        int | None, Query(alias="filter[customer_id]", ge=1, le=requests.MAX_ID)
    ] = None,
    filter_since: Annotated[dt.datetime | None, Query(alias="filter[since]")] = None,
    filter_until: Annotated[dt.datetime | None, Query(alias="filter[until]")] = None,
) -> Response:
    """Events in the order they were written, one keyset page at a time."""
    given = {
        "resource": filter_resource,
        "resource_id": filter_resource_id,
        "action": filter_action,
        "actor_kind": filter_actor_kind,
        "actor_id": filter_actor_id,
        "customer_id": filter_customer_id,
        "since": _instant("since", filter_since),
        "until": _instant("until", filter_until),
    }
    query = page_query(
        size=page_size,
        after=page_after,
        before=page_before,
        filters={name: (value, None) for name, value in given.items()},
    )
    with transaction(request) as session:
        page = service.list_event_page(
            session,
            actor,
            EventFilter(**{name: query.filter(name) for name in given}),
            size=query.size,
            after=query.after,
            before=query.before,
        )
        links = page_links(BASE, query, page, lambda item: item.id)
        return JsonApiResponse(collection([resource(item) for item in page.items], links))


@routes.get("/{event_id}", response_model=ResourceDocument[AuditEventResource], summary="Get one")
def get_event(
    request: Request, event_id: EventId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(event_id, TYPE)
    with transaction(request) as session:
        event = service.get_event(session, actor, key)
        return JsonApiResponse(document(resource(event), path_of(key)))

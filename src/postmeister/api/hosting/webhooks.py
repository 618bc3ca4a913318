"""`/webhooks`: register HTTPS endpoints for event types (the signing secret is shown once),
list, get, change, delete them, and read each one's delivery log.

Who may do what is `domain.webhooks.service`'s: admins every endpoint, a customer its own; a
domain-limited token gets 404 for the whole resource, a read-only token reads only.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Final, Literal

from fastapi import Body, Depends, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from postmeister.api.common import app_state, current_actor, transaction
from postmeister.api.hosting import requests
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse
from postmeister.api.hosting.render import SelfLink
from postmeister.api.hosting.resources import (
    CollectionDocument,
    Members,
    PageAfter,
    PageBefore,
    PageSize,
    ResourceDocument,
    Strict,
    collection,
    created,
    document,
    id_path,
    page_links,
    page_query,
    router,
    self_link,
)
from postmeister.domain.access import Actor
from postmeister.domain.webhooks import service
from postmeister.domain.webhooks.rules import EVENT_TYPES
from postmeister.models import WebhookDelivery, WebhookEndpoint

BASE: Final = "/webhooks"
TYPE: Final = "webhook"
routes = router(BASE, "Webhooks (JSON:API)")
WebhookId = Annotated[str, id_path("the webhook endpoint's id")]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class WebhookAttributes(BaseModel):
    url: str
    event_types: list[str]
    customer_id: int | None = Field(description="null: an admin's endpoint (every customer)")
    enabled: bool
    disabled_reason: str | None = Field(description="why it was disabled, if it is")
    consecutive_failures: int = Field(description="failed attempts since the last success")
    created_at: dt.datetime
    updated_at: dt.datetime | None
    secret: str | None = Field(
        default=None,
        description="the signing secret (whsec_...): only in the response that created it",
    )


class WebhookResource(BaseModel):
    type: Literal["webhook"]
    id: str
    attributes: WebhookAttributes
    links: SelfLink


class WebhookCreateAttributes(Strict):
    url: StrictStr = Field(description="https:// only, on the public internet")
    event_types: list[EventType] = Field(description="at least one", min_length=1)
    customer_id: StrictInt | None = Field(
        default=None, description="admins: whose endpoint (none: their own, every event)"
    )


class WebhookCreateResource(Strict):
    type: Literal["webhook"]
    attributes: WebhookCreateAttributes
    meta: Members | None = None


class WebhookCreateDocument(Strict):
    data: WebhookCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


class WebhookPatchAttributes(Strict):
    url: StrictStr = Field(default=None, description="a new URL")  # type: ignore[assignment]
    event_types: list[EventType] = Field(default=None, min_length=1)  # type: ignore[arg-type]
    enabled: StrictBool = Field(  # type: ignore[assignment]
        default=None, description="true enables again and clears the failure count"
    )


class WebhookPatchResource(Strict):
    type: Literal["webhook"]
    id: StrictStr
    attributes: WebhookPatchAttributes
    meta: Members | None = None


class WebhookPatchDocument(Strict):
    data: WebhookPatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


class DeliveryAttributes(BaseModel):
    event_type: str
    message_id: str = Field(description="the webhook-id header; the same on every attempt")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="while pending")
    last_attempt_at: dt.datetime | None
    last_status: int | None = Field(description="the HTTP status of the last answer")
    last_error: str | None = Field(description="why the last attempt failed")
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    payload: dict[str, Any] = Field(description="the body that is signed and sent")


class DeliveryResource(BaseModel):
    type: Literal["webhook-delivery"]
    id: str
    attributes: DeliveryAttributes


def path_of(endpoint_id: int) -> str:
    return f"{BASE}/{endpoint_id}"


def resource(endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookResource:
    values: dict[str, Any] = {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "customer_id": endpoint.customer_id,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "consecutive_failures": endpoint.consecutive_failures,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }
    if secret is not None:
        values["secret"] = secret
    return WebhookResource(
        type="webhook",
        id=str(endpoint.id),
        attributes=WebhookAttributes.model_validate(values),
        links=self_link(path_of(endpoint.id)),
    )


def delivery_resource(delivery: WebhookDelivery) -> DeliveryResource:
    return DeliveryResource(
        type="webhook-delivery",
        id=str(delivery.id),
        attributes=DeliveryAttributes.model_validate(
            {
                "event_type": delivery.event_type,
                "message_id": delivery.message_id,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "next_attempt_at": delivery.next_attempt_at
                if delivery.status == "pending"
                else None,
                "last_attempt_at": delivery.last_attempt_at,
                "last_status": delivery.last_status,
                "last_error": delivery.last_error,
                "delivered_at": delivery.delivered_at,
                "created_at": delivery.created_at,
                "payload": json.loads(delivery.payload),
            }
        ),
    )


@routes.get("", response_model=CollectionDocument[WebhookResource], summary="List webhooks")
def list_webhooks(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
) -> Response:
    """The endpoints the caller may see, in id order, without their secrets."""
    query = page_query(size=page_size, after=page_after, before=page_before)
    with transaction(request) as session:
        page = service.list_endpoint_page(
            session, actor, size=query.size, after=query.after, before=query.before
        )
        links = page_links(BASE, query, page, lambda item: item.id)
        return JsonApiResponse(collection([resource(item) for item in page.items], links))


@routes.post(
    "",
    status_code=201,
    response_model=ResourceDocument[WebhookResource],
    summary="Register a webhook endpoint",
    response_description="created; the signing secret is in data.attributes.secret, once",
)
def create_webhook(
    request: Request,
    body: Annotated[WebhookCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """The URL must be `https://` and resolve to public addresses only; deliveries are
    signed with the secret in the answer (Standard Webhooks), which is never shown again."""
    attributes = body.data.attributes
    actor.require_write()
    url = service.vet_url(attributes.url, app_state(request).settings.webhooks)
    with transaction(request) as session:
        registered = service.create_endpoint(
            session,
            actor,
            url=url,
            event_types=list(attributes.event_types),
            customer_id=attributes.customer_id,
        )
        endpoint = registered.endpoint
        answer = document(resource(endpoint, registered.secret), path_of(endpoint.id))
    return created(answer, path_of(endpoint.id))


@routes.get(
    "/{webhook_id}", response_model=ResourceDocument[WebhookResource], summary="Get a webhook"
)
def get_webhook(
    request: Request, webhook_id: WebhookId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(webhook_id, TYPE)
    with transaction(request) as session:
        endpoint = service.get_endpoint(session, actor, key)
        return JsonApiResponse(document(resource(endpoint), path_of(key)))


@routes.patch(
    "/{webhook_id}",
    response_model=ResourceDocument[WebhookResource],
    summary="Change, disable or enable a webhook",
)
def update_webhook(
    request: Request,
    webhook_id: WebhookId,
    body: Annotated[WebhookPatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """`enabled: true` on a disabled endpoint clears its failure count; what was still
    pending for it is then delivered, in order."""
    key = requests.parse_id(webhook_id, TYPE)
    requests.check_id(body.data.id, webhook_id)
    attributes = body.data.attributes
    given = attributes.model_fields_set
    url = None
    if "url" in given:
        # Checked before the transaction (a DNS lookup); it says nothing about the endpoint.
        actor.require_write()
        url = service.vet_url(attributes.url, app_state(request).settings.webhooks)
    changes = service.EndpointChanges(
        url=url,
        event_types=list(attributes.event_types) if "event_types" in given else None,
        enabled=attributes.enabled if "enabled" in given else None,
    )
    with transaction(request) as session:
        endpoint = service.get_endpoint(session, actor, key)
        service.update_endpoint(session, actor, endpoint, changes)
        return JsonApiResponse(document(resource(endpoint), path_of(key)))


@routes.delete("/{webhook_id}", status_code=204, summary="Delete a webhook")
def delete_webhook(
    request: Request, webhook_id: WebhookId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    """Its delivery log goes with it; nothing more is sent to it."""
    key = requests.parse_id(webhook_id, TYPE)
    with transaction(request) as session:
        endpoint = service.get_endpoint(session, actor, key)
        service.delete_endpoint(session, actor, endpoint)
    return Response(status_code=204)


@routes.get(
    "/{webhook_id}/deliveries",
    response_model=CollectionDocument[DeliveryResource],
    summary="The delivery log of a webhook",
)
def list_deliveries(
    request: Request,
    webhook_id: WebhookId,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
) -> Response:
    """Oldest first (the order they are sent in): status, attempts, the next attempt's time,
    the last answer's HTTP status and error, and the payload."""
    key = requests.parse_id(webhook_id, TYPE)
    query = page_query(size=page_size, after=page_after, before=page_before)
    with transaction(request) as session:
        endpoint = service.get_endpoint(session, actor, key)
        page = service.delivery_page(
            session, endpoint, size=query.size, after=query.after, before=query.before
        )
        links = page_links(f"{path_of(key)}/deliveries", query, page, lambda item: item.id)
        return JsonApiResponse(collection([delivery_resource(item) for item in page.items], links))

"""Webhook endpoints: register, list, change, delete; and the delivery log of each.

Who may do what (`access.visible_webhooks`): an admin manages every endpoint and may
register one for itself (no customer: it hears every customer's events) or for a customer;
a customer's token manages its customer's endpoints, which hear only that customer's events.
A domain-limited token sees no endpoint at all (404, as for sync sources); a read-only token
reads but never writes. Another customer's endpoint is indistinguishable from a missing one.

An endpoint URL passes the SSRF guard of every customer-supplied URL (`postmeister.outbound`):
HTTPS, and every address its host resolves to is public unless the operator allows private
networks (`POSTMEISTER_WEBHOOKS__ALLOW_PRIVATE_NETWORKS`). It is checked here, before the
transaction (`vet_url`: resolving a name can take seconds, SQLite's write lock should not
wait for it), and again at every delivery (`dispatch`), because DNS answers change.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmeister.config import WebhookSettings
from postmeister.domain.access import Actor, visible_webhooks
from postmeister.domain.audit import service as audit
from postmeister.domain.audit.rules import without_credentials
from postmeister.domain.audit.snapshots import Audited
from postmeister.domain.customers.service import get_customer
from postmeister.domain.paging import Page, keyset_page
from postmeister.domain.webhooks.rules import EVENT_TYPES, subscribed_types
from postmeister.errors import InvalidInput, NotFound
from postmeister.models import WebhookDelivery, WebhookEndpoint
from postmeister.outbound import OutboundFailed, https_url, resolve

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
PRIVATE_SETTING: Final = "POSTMEISTER_WEBHOOKS__ALLOW_PRIVATE_NETWORKS"
MAX_URL: Final = 2048
MAX_ID: Final = 2**31 - 1


def snapshot(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": without_credentials(row.url),  # `https://user:secret@host/` shows as the host
        "customer_id": row.customer_id,
        "event_types": list(row.event_types),
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "secret": row.secret,  # redacted by the trail: it only says that one was set
    }


WEBHOOK: Audited[WebhookEndpoint] = Audited(
    "webhook",
    snapshot,
    lambda e: e.customer_id,
    lambda _e: None,
    lambda e: without_credentials(e.url),
)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class VettedUrl:
    """An endpoint URL that passed the SSRF guard (`vet_url`); services take only these."""

    url: str


def check_url(url: str, settings: WebhookSettings) -> None:
    """`OutboundFailed` unless `url` is HTTPS and (unless private networks are allowed) its
    host resolves to public addresses only: the one rule for registration and delivery."""
    target = https_url(
        url, name="the webhook URL", why="deliveries are signed and sent over HTTPS only"
    )
    resolve(
        target,
        public_only=not settings.allow_private_networks,
        what="webhook endpoints",
        setting=PRIVATE_SETTING,
    )


def vet_url(url: str, settings: WebhookSettings) -> VettedUrl:
    """The URL, checked; `InvalidInput` (field `url`) saying why not."""
    if len(url) > MAX_URL:
        raise InvalidInput.single("url", f"longer than {MAX_URL} characters", "length")
    try:
        check_url(url, settings)
    except OutboundFailed as exc:
        raise InvalidInput.single("url", exc.reason, "url") from exc
    return VettedUrl(url)


def _event_types(wanted: list[str]) -> list[str]:
    known, unknown = subscribed_types(wanted)
    if unknown:
        raise InvalidInput.single(
            "event_types",
            f"unknown event types {', '.join(map(repr, unknown))}; known: {', '.join(EVENT_TYPES)}",
            "enum",
        )
    if not known:
        raise InvalidInput.single("event_types", "name at least one event type", "required")
    return known


def _owner(actor: Actor, customer_id: int | None) -> int | None:
    """Whose endpoint a new one is: an admin names a customer or none (its own)."""
    if actor.domain_ids is not None and not actor.is_admin:
        # A domain-limited token sees no webhooks at all, as it sees no sync sources.
        raise NotFound("customer", str(customer_id or actor.customer_id))
    if actor.is_admin:
        return customer_id
    if customer_id is not None and customer_id != actor.customer_id:
        raise NotFound("customer", str(customer_id))
    return actor.customer_id


@dataclass(frozen=True)
class Registered:
    endpoint: WebhookEndpoint
    secret: str  # shown once, in the answer to the creating request


def create_endpoint(
    session: Session,
    actor: Actor,
    *,
    url: VettedUrl,
    event_types: list[str],
    customer_id: int | None = None,
) -> Registered:
    actor.require_write()
    owner = _owner(actor, customer_id)
    if owner is not None and actor.is_admin:
        get_customer(session, owner)
    endpoint = WebhookEndpoint(
        customer_id=owner,
        url=url.url,
        event_types=_event_types(event_types),
        enabled=True,
        secret=new_secret(),
        consecutive_failures=0,
    )
    session.add(endpoint)
    session.flush()
    audit.changed(session, WEBHOOK, endpoint, "created")
    return Registered(endpoint, endpoint.secret)


def list_endpoint_page(
    session: Session, actor: Actor, *, size: int, after: int | None, before: int | None
) -> Page[WebhookEndpoint]:
    """The endpoints the actor may see, in id order."""
    return keyset_page(
        session, visible_webhooks(actor), WebhookEndpoint.id, size=size, after=after, before=before
    )


def get_endpoint(session: Session, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    if not 1 <= endpoint_id <= MAX_ID:
        raise NotFound("webhook", str(endpoint_id))
    found: WebhookEndpoint | None = session.scalar(
        visible_webhooks(actor).where(WebhookEndpoint.id == endpoint_id)
    )
    if found is None:
        raise NotFound("webhook", str(endpoint_id))
    return found


@dataclass(frozen=True)
class EndpointChanges:
    """None: unchanged."""

    url: VettedUrl | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


def update_endpoint(
    session: Session,
    actor: Actor,
    endpoint: WebhookEndpoint,
    changes: EndpointChanges,
    *,
    now: dt.datetime | None = None,
) -> WebhookEndpoint:
    """Enabling a disabled endpoint clears its failure count and reason; the deliveries
    still pending (queued before it was disabled) then go out in their order. Events that
    happened while it was disabled were not queued for it."""
    actor.require_write()
    before = snapshot(endpoint)
    if changes.url is not None:
        endpoint.url = changes.url.url
    if changes.event_types is not None:
        endpoint.event_types = _event_types(changes.event_types)
    if changes.enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = None
    elif changes.enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = "disabled through the API"
    if snapshot(endpoint) != before:
        endpoint.updated_at = now or dt.datetime.now(dt.UTC)
    session.flush()
    audit.changed(session, WEBHOOK, endpoint, "updated", before=before)
    return endpoint


def delete_endpoint(session: Session, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its delivery log go; nothing more is sent to it."""
    actor.require_write()
    before = snapshot(endpoint)
    session.delete(endpoint)
    session.flush()
    audit.changed(session, WEBHOOK, endpoint, "deleted", before=before, gone=True)


def delivery_page(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    size: int,
    after: int | None,
    before: int | None,
) -> Page[WebhookDelivery]:
    """The endpoint's delivery log, oldest first (the order they are sent in), keyset-paged."""
    statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    return keyset_page(
        session, statement, WebhookDelivery.id, size=size, after=after, before=before
    )

"""The dispatcher: sends the queued deliveries, at least once, in order per resource.

`deliver_due` is one pass (tests call it directly; `postmeister serve` runs `dispatching`,
a background loop every `poll_seconds`). Each round:

1. **Claim** (one short write transaction): the due deliveries — pending, `next_attempt_at`
   reached, not leased by a live dispatcher, endpoint enabled, and no *older* pending
   delivery for the same endpoint and resource (`ordering_key`), so the deliveries of one
   object reach an endpoint in the order of the changes. Each gets a lease (a random id and
   an expiry). On PostgreSQL the rows are taken `FOR UPDATE SKIP LOCKED`, so several
   controllers claim disjoint sets; on SQLite the write lock serialises the claims.
2. **Send**, outside any transaction: an HTTPS POST per delivery, signed the Standard
   Webhooks way, with the URL checked by the SSRF guard again (DNS may have changed since
   registration), a short timeout and no redirects followed.
3. **Settle** (a write transaction per delivery), only while the lease is still ours: a 2xx
   answer makes it `delivered`; anything else counts a failed attempt and schedules the next
   one with exponential backoff, and the `max_attempts`-th failure makes it `failed` and
   disables the endpoint (recorded in the audit trail).

A controller killed between claim and settle leaves a lease that expires; the delivery is
then claimed again and sent again (at least once: receivers deduplicate on `webhook-id`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Final

import anyio.to_thread
import httpx
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker
from standardwebhooks import Webhook

from postmeister.config import WebhookSettings
from postmeister.db import unit_of_work
from postmeister.domain.audit import service as audit
from postmeister.domain.webhooks.rules import backoff
from postmeister.domain.webhooks.service import PRIVATE_SETTING, WEBHOOK, snapshot
from postmeister.models import WebhookDelivery, WebhookEndpoint
from postmeister.ops import context
from postmeister.outbound import (
    OutboundFailed,
    https_url,
    pinned_request,
    resolve,
    ssl_context,
    transport_reason,
)

log = logging.getLogger(__name__)

USER_AGENT: Final = "postmeister-webhooks"
EXCERPT_BYTES: Final = 200  # of a failed answer's body, kept in the delivery log
MAX_ROUNDS: Final = 100  # claims per pass: a busy queue does not keep one pass forever


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    lease_id: str
    url: str
    secret: str
    message_id: str
    payload: str


@dataclass(frozen=True)
class Attempt:
    status: int | None  # the HTTP status, None when no answer came
    error: str | None  # None: delivered

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PassResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _due(moment: dt.datetime) -> list[ColumnElement[bool]]:
    older = aliased(WebhookDelivery)
    blocked = exists().where(
        older.endpoint_id == WebhookDelivery.endpoint_id,
        older.ordering_key == WebhookDelivery.ordering_key,
        older.status == "pending",
        older.id < WebhookDelivery.id,
    )
    enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
    return [
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= moment,
        or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= moment),
        WebhookDelivery.endpoint_id.in_(enabled),
        ~blocked,
    ]


def claim(
    sessions: sessionmaker[Session], settings: WebhookSettings, moment: dt.datetime
) -> list[Claimed]:
    """Lease up to `batch_size` due deliveries to this dispatcher (see the module doc)."""
    conditions = _due(moment)
    with unit_of_work(sessions, write=False) as session:
        # A read first, so that an idle controller never takes SQLite's write lock.
        if session.scalar(select(WebhookDelivery.id).where(*conditions).limit(1)) is None:
            return []
    with unit_of_work(sessions) as session:
        rows = list(
            session.scalars(
                select(WebhookDelivery)
                .where(*conditions)
                .order_by(WebhookDelivery.id)
                .limit(settings.batch_size)
                .with_for_update(skip_locked=True, of=WebhookDelivery)
            )
        )
        if not rows:
            return []
        # Sent one after another: the lease covers every send's timeout.
        lease = dt.timedelta(seconds=settings.lease_seconds + settings.timeout_seconds * len(rows))
        endpoints = {
            e.id: e
            for e in session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))
            )
        }
        claimed = []
        for row in rows:
            row.lease_id = secrets.token_hex(16)
            row.leased_until = moment + lease
            endpoint = endpoints[row.endpoint_id]
            claimed.append(
                Claimed(
                    delivery_id=row.id,
                    lease_id=row.lease_id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    message_id=row.message_id,
                    payload=row.payload,
                )
            )
        return claimed


def _excerpt(response: httpx.Response) -> str:
    received = b""
    for chunk in response.iter_raw():
        received += chunk
        if len(received) >= EXCERPT_BYTES:
            break
    text = received[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()


def send(delivery: Claimed, settings: WebhookSettings) -> Attempt:
    """POST one delivery; never raises. The URL passes the SSRF guard again first, and the
    connection goes to the address that was checked."""
    try:
        target = https_url(
            delivery.url, name="the webhook URL", why="deliveries are sent over HTTPS only"
        )
        addresses = resolve(
            target,
            public_only=not settings.allow_private_networks,
            what="webhook endpoints",
            setting=PRIVATE_SETTING,
        )
        sent_at = dt.datetime.now(dt.UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(math.floor(sent_at.timestamp())),
            "webhook-signature": Webhook(delivery.secret).sign(
                delivery.message_id, sent_at, delivery.payload
            ),
        }
        with pinned_request(
            "POST",
            target,
            addresses,
            headers,
            context=ssl_context(settings.ca_bundle),
            timeout=settings.timeout_seconds,
            content=delivery.payload.encode("utf-8"),
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return Attempt(status, None)
            excerpt = _excerpt(response)
        answer = f"HTTP {status} {response.reason_phrase}".rstrip()
        return Attempt(status, f"{answer}: {excerpt}" if excerpt else answer)
    except OutboundFailed as exc:
        return Attempt(None, exc.reason)
    except httpx.TimeoutException:
        return Attempt(None, f"no answer within {settings.timeout_seconds:g} seconds")
    except httpx.TransportError as exc:
        return Attempt(None, transport_reason(exc, httpx.URL(delivery.url), settings.ca_bundle))
    except Exception as exc:  # a bug must not lose the delivery: it is retried as a failure
        log.exception("webhook delivery %s failed unexpectedly", delivery.message_id)
        return Attempt(None, f"internal error ({type(exc).__name__})")


def settle(
    sessions: sessionmaker[Session],
    settings: WebhookSettings,
    delivery: Claimed,
    attempt: Attempt,
    moment: dt.datetime,
    result: PassResult,
) -> None:
    """Record the attempt, if the delivery is still ours (not deleted, lease not taken over)."""
    with unit_of_work(sessions) as session:
        row = session.get(WebhookDelivery, delivery.delivery_id)
        if row is None or row.lease_id != delivery.lease_id:
            return
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        assert endpoint is not None  # deliveries go with their endpoint (cascade)
        row.attempts += 1
        row.last_attempt_at = moment
        row.last_status = attempt.status
        row.lease_id = None
        row.leased_until = None
        if attempt.ok:
            row.status = "delivered"
            row.delivered_at = moment
            row.last_error = None
            endpoint.consecutive_failures = 0
            result.delivered += 1
            return
        row.last_error = (attempt.error or "")[:500]
        endpoint.consecutive_failures += 1
        if row.attempts < settings.max_attempts:
            row.next_attempt_at = moment + backoff(
                row.attempts,
                base_seconds=settings.backoff_seconds,
                max_seconds=settings.max_backoff_seconds,
            )
            result.retried += 1
            return
        row.status = "failed"
        result.failed += 1
        if endpoint.enabled:
            _disable(session, endpoint, row)
            result.disabled.append(endpoint.id)


def _disable(session: Session, endpoint: WebhookEndpoint, row: WebhookDelivery) -> None:
    before = snapshot(endpoint)
    endpoint.enabled = False
    endpoint.disabled_reason = (
        f"delivery {row.message_id} ({row.event_type}) failed {row.attempts} times; "
        f"last: {row.last_error}"
    )[:500]
    session.flush()
    audit.changed(session, WEBHOOK, endpoint, "disabled", before=before)
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)


def deliver_due(
    sessions: sessionmaker[Session],
    settings: WebhookSettings,
    *,
    now: dt.datetime | None = None,
) -> PassResult:
    """Send every delivery that is due at `now` (default: the current time), claiming again
    until nothing is due, so the next change of a resource follows the previous one in the
    same pass. Never raises for one delivery."""
    result = PassResult()
    with context.acting("scheduler", origin_id="webhooks", label="deliver webhooks"):
        for _round in range(MAX_ROUNDS):
            moment = now or _now()
            claimed = claim(sessions, settings, moment)
            if not claimed:
                break
            for delivery in claimed:
                attempt = send(delivery, settings)
                settle(sessions, settings, delivery, attempt, now or _now(), result)
    return result


@asynccontextmanager
async def dispatching(
    sessions: sessionmaker[Session], settings: WebhookSettings
) -> AsyncIterator[None]:
    """`deliver_due` at once (what a previous run left queued), then every `poll_seconds`,
    in a worker thread, until the block ends."""

    async def loop() -> None:
        while True:
            started = time.monotonic()
            try:
                await anyio.to_thread.run_sync(lambda: deliver_due(sessions, settings))
            except Exception:  # the database was away: try again at the next tick
                log.exception("webhook dispatch failed")
            await asyncio.sleep(max(settings.poll_seconds - (time.monotonic() - started), 0.05))

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

"""Who is asking: the actor behind a request, and the one place where tenant scoping lives.

Every query for customer data goes through `visible_domains()` (or the statement of its
kind below: packages, tokens, sync sources, audit events); an object outside the
actor's scope is indistinguishable from a missing one (the services raise `NotFound`).
The API services, the sync bulk writer and the spoofing-whitelist rule all ask here, so a
second, drifting copy of "which domains are this customer's" cannot exist.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Select, and_, exists, false, not_, select

from postmeister.errors import PermissionDenied
from postmeister.models import (
    ApiToken,
    ApiTokenDomain,
    AuditEvent,
    Domain,
    Package,
    SyncSource,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class Actor:
    """The authenticated caller. `customer_id is None` only for admins."""

    customer_id: int | None
    is_admin: bool = False
    read_only: bool = False
    # None: every domain of the customer (or every domain at all, for an admin).
    domain_ids: frozenset[int] | None = None
    token_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        """The CLI and internal jobs act with full rights."""
        return cls(customer_id=None, is_admin=True)

    @classmethod
    def for_customer(cls, customer_id: int) -> Actor:
        """The customer itself, e.g. behind its sync document: sees all its domains, no more."""
        return cls(customer_id=customer_id)

    def require_write(self) -> None:
        if self.read_only:
            raise PermissionDenied("this API token is read-only")


def visible_domains(actor: Actor) -> Select[Domain]:
    """The domains this actor may see; callers add their own conditions."""
    statement = select(Domain)
    if not actor.is_admin:
        statement = statement.where(Domain.customer_id == actor.customer_id)
    if actor.domain_ids is not None:
        statement = statement.where(Domain.id.in_(actor.domain_ids))
    return statement


def hosted_elsewhere(customer_id: int, names: Collection[str]) -> Select[str]:
    """The names among `names` (A-labels) that are hosted here by any other customer.

    The complement of `visible_domains` for that customer, so the two can never disagree.
    """
    own = visible_domains(Actor.for_customer(customer_id)).with_only_columns(Domain.id)
    return select(Domain.name).where(Domain.name.in_(list(names)), Domain.id.not_in(own))


def visible_audit_events(actor: Actor) -> Select[AuditEvent]:
    """The audit events this actor may read: an admin all of them, a customer those of its
    own objects (`customer_id`), a domain-limited token only those about its domains."""
    statement = select(AuditEvent)
    if not actor.is_admin:
        statement = statement.where(AuditEvent.customer_id == actor.customer_id)
    if actor.domain_ids is not None:
        if not actor.domain_ids:
            return statement.where(false())
        statement = statement.where(AuditEvent.domain_id.in_(actor.domain_ids))
    return statement


def visible_packages(actor: Actor) -> Select[Package]:
    """The packages this actor may see; callers add their own conditions."""
    statement = select(Package)
    if not actor.is_admin:
        statement = statement.where(Package.customer_id == actor.customer_id)
    if actor.domain_ids is not None:
        holding = visible_domains(actor).with_only_columns(Domain.package_id)
        statement = statement.where(Package.id.in_(holding))
    return statement


def visible_tokens(actor: Actor) -> Select[ApiToken]:
    """The tokens this actor may see and manage; callers add their own conditions."""
    statement = select(ApiToken)
    if actor.is_admin:
        return statement
    statement = statement.where(ApiToken.customer_id == actor.customer_id)
    if actor.domain_ids is not None:
        outside = exists().where(
            ApiTokenDomain.token_id == ApiToken.id,
            ApiTokenDomain.domain_id.not_in(actor.domain_ids),
        )
        statement = statement.where(and_(ApiToken.domain_limited, not_(outside)))
    return statement


def visible_sync_sources(actor: Actor) -> Select[SyncSource]:
    """The sync sources this actor may see: a customer its own, an admin all; a
    domain-limited token none (a source may cover any of the customer's domains)."""
    statement = select(SyncSource)
    if not actor.is_admin:
        if actor.domain_ids is not None:
            return statement.where(false())  # a domain-limited token sees no source
        statement = statement.where(SyncSource.customer_id == actor.customer_id)
    return statement


def visible_webhooks(actor: Actor) -> Select[WebhookEndpoint]:
    """The webhook endpoints this actor may see: an admin all of them, a customer its own.
    Endpoints belong to the customer as a whole, so a domain-limited token sees none (they
    would show events of domains outside its limit)."""
    statement = select(WebhookEndpoint)
    if not actor.is_admin:
        if actor.domain_ids is not None:
            return statement.where(false())
        statement = statement.where(WebhookEndpoint.customer_id == actor.customer_id)
    return statement

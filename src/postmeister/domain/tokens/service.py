"""API tokens: random bearer secrets, stored as SHA-256, resolved to an `Actor`.

A plain SHA-256 is right here (unlike for passwords): the secret has 256 bits of entropy,
so it cannot be guessed, and a deterministic hash lets us find the row with one lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.customers.service import get_customer
from postmeister.domain.domains.service import get_domain
from postmeister.errors import InvalidInput, Unauthenticated
from postmeister.models import ApiToken, ApiTokenDomain

TOKEN_PREFIX = "pm_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session,
    *,
    admin: bool = False,
    customer_id: int | None = None,
    read_only: bool = False,
    domains: list[str] | None = None,
    expires_at: dt.datetime | None = None,
    label: str | None = None,
) -> IssuedToken:
    if admin == (customer_id is not None):
        raise InvalidInput.single("customer", "a token is either an admin token or a customer's")
    if admin and domains:
        raise InvalidInput.single("domain", "admin tokens cannot be limited to domains")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput.single("expires", "the expiry needs a time zone (e.g. 'Z')")
        if expires_at <= dt.datetime.now(dt.UTC):
            raise InvalidInput.single("expires", "the expiry lies in the past")
    domain_ids: list[int] = []
    if customer_id is not None:
        get_customer(session, customer_id)
        owner = Actor(customer_id=customer_id)
        domain_ids = [get_domain(session, owner, name).id for name in domains or []]
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        customer_id=customer_id,
        is_admin=admin,
        read_only=read_only,
        domain_limited=bool(domain_ids),
        token_hash=_digest(secret),
        expires_at=expires_at,
        label=label,
        domains=[ApiTokenDomain(domain_id=domain_id) for domain_id in domain_ids],
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def authenticate(session: Session, secret: str, *, now: dt.datetime | None = None) -> Actor:
    """The actor for a bearer secret; unknown and expired tokens look the same."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    moment = now or dt.datetime.now(dt.UTC)
    if token is None:
        raise Unauthenticated("unknown or expired API token")
    if token.expires_at is not None and token.expires_at <= moment:
        raise Unauthenticated("unknown or expired API token")
    limited = frozenset(link.domain_id for link in token.domains) if token.domain_limited else None
    return Actor(
        customer_id=token.customer_id,
        is_admin=token.is_admin,
        read_only=token.read_only,
        domain_ids=limited,
        token_id=token.id,
    )


def any_token_exists(session: Session) -> bool:
    return session.scalar(select(ApiToken.id).limit(1)) is not None

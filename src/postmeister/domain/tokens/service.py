"""API tokens: random bearer secrets, stored as SHA-256, resolved to an `Actor`.

A plain SHA-256 is right here (unlike for passwords): the secret has 256 bits of entropy,
so it cannot be guessed, and a deterministic hash lets us find the row with one lookup.

Every request looks its token up again (no cache), so a revoked token, an expired one and
one whose customer is suspended are refused on the very next request, all as "unknown".

Who may manage which tokens (`visible_tokens`, `issue_token`): an admin, all of them; a
customer's token, the tokens of its customer that are no wider than itself — a token
limited to domains sees and creates only tokens limited to some of those domains. No
customer token ever creates an admin token, a token of another customer, one without an
expiry when it has one itself, or (being read-only) any token at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from postmeister.domain.access import Actor, visible_tokens
from postmeister.domain.audit import service as audit
from postmeister.domain.audit import snapshots
from postmeister.domain.customers.service import get_customer
from postmeister.domain.domains.service import get_domain
from postmeister.domain.paging import Page, keyset_page
from postmeister.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from postmeister.models import ApiToken, ApiTokenDomain, Customer, Domain

TOKEN_PREFIX = "pm_"  # noqa: S105 - a public prefix, not a secret
MAX_LABEL: Final = 200
# `last_used_at` is written at most this often per token, so that reading does not write
# on every request (SQLite has one writer).
USE_RESOLUTION: Final = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class Authentication:
    actor: Actor
    # The token's last use is older than `USE_RESOLUTION`: the caller records this use.
    use_due: bool
    label: str | None = None  # what the audit trail names the token by


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
    """A new token with the rights given, for the CLI (the system) and `issue_token`."""
    if admin == (customer_id is not None):
        raise InvalidInput.single("customer_id", "a token is either an admin token or a customer's")
    if admin and domains:
        raise InvalidInput.single("domains", "admin tokens cannot be limited to domains")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput.single("expires_at", "the expiry needs a time zone (e.g. 'Z')")
        if expires_at <= dt.datetime.now(dt.UTC):
            raise InvalidInput.single("expires_at", "the expiry lies in the past")
    if label is not None and (len(label) > MAX_LABEL or "\x00" in label):
        raise InvalidInput.single("label", f"at most {MAX_LABEL} characters", "length")
    domain_ids: list[int] = []
    if customer_id is not None:
        get_customer(session, customer_id)
        owner = Actor(customer_id=customer_id)
        for name in domains or []:
            try:
                domain_ids.append(get_domain(session, owner, name, field="domains").id)
            except NotFound as exc:
                raise InvalidInput.single(
                    "domains", f"{name!r} is not a domain of customer {customer_id}", "exists"
                ) from exc
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        customer_id=customer_id,
        is_admin=admin,
        read_only=read_only,
        domain_limited=bool(domain_ids),
        token_hash=_digest(secret),
        expires_at=expires_at,
        label=label,
        domains=[ApiTokenDomain(domain_id=domain_id) for domain_id in sorted(set(domain_ids))],
    )
    session.add(token)
    session.flush()
    audit.changed(session, snapshots.API_TOKEN, token, "created")
    return IssuedToken(token=token, secret=secret)


# Every request starts here, so the statement is built once, and it reads columns rather
# than an ApiToken object (no identity map, no instance state: the check reads a few values
# and keeps none). A domain-limited token's links are a second statement, only for it.
_BY_DIGEST: Final = (
    select(
        ApiToken.id,
        ApiToken.customer_id,
        ApiToken.is_admin,
        ApiToken.read_only,
        ApiToken.domain_limited,
        ApiToken.label,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        Customer.suspended_at,
    )
    .outerjoin(Customer, Customer.id == ApiToken.customer_id)
    .where(ApiToken.token_hash == bindparam("digest"))
)


def check_token(session: Session, secret: str, *, now: dt.datetime | None = None) -> Authentication:
    """The actor for a bearer secret. Unknown, expired, revoked and suspended-customer
    tokens all look the same."""
    moment = now or dt.datetime.now(dt.UTC)
    token = session.execute(_BY_DIGEST, {"digest": _digest(secret)}).first()
    if token is None:
        raise Unauthenticated("unknown or expired API token")
    if (
        token.revoked_at is not None
        or token.suspended_at is not None
        or (token.expires_at is not None and token.expires_at <= moment)
    ):
        raise Unauthenticated("unknown or expired API token")
    limited = (
        frozenset(session.scalars(select(ApiTokenDomain.domain_id).filter_by(token_id=token.id)))
        if token.domain_limited
        else None
    )
    actor = Actor(
        customer_id=token.customer_id,
        is_admin=token.is_admin,
        read_only=token.read_only,
        domain_ids=limited,
        token_id=token.id,
    )
    due = token.last_used_at is None or token.last_used_at <= moment - USE_RESOLUTION
    return Authentication(actor=actor, use_due=due, label=token.label)


def authenticate(session: Session, secret: str, *, now: dt.datetime | None = None) -> Actor:
    return check_token(session, secret, now=now).actor


def record_use(session: Session, token_id: int, *, now: dt.datetime | None = None) -> None:
    """Set `last_used_at`, unless another request did within `USE_RESOLUTION` (one
    conditional UPDATE, so concurrent requests write it once)."""
    moment = now or dt.datetime.now(dt.UTC)
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= moment - USE_RESOLUTION),
        )
        .values(last_used_at=moment),
        execution_options={"synchronize_session": False},
    )


def any_token_exists(session: Session) -> bool:
    return session.scalar(select(ApiToken.id).limit(1)) is not None


# ---------------------------------------------------------------------------- as an actor


def get_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    token = session.scalar(visible_tokens(actor).where(ApiToken.id == token_id))
    if token is None:
        raise NotFound("api-token", str(token_id))
    return token


def list_token_page(
    session: Session,
    actor: Actor,
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
    customer_id: int | None = None,
) -> Page[ApiToken]:
    statement = visible_tokens(actor)
    if customer_id is not None:
        statement = statement.where(ApiToken.customer_id == customer_id)
    return keyset_page(session, statement, ApiToken.id, size=size, after=after, before=before)


@dataclass(frozen=True)
class TokenRequest:
    """What the caller asks for; `customer_id` None means its own customer (customers)."""

    admin: bool = False
    customer_id: int | None = None
    read_only: bool = False
    domains: tuple[str, ...] = ()
    expires_at: dt.datetime | None = None
    label: str | None = None


def issue_token(session: Session, actor: Actor, wanted: TokenRequest) -> IssuedToken:
    """A new token for `actor`, never wider than the actor's own rights (module docstring)."""
    actor.require_write()
    if actor.is_admin:
        return create_token(
            session,
            admin=wanted.admin,
            customer_id=wanted.customer_id,
            read_only=wanted.read_only,
            domains=list(wanted.domains),
            expires_at=wanted.expires_at,
            label=wanted.label,
        )
    if wanted.admin:
        raise PermissionDenied("a customer's token cannot create an admin token")
    if wanted.customer_id is not None and wanted.customer_id != actor.customer_id:
        raise NotFound("customer", str(wanted.customer_id))
    assert actor.customer_id is not None  # a non-admin actor always has its customer
    domains = list(wanted.domains)
    if actor.domain_ids is not None:
        if not domains:
            raise InvalidInput.single(
                "domains", "this token is limited to domains: name some of them", "subset"
            )
        for name in domains:
            try:
                get_domain(session, actor, name, field="domains")
            except NotFound as exc:
                raise InvalidInput.single(
                    "domains", f"{name!r} is not one of this token's domains", "subset"
                ) from exc
    own = session.get(ApiToken, actor.token_id) if actor.token_id is not None else None
    if (
        own is not None
        and own.expires_at is not None
        and (wanted.expires_at is None or wanted.expires_at > own.expires_at)
    ):
        raise InvalidInput.single(
            "expires_at",
            f"this token expires at {own.expires_at.isoformat()}; a new one must expire no later",
            "subset",
        )
    return create_token(
        session,
        customer_id=actor.customer_id,
        read_only=wanted.read_only,
        domains=domains,
        expires_at=wanted.expires_at,
        label=wanted.label,
    )


def revoke_token(
    session: Session, actor: Actor, token: ApiToken, *, now: dt.datetime | None = None
) -> ApiToken:
    """Refused from the next request on; the row stays, with `revoked_at`. Revoking twice
    changes nothing."""
    actor.require_write()
    if token.revoked_at is None:
        before = snapshots.api_token(token)
        token.revoked_at = now or dt.datetime.now(dt.UTC)
        session.flush()
        audit.changed(session, snapshots.API_TOKEN, token, "revoked", before=before)
    return token


def domain_names(session: Session, tokens: list[ApiToken]) -> dict[int, list[str]]:
    """Per token id, the display names of the domains it is limited to (one query)."""
    links = {link.domain_id: token.id for token in tokens for link in token.domains}
    found: dict[int, list[str]] = {token.id: [] for token in tokens}
    if not links:
        return found
    rows = session.execute(
        select(ApiTokenDomain.token_id, Domain.display_name)
        .join(Domain, Domain.id == ApiTokenDomain.domain_id)
        .where(ApiTokenDomain.token_id.in_([token.id for token in tokens]))
        .order_by(Domain.name)
    )
    for token_id, name in rows:
        found[token_id].append(name)
    return found

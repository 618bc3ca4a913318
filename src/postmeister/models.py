"""The relational schema: one SQLAlchemy model per table, shared by every dialect.

The Postfix/Dovecot contract is NOT these tables but the versioned views that
`postmeister.dataplane.contract` defines on top of them; mail servers never read
the tables directly, so the tables may change as long as the views keep their meaning.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from postmeister.db import UtcDateTime

# Deterministic constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Tables whose integer ids are generated: on SQLite, AUTOINCREMENT so that the id of a
# deleted row is never handed out again (without it SQLite reuses the largest id once that
# row is gone), and a stale id never names a newer object. PostgreSQL's sequences never
# reuse ids anyway. Migration 0006 rebuilt the existing SQLite tables this way.
GENERATED_IDS = {"sqlite_autoincrement": True}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, default=_now, server_default=func.current_timestamp()
    )


class Customer(Timestamped, Base):
    __tablename__ = "customers"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Set while suspended (migration 0009): its mailboxes cannot log in or send (the data
    # plane's login views leave them out), its API tokens are refused; mail still arrives.
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Set by an admin (migration 0014): the customer's web users must use TOTP to log in.
    totp_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    packages: Mapped[list[Package]] = relationship(back_populates="customer")


class Package(Timestamped, Base):
    """A hosting package: groups a customer's domains; limits live here."""

    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # Limits; None means no limit. Judged by `domain.addresses.rules` on every write path.
    max_addresses: Mapped[int | None] = mapped_column(Integer)
    max_mailboxes: Mapped[int | None] = mapped_column(Integer)
    # The sum of the package's mailbox quotas (a mailbox without a quota counts as all of it).
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)  # of one mailbox
    max_app_passwords: Mapped[int | None] = mapped_column(Integer)  # per mailbox
    # Sending limits (migration 0015), each an integer or None (no limit): of every mailbox
    # (unless it has a `SendingLimitOverride`) and of each domain's mailboxes together.
    # The sender milter judges them on submission (`domain.sending_limits`).
    # A new package gets `sending_limits.rules.PACKAGE_DEFAULTS` unless its creator says
    # otherwise: a secure default, not none.
    mailbox_messages_per_hour: Mapped[int | None] = mapped_column(Integer)
    mailbox_messages_per_day: Mapped[int | None] = mapped_column(Integer)
    mailbox_recipients_per_hour: Mapped[int | None] = mapped_column(Integer)
    mailbox_recipients_per_day: Mapped[int | None] = mapped_column(Integer)
    domain_messages_per_hour: Mapped[int | None] = mapped_column(Integer)
    domain_messages_per_day: Mapped[int | None] = mapped_column(Integer)
    domain_recipients_per_hour: Mapped[int | None] = mapped_column(Integer)
    domain_recipients_per_day: Mapped[int | None] = mapped_column(Integer)
    # May a mailbox owner change the mailbox's own forwarding in the web self-service
    # (migration 0017)? Off by default: forwarding lets mail leave the provider.
    allow_self_service_forwarding: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0"
    )

    customer: Mapped[Customer] = relationship(back_populates="packages")
    __table_args__ = (
        UniqueConstraint("customer_id", "name", name="uq_packages_customer_name"),
        GENERATED_IDS,
    )


class Domain(Timestamped, Base):
    """A mail domain. `name` is the IDNA A-label in lowercase; `display_name` is as entered."""

    __tablename__ = "domains"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Denormalised from the package so that tenant scoping is one indexed comparison.
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(253), unique=True)
    display_name: Mapped[str] = mapped_column(String(253))
    # Set when a Basic JSON sync source manages this domain (API writes then answer 409).
    sync_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_sources.id", ondelete="SET NULL"), index=True
    )
    # An alias domain: mail to x@this goes where x@alias_of goes (migration 0010). One level
    # only, same customer (`domain.domains.service`); the data plane reads it through views.
    alias_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), index=True
    )

    catchall_targets: Mapped[list[CatchallTarget]] = relationship(
        order_by="CatchallTarget.position", cascade="all, delete-orphan", passive_deletes=True
    )
    alias_of: Mapped[Domain | None] = relationship(
        remote_side="Domain.id", back_populates="aliases"
    )
    aliases: Mapped[list[Domain]] = relationship(
        back_populates="alias_of", order_by="Domain.name", passive_deletes=True
    )


class DkimKey(Base):
    """A DKIM key of a domain (`postmeister.domain.dkim`).

    Signing: the key with `retired_at` NULL, one per domain and algorithm; OpenDKIM reads
    it through the contract view `dataplane_v1_dkim_signing_keys`. Published (the TXT
    record to keep in DNS): the signing key, and a retired one until `published_until`.
    The private key is PEM (PKCS #8); it leaves the database only towards the signer.
    """

    __tablename__ = "dkim_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(10))  # rsa | ed25519
    private_key: Mapped[str] = mapped_column(Text)
    # The `p=` value of the TXT record (base64).
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now)
    # Set by a rotation: it no longer signs, and is published until `published_until`.
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    published_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_selector"),
        GENERATED_IDS,
    )


class CatchallTarget(Base):
    """One recipient of mail to an unknown local part of a domain, kept in list order."""

    __tablename__ = "catchall_targets"

    domain_id: Mapped[int] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(254))


class MailNode(Timestamped, Base):
    """A mail node (Postfix + Dovecot) that mailboxes can be homed on (migration 0020).

    `address` is where the other nodes reach it on the node network: Postfix there delivers
    to its LMTP listener (`lmtp_port`), Dovecot there proxies IMAP and POP3 logins to it
    (the standard ports). `state`: `active` nodes take new mailboxes; a `draining` one
    keeps serving its mailboxes but gets no new ones.
    """

    __tablename__ = "mail_nodes"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    lmtp_port: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    state: Mapped[str] = mapped_column(String(16), default="active", server_default="active")


class Address(Timestamped, Base):
    """One email address: a mailbox (stores mail) or a forward (only forwards)."""

    __tablename__ = "addresses"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    # Lowercase `local@a-label`; the unique key that makes addresses case-insensitive.
    address: Mapped[str] = mapped_column(String(254), unique=True)
    local_part: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "mailbox" | "forward"
    description: Mapped[str | None] = mapped_column(Text)
    antispam: Mapped[str] = mapped_column(String(32), default="reject", server_default="reject")
    # Mailbox only. Crypt-format string ($argon2id$…, $6$…, $y$…); never plaintext.
    password_hash: Mapped[str | None] = mapped_column(String(512))
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    submission_disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Mailbox only: mail to `local+anything@domain` is delivered here too (migration 0007).
    subaddress_extension: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Mailbox only: the mail node that stores it (migration 0020). NULL: unplaced, as every
    # mailbox of a single-node installation is; every node then delivers it locally.
    # RESTRICT: a node that still holds mailboxes cannot be deleted from under them.
    home_node_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_nodes.id", ondelete="RESTRICT"), index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime,
        default=_now,
        onupdate=_now,
        server_default=func.current_timestamp(),
    )

    domain: Mapped[Domain] = relationship()
    forward_targets: Mapped[list[ForwardTarget]] = relationship(
        order_by="ForwardTarget.position", cascade="all, delete-orphan", passive_deletes=True
    )
    sender_permissions: Mapped[list[SenderPermission]] = relationship(
        order_by="SenderPermission.position", cascade="all, delete-orphan", passive_deletes=True
    )
    autoresponder: Mapped[Autoresponder | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    usage: Mapped[MailboxUsage | None] = relationship(
        primaryjoin="Address.address == foreign(MailboxUsage.username)", viewonly=True
    )


class ForwardTarget(Base):
    """One recipient of a forward (or extra recipient of a mailbox), kept in list order."""

    __tablename__ = "forward_targets"

    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(254))


class SenderPermission(Base):
    """One entry of a mailbox's spoofing whitelist: an address, a domain, or `*`."""

    __tablename__ = "sender_permissions"

    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(254), index=True)


class AppPassword(Timestamped, Base):
    """An extra, revocable password for one mailbox (one per device/application)."""

    __tablename__ = "app_passwords"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), index=True
    )
    device: Mapped[str] = mapped_column(String(200))
    application: Mapped[str] = mapped_column(String(200))
    # Hash of a high-entropy secret, in a form the data plane can match by equality.
    secret_hash: Mapped[str] = mapped_column(String(256), unique=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(64))

    address: Mapped[Address] = relationship(viewonly=True)


class Autoresponder(Base):
    """Vacation reply of a mailbox; `active` is switched by the scheduler on the dates."""

    __tablename__ = "autoresponders"

    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    activates: Mapped[dt.date | None] = mapped_column(Date)
    expires: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime,
        default=_now,
        onupdate=_now,
        server_default=func.current_timestamp(),
    )


class MailboxUsage(Base):
    """Current quota usage, written by Dovecot's quota dict (keyed by login name)."""

    __tablename__ = "mailbox_usage"

    username: Mapped[str] = mapped_column(String(254), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    messages: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SendingLimitOverride(Base):
    """A mailbox's own sending limits; a None limit is its package's (migration 0015)."""

    __tablename__ = "sending_limit_overrides"

    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    messages_per_hour: Mapped[int | None] = mapped_column(Integer)
    messages_per_day: Mapped[int | None] = mapped_column(Integer)
    recipients_per_hour: Mapped[int | None] = mapped_column(Integer)
    recipients_per_day: Mapped[int | None] = mapped_column(Integer)


class SendingCounter(Base):
    """What one mailbox, or one domain's mailboxes together, sent in one period.

    Written by the sender milter of every mail node (`dataplane.contract.COUNT_SENDING`),
    so that all nodes count against the same limits; read by the controller.
    """

    __tablename__ = "sending_counters"

    # "local@a-label" for a mailbox, "@a-label" for all mailboxes of a domain.
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    # "2026-12-01T22" (an hour, UTC) or "2026-12-01" (a day, UTC).
    period: Mapped[str] = mapped_column(String(13), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SendingLimitHit(Base):
    """A limit that deferred a message: written once per subject, period and limit by the
    sender milter, turned into an audit event and a webhook by the `sending-limits` job."""

    __tablename__ = "sending_limit_hits"
    __table_args__ = (
        UniqueConstraint("subject", "period", "limit_name", name="uq_sending_limit_hits_once"),
        GENERATED_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    period: Mapped[str] = mapped_column(String(13))
    limit_name: Mapped[str] = mapped_column(String(32))
    limit_value: Mapped[int] = mapped_column(Integer)
    hit_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, default=_now, server_default=func.current_timestamp()
    )
    reported_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, index=True)


class SyncSource(Timestamped, Base):
    """A customer's Basic JSON document URL, polled by the scheduler."""

    __tablename__ = "sync_sources"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # A held-back document (mass deletion) waits for an operator's confirmation: `pending`
    # names the document that was held, `confirmed` the one the operator allowed.
    pending_document_sha256: Mapped[str | None] = mapped_column(String(64))
    confirmed_document_sha256: Mapped[str | None] = mapped_column(String(64))


class SyncRun(Base):
    """The recorded outcome of one sync attempt."""

    __tablename__ = "sync_runs"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_sources.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    result: Mapped[str] = mapped_column(
        String(32)
    )  # applied | unchanged | rejected | failed | held
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[str | None] = mapped_column(Text)  # JSON list of messages


class ApiToken(Timestamped, Base):
    """A bearer token. Only the SHA-256 of the (256-bit random) secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    read_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Kept apart from the link rows so that a token limited to domains that were all
    # deleted sees nothing, instead of falling back to "every domain".
    domain_limited: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Revoked tokens stay as a record and are refused like unknown ones (migration 0009).
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Written at most once a minute per token (`tokens.service.record_use`).
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    domains: Mapped[list[ApiTokenDomain]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class ApiTokenDomain(Base):
    """Restricts a token to some of its customer's domains (none listed: all of them)."""

    __tablename__ = "api_token_domains"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    domain_id: Mapped[int] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True
    )


class JobLock(Base):
    """Last run of each periodic job; the row lock makes a job run once across controllers."""

    __tablename__ = "job_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """One change, written in the transaction of the change itself (`domain.audit`).

    No foreign keys: the trail outlives what it describes (a deleted customer's events stay
    until retention removes them). `customer_id` and `domain_id` decide who may read it.
    `changes` maps each field to `[before, after]`; secrets are never stored, only the
    fact that one changed (`"[redacted]"`).
    """

    __tablename__ = "audit_events"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    domain_id: Mapped[int | None] = mapped_column(Integer)
    # token | cli | sync | scheduler | web | system
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(100))
    actor_label: Mapped[str | None] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(100))
    # What a person recognises: the address, the domain name, the customer's name.
    resource_name: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict[str, list[Any]]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_address: Mapped[str | None] = mapped_column(String(64))


Index("ix_addresses_domain_address", Address.domain_id, Address.address)
Index("ix_audit_events_customer", AuditEvent.customer_id, AuditEvent.id)
Index("ix_audit_events_resource", AuditEvent.resource, AuditEvent.resource_id)


class WebhookEndpoint(Timestamped, Base):
    """An HTTPS URL that receives signed deliveries of some event types (`domain.webhooks`).

    `customer_id` None: an admin's endpoint, which may receive every customer's events.
    `secret` (`whsec_...`) is the one secret stored as it is: signing needs it (HMAC), so it
    cannot be hashed; it is shown once at creation, never returned again, never logged.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    secret: Mapped[str] = mapped_column(String(100))
    # Failed attempts since the last successful one (any delivery of this endpoint).
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """One event queued for one endpoint (the outbox), and what became of it.

    Written in the transaction of the change; sent after commit by the dispatcher
    (`webhooks.dispatch`). `ordering_key` (`resource:resource_id`) keeps the deliveries of
    one object in order per endpoint. `lease_id`/`leased_until`: the dispatcher that claimed
    it; an expired lease (a controller died mid-send) makes it due again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(60))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    ordering_key: Mapped[str] = mapped_column(String(160))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, exactly as signed
    status: Mapped[str] = mapped_column(String(20), default="pending")  # | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now)
    lease_id: Mapped[str | None] = mapped_column(String(32))
    leased_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status, if any
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now)


Index(
    "ix_webhook_deliveries_due",
    WebhookDelivery.status,
    WebhookDelivery.next_attempt_at,
)
Index(
    "ix_webhook_deliveries_order",
    WebhookDelivery.endpoint_id,
    WebhookDelivery.ordering_key,
    WebhookDelivery.id,
)


class QuotaWarning(Base):
    """A mailbox whose usage crossed 90 % of its quota and was reported (`mailbox.quota_warning`);
    the row goes when usage falls below again, so the next crossing is reported again."""

    __tablename__ = "quota_warnings"

    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    warned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now)


class WebUser(Timestamped, Base):
    """A person who logs in to the web interface (`web/`): an admin, or a user of one
    customer (migration 0014). Mailbox owners log in with the mailbox itself instead.

    `password_hash` is argon2id like a mailbox password (`domain.passwords`). `totp_secret`
    (base32) must be stored as it is: checking a code needs it; it is never shown after
    enrolment and never logged.
    """

    __tablename__ = "web_users"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The time step of the last accepted TOTP code: it and older ones are refused (0016).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    locale: Mapped[str | None] = mapped_column(String(8))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WebSession(Timestamped, Base):
    """A logged-in browser: only the SHA-256 of the (256-bit random) cookie value is kept.

    Exactly one of `user_id` (a web user) and `address_id` (a mailbox owner) is set.
    `stage` is `password` while the second factor is still due, then `full`. Deleting the
    row ends the session at once; a password change deletes the owner's other sessions.
    """

    __tablename__ = "web_sessions"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("web_users.id", ondelete="CASCADE"), index=True
    )
    address_id: Mapped[int | None] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(16))  # password | full
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    client_address: Mapped[str | None] = mapped_column(String(64))


class WebAuthnCredential(Base):
    """A WebAuthn credential (passkey or security key) of a web user, a second factor beside
    or instead of TOTP (migration 0019; `domain.web_users.webauthn`).

    `credential_id` is the authenticator's id in base64url (unique across all users: an
    assertion names it before the user is known to match); `public_key` is the COSE key the
    authenticator gave at registration. `sign_count` is the last counter it reported: an
    assertion that does not raise it (for an authenticator that counts) is refused, since a
    cloned key would show its counter going backwards.
    """

    __tablename__ = "webauthn_credentials"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, default=_now, server_default=func.current_timestamp()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WebAuthnChallenge(Base):
    """A server-side WebAuthn challenge, bound to the web session that asked for it: one per
    session and purpose (`register` on the account page, `authenticate` at login), deleted
    when it is used, refused after `expires_at`. The browser's copy is never trusted."""

    __tablename__ = "webauthn_challenges"
    __table_args__ = (
        UniqueConstraint("session_id", "purpose", name="uq_webauthn_challenges_session_purpose"),
        GENERATED_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("web_sessions.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class LoginFailure(Base):
    """One failed web login, counted per account and per client address by the throttle
    (`domain.web_users.rules`); in the database so that every worker counts the same."""

    __tablename__ = "login_failures"
    __table_args__ = GENERATED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(254), index=True)
    client_address: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=_now, index=True)

"""Each audited object as a plain, JSON-ready dict: what `rules.changes_between` compares.

One function per resource, naming the fields a user of either API would recognise (the
address's forward targets and autoresponder belong to the address). Secrets appear only under
a name in `rules.SECRET_FIELDS`, so they are redacted before anything is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from postmeister.domain.audit.rules import without_credentials
from postmeister.domain.sending_limits.rules import PACKAGE_COLUMNS
from postmeister.models import (
    Address,
    ApiToken,
    AppPassword,
    Customer,
    Domain,
    Package,
    SyncSource,
)

Snapshot = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Audited(Generic[T]):
    """How one kind of object appears in the trail: its resource name, its snapshot, whose
    it is (customer, domain: who may read the event) and the name a person recognises."""

    resource: str
    snapshot: Callable[[T], Snapshot]
    customer_of: Callable[[T], int | None]
    domain_of: Callable[[T], int | None]
    name_of: Callable[[T], str | None]


def _when(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def address(row: Address) -> Snapshot:
    responder = row.autoresponder
    return {
        "address": row.address,
        "kind": row.kind,
        "description": row.description,
        "antispam": row.antispam,
        "password": row.password_hash,
        "quota_bytes": row.quota_bytes,
        "submission_disabled": row.submission_disabled,
        "subaddress_extension": row.subaddress_extension,
        "forward_to": [t.target for t in row.forward_targets],
        "spoofing_whitelist": [p.pattern for p in row.sender_permissions],
        "autoresponder_text": responder.text if responder else None,
        "autoresponder_active": responder.active if responder else None,
        "autoresponder_activates": _when(responder.activates) if responder else None,
        "autoresponder_expires": _when(responder.expires) if responder else None,
    }


def app_password(row: AppPassword) -> Snapshot:
    return {"device": row.device, "application": row.application, "secret": row.secret_hash}


def customer(row: Customer) -> Snapshot:
    return {
        "name": row.name,
        "suspended_at": _when(row.suspended_at),
        "totp_required": bool(row.totp_required),
    }


def package(row: Package) -> Snapshot:
    return {
        "name": row.name,
        "customer_id": row.customer_id,
        "max_addresses": row.max_addresses,
        "max_mailboxes": row.max_mailboxes,
        "max_storage_bytes": row.max_storage_bytes,
        "max_quota_bytes": row.max_quota_bytes,
        "max_app_passwords": row.max_app_passwords,
        **{name: getattr(row, name) for name in PACKAGE_COLUMNS},
        "allow_self_service_forwarding": row.allow_self_service_forwarding,
    }


def domain(row: Domain) -> Snapshot:
    return {
        "name": row.name,
        "customer_id": row.customer_id,
        "package_id": row.package_id,
        "alias_of_id": row.alias_of_id,
        "catchall": [t.target for t in row.catchall_targets],
    }


def api_token(row: ApiToken) -> Snapshot:
    return {
        "label": row.label,
        "customer_id": row.customer_id,
        "admin": row.is_admin,
        "read_only": row.read_only,
        "domain_ids": sorted(d.domain_id for d in row.domains) if row.domain_limited else None,
        "expires_at": _when(row.expires_at),
        "revoked_at": _when(row.revoked_at),
        "token": row.token_hash,
    }


def sync_source(row: SyncSource) -> Snapshot:
    return {
        "url": without_credentials(row.url),
        "customer_id": row.customer_id,
        "interval_seconds": row.interval_seconds,
        "confirmed_document_sha256": row.confirmed_document_sha256,
    }


def _none(_: object) -> None:
    return None


ADDRESS: Audited[Address] = Audited(
    "address", address, lambda a: a.domain.customer_id, lambda a: a.domain_id, lambda a: a.address
)
APP_PASSWORD: Audited[AppPassword] = Audited(
    "app_password",
    app_password,
    lambda p: p.address.domain.customer_id,
    lambda p: p.address.domain_id,
    lambda p: f"{p.address.address}: {p.device} / {p.application}",
)
CUSTOMER: Audited[Customer] = Audited("customer", customer, lambda c: c.id, _none, lambda c: c.name)
PACKAGE: Audited[Package] = Audited(
    "package", package, lambda p: p.customer_id, _none, lambda p: p.name
)
DOMAIN: Audited[Domain] = Audited(
    "domain", domain, lambda d: d.customer_id, lambda d: d.id, lambda d: d.display_name
)
API_TOKEN: Audited[ApiToken] = Audited(
    "api_token", api_token, lambda t: t.customer_id, _none, lambda t: t.label
)
SYNC_SOURCE: Audited[SyncSource] = Audited(
    "sync_source",
    sync_source,
    lambda s: s.customer_id,
    _none,
    lambda s: without_credentials(s.url),
)

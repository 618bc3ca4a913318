"""Pure renderers: domain objects → controller-dialect JSON (the spec's Account and Alias)."""

from __future__ import annotations

import json
from typing import Any

from postmeister.models import Address, SyncRun, SyncSource


def _public_id(address: Address) -> str:
    return f"{address.local_part}@{address.domain.display_name}"


def account(address: Address) -> dict[str, Any]:
    return {
        "id": _public_id(address),
        "name": address.local_part,
        "domain": address.domain.display_name,
        # The spec: "The password can be read only in hashed form".
        "password": address.password_hash or "",
        "spoofing_whitelist": ",".join(p.pattern for p in address.sender_permissions),
        "submission_disabled": address.submission_disabled,
        "subaddress_extension": address.subaddress_extension,
    }


def alias(address: Address) -> dict[str, Any]:
    return {
        "id": _public_id(address),
        "name": address.local_part,
        "domain": address.domain.display_name,
        "to": ",".join(t.target for t in address.forward_targets),
    }


def sync_run(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "result": run.result,
        "created": run.created,
        "updated": run.updated,
        "deleted": run.deleted,
        "errors": json.loads(run.errors) if run.errors else [],
    }


def sync_source(source: SyncSource, domains: list[str], runs: list[SyncRun]) -> dict[str, Any]:
    return {
        "id": source.id,
        "customer_id": source.customer_id,
        "url": source.url,
        "interval_seconds": source.interval_seconds,
        "next_run_at": source.next_run_at.isoformat() if source.next_run_at else None,
        "waiting_for_confirmation": source.pending_document_sha256 is not None,
        "domains": domains,
        "last_run": sync_run(runs[0]) if runs else None,
        "runs": [sync_run(run) for run in runs],
    }

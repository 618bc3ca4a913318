"""Pure renderers: domain objects → controller-dialect JSON (the spec's Account and Alias)."""

from __future__ import annotations

from typing import Any

from postmeister.models import Address


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
    }


def alias(address: Address) -> dict[str, Any]:
    return {
        "id": _public_id(address),
        "name": address.local_part,
        "domain": address.domain.display_name,
        "to": ",".join(t.target for t in address.forward_targets),
    }

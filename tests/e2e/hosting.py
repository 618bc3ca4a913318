"""The hosting dialect (`/email-addresses`, JSON:API) as the end-to-end tests drive it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import Stack, unique

JSONAPI = "application/vnd.api+json"


@dataclass(frozen=True)
class Mailbox:
    id: str
    address: str
    password: str


def _headers(stack: Stack) -> dict[str, str]:
    return {**stack.tenant.auth, "Content-Type": JSONAPI, "Accept": JSONAPI}


def request(stack: Stack, method: str, path: str, document: Any = None) -> httpx.Response:
    response: httpx.Response = stack.api.request(
        method, path, json=document, headers=_headers(stack)
    )
    assert response.status_code < 300, response.text
    return response


def create(stack: Stack, *, kind: str, prefix: str, **attributes: Any) -> dict[str, Any]:
    address = f"{unique(prefix)}@{stack.domain}"
    document = {
        "data": {
            "type": "email-address",
            "attributes": {"address": address, "address_type": kind, **attributes},
        }
    }
    data: dict[str, Any] = request(stack, "POST", "/email-addresses", document).json()["data"]
    return data


def mailbox(stack: Stack, *, prefix: str = "box", **attributes: Any) -> Mailbox:
    """A new mailbox with a generated password (the API returns it once)."""
    data = create(stack, kind="mailbox", prefix=prefix, **attributes)
    return Mailbox(data["id"], data["attributes"]["address"], data["attributes"]["password"])


def forward(stack: Stack, targets: list[str], **attributes: Any) -> tuple[str, str]:
    data = create(stack, kind="forward", prefix="fwd", forward_to=targets, **attributes)
    return data["id"], data["attributes"]["address"]


def patch(stack: Stack, address_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    document = {"data": {"type": "email-address", "id": address_id, "attributes": attributes}}
    response = request(stack, "PATCH", f"/email-addresses/{address_id}", document)
    found: dict[str, Any] = response.json()["data"]["attributes"]
    return found


def details(stack: Stack, address_id: str) -> dict[str, Any]:
    found: dict[str, Any] = request(stack, "GET", f"/email-addresses/{address_id}").json()["data"][
        "attributes"
    ]
    return found


def set_quota(stack: Stack, address_id: str, quota_bytes: int | None) -> None:
    """Set a mailbox's quota limit the way a customer does: PATCH quota.limit."""
    assert patch(stack, address_id, {"quota": {"limit": quota_bytes}})["quota"]["limit"] == (
        quota_bytes
    )

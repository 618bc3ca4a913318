"""The hosting dialect (`/email-addresses`, JSON:API) as the end-to-end tests drive it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from postmeister.db import unit_of_work
from postmeister.domain.domains.service import add_domain
from tests.e2e.conftest import Stack, unique
from tests.support.factories import make_token

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


def app_password(stack: Stack, box: Mailbox, device: str) -> tuple[str, str]:
    """Issue an application password for `box`: its id and the secret (shown once)."""
    document = {
        "data": {
            "type": "application-password",
            "attributes": {"device": device, "application": "Mail"},
        }
    }
    data = request(
        stack, "POST", f"/email-addresses/{box.id}/application-passwords", document
    ).json()["data"]
    return data["id"], data["attributes"]["password"]


def revoke_app_password(stack: Stack, box: Mailbox, password_id: str) -> None:
    request(stack, "DELETE", f"/email-addresses/{box.id}/application-passwords/{password_id}")


def request_as(
    stack: Stack, token: str, method: str, path: str, document: Any = None
) -> httpx.Response:
    """A request with another bearer token than the stack's customer's; not checked."""
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI, "Content-Type": JSONAPI}
    response: httpx.Response = stack.api.request(method, path, json=document, headers=headers)
    return response


@dataclass(frozen=True)
class Customer:
    """A customer of its own (created by an admin through `/customers`), one domain, a token."""

    id: int
    admin: str
    token: str
    domain: str


def customer(stack: Stack, *, prefix: str) -> Customer:
    admin = make_token(stack.sessions, admin=True)
    name = unique(prefix)
    created = request_as(
        stack, admin, "POST", "/customers",
        {"data": {"type": "customer", "attributes": {"name": name}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    customer_id = int(created.json()["data"]["id"])
    domain = f"{name}.e2e.example"
    with unit_of_work(stack.sessions) as session:
        add_domain(session, customer_id=customer_id, name=domain)
    issued = request_as(
        stack, admin, "POST", "/api-tokens",
        {"data": {"type": "api-token", "attributes": {"customer_id": customer_id}}},
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    token = issued.json()["data"]["attributes"]["token"]
    return Customer(customer_id, admin, token, domain)


def suspend(stack: Stack, who: Customer, *, suspended: bool = True) -> None:
    document = {
        "data": {"type": "customer", "id": str(who.id), "attributes": {"suspended": suspended}}
    }
    response = request_as(stack, who.admin, "PATCH", f"/customers/{who.id}", document)
    assert response.status_code == 200, response.text

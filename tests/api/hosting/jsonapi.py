"""Requests and answers of the hosting dialect, spelled once for every test."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.support.factories import Tenant

JSONAPI = "application/vnd.api+json"
Body = dict[str, Any]


def headers(tenant: Tenant) -> dict[str, str]:
    return {**tenant.auth, "Content-Type": JSONAPI, "Accept": JSONAPI}


def create(client: TestClient, tenant: Tenant, **attributes: Any) -> httpx.Response:
    document = {"data": {"type": "email-address", "attributes": attributes}}
    response: httpx.Response = client.post(
        "/email-addresses", json=document, headers=headers(tenant)
    )
    return response


def mailbox(client: TestClient, tenant: Tenant, local: str = "info", **attributes: Any) -> Body:
    """Create a mailbox (generated password unless given) and return its resource object."""
    response = create(
        client, tenant, address=f"{local}@{tenant.domain}", address_type="mailbox", **attributes
    )
    assert response.status_code == 201, response.text
    data: Body = response.json()["data"]
    return data


def forward(
    client: TestClient, tenant: Tenant, local: str, targets: list[str], **extra: Any
) -> Body:
    response = create(
        client,
        tenant,
        address=f"{local}@{tenant.domain}",
        address_type="forward",
        forward_to=targets,
        **extra,
    )
    assert response.status_code == 201, response.text
    data: Body = response.json()["data"]
    return data


def get(client: TestClient, tenant: Tenant, address_id: str) -> httpx.Response:
    response: httpx.Response = client.get(f"/email-addresses/{address_id}", headers=headers(tenant))
    return response


def patch(client: TestClient, tenant: Tenant, address_id: str, attributes: Body) -> httpx.Response:
    document = {"data": {"type": "email-address", "id": address_id, "attributes": attributes}}
    response: httpx.Response = client.patch(
        f"/email-addresses/{address_id}", json=document, headers=headers(tenant)
    )
    return response


def attributes_of(response: httpx.Response) -> Body:
    assert response.status_code in (200, 201), response.text
    data: Body = response.json()["data"]["attributes"]
    return data


def errors(response: httpx.Response) -> list[Body]:
    assert response.headers["content-type"] == JSONAPI
    found: list[Body] = response.json()["errors"]
    for error in found:
        assert isinstance(error["status"], str)
        assert error["title"] and error["detail"]
    return found


def codes(response: httpx.Response) -> list[str]:
    return [error["code"] for error in errors(response)]


def pointers(response: httpx.Response) -> list[str]:
    return [error.get("source", {}).get("pointer", "") for error in errors(response)]

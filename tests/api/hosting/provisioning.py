"""Requests of the provisioning resources (`/customers`, `/packages`, `/api-tokens`)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.api.hosting.jsonapi import JSONAPI

Body = dict[str, Any]


def auth_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": JSONAPI, "Accept": JSONAPI}


def send(
    client: TestClient, auth: dict[str, str], method: str, path: str, document: Any = None
) -> httpx.Response:
    headers = {**auth, "Accept": JSONAPI}
    if document is not None:
        headers["Content-Type"] = JSONAPI
    response: httpx.Response = client.request(method, path, json=document, headers=headers)
    return response


def create(
    client: TestClient, auth: dict[str, str], path: str, kind: str, **attributes: Any
) -> httpx.Response:
    return send(client, auth, "POST", path, {"data": {"type": kind, "attributes": attributes}})


def patch(
    client: TestClient, auth: dict[str, str], path: str, kind: str, **attributes: Any
) -> httpx.Response:
    object_id = path.rsplit("/", 1)[1]
    document = {"data": {"type": kind, "id": object_id, "attributes": attributes}}
    return send(client, auth, "PATCH", path, document)


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    return response.json()["data"]

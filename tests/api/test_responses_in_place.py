"""Controller documents are answered in the route's own thread (`routing._answered_in_place`)
with what FastAPI's own response path sends: the route's status, `application/json`, and the
bytes its response model's serializer makes (compact, UTF-8)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from tests.support.factories import STRONG_PASSWORD, Tenant

_DOCUMENT = TypeAdapter(dict[str, Any])


def test_created_and_read_documents_are_fastapis_bytes(client: TestClient, alice: Tenant) -> None:
    created = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    read = client.get("/mail/account/info@alice.example/", headers=alice.auth)
    alias = client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "info@alice.example"},
        headers=alice.auth,
    )
    for response, status in ((created, 201), (read, 200), (alias, 201)):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == str(len(response.content))
        assert response.content == _DOCUMENT.dump_json(response.json())
    assert read.json()["id"] == "info@alice.example"
    assert alias.json()["to"] == "info@alice.example"

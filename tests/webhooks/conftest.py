"""Fixtures for webhook tests: a test CA, a real HTTPS receiver on loopback, the API app
with settings that trust the CA and allow loopback (the defaults refuse it), two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings, WebhookSettings
from tests.api.hosting.jsonapi import JSONAPI
from tests.support.factories import Tenant, make_tenant, make_token
from tests.support.hookreceiver import Receiver, receiving
from tests.support.tls import TestPki, make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def receiver(pki: TestPki) -> Iterator[Receiver]:
    with receiving(pki.server_context()) as running:
        yield running


@pytest.fixture
def hooks(pki: TestPki) -> WebhookSettings:
    """Small numbers: one second of backoff doubling, three attempts, loopback allowed.
    The dispatcher loop is off: each test calls `deliver_due` itself."""
    return WebhookSettings(
        enabled=False,
        ca_bundle=pki.ca_cert,
        allow_private_networks=True,
        backoff_seconds=1,
        max_backoff_seconds=60,
        max_attempts=3,
        timeout_seconds=5,
    )


@pytest.fixture
def hook_settings(settings: Settings, hooks: WebhookSettings) -> Settings:
    return settings.model_copy(
        update={"webhooks": hooks, "scheduler": SchedulerSettings(enabled=False)}
    )


@pytest.fixture
def client(hook_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Alice GmbH", domain="alice.example")


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Bob AG", domain="bob.example")


@pytest.fixture
def admin_auth(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}


def jsonapi(auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "Content-Type": JSONAPI, "Accept": JSONAPI}


def register(
    client: TestClient, auth: dict[str, str], url: str, event_types: list[str], **extra: Any
) -> Any:
    """POST /webhooks; the response."""
    document = {
        "data": {"type": "webhook", "attributes": {"url": url, "event_types": event_types, **extra}}
    }
    return client.post("/webhooks", json=document, headers=jsonapi(auth))


def patch_webhook(
    client: TestClient, auth: dict[str, str], webhook_id: str, attributes: dict[str, Any]
) -> Any:
    document = {"data": {"type": "webhook", "id": webhook_id, "attributes": attributes}}
    return client.patch(f"/webhooks/{webhook_id}", json=document, headers=jsonapi(auth))


def deliveries(client: TestClient, auth: dict[str, str], webhook_id: str) -> list[Any]:
    response = client.get(f"/webhooks/{webhook_id}/deliveries", headers=jsonapi(auth))
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["data"]
    return found

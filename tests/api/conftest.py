"""HTTP fixtures: the real ASGI app over HTTPS-schemed requests, and two tenants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.support.factories import Tenant, make_tenant, make_token


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
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

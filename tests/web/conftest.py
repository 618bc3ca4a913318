"""Web interface fixtures: the real app over HTTPS-schemed requests, two customers with a
web user each, an admin, and a browser-like client that keeps cookies and CSRF tokens."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.support.docserver import DocumentServer
from tests.support.factories import Tenant, make_tenant
from tests.support.tls import TestPki, make_test_pki
from tests.support.web import make_web_user

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A TestClient that logs in like a person: reads each page's CSRF token and sends it
    back with the next form (as a browser would, with its own Origin)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf: str | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("follow_redirects", False)
        response: httpx.Response = self.client.get(path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
             origin: str | None = "https://testserver", **kwargs: Any) -> httpx.Response:  # fmt: skip
        form = dict(data or {})
        if csrf and self.csrf is not None:
            form.setdefault("csrf", self.csrf)
        headers = {"Origin": origin} if origin else {}
        kwargs.setdefault("follow_redirects", False)
        response: httpx.Response = self.client.post(path, data=form, headers=headers, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def login(self, email: str, password: str, *, path: str = "/ui/login") -> httpx.Response:
        self.get(path)
        return self.post(path, {"email": email, "password": password}, follow_redirects=True)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


def new_browser(settings: Settings) -> Iterator[Browser]:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield Browser(client)


@pytest.fixture
def browser(settings: Settings) -> Iterator[Browser]:
    yield from new_browser(settings)


@pytest.fixture
def second_browser(settings: Settings) -> Iterator[Browser]:
    yield from new_browser(settings)


@pytest.fixture
def alice(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Alice GmbH", domain="alice.example")


@pytest.fixture
def bob(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Bob AG", domain="bob.example")


@pytest.fixture
def alice_user(
    sessions: sessionmaker[Session], settings: Settings, alice: Tenant
) -> tuple[str, str]:
    return make_web_user(sessions, settings, "anna@alice.example", customer_id=alice.customer_id)


@pytest.fixture
def bob_user(sessions: sessionmaker[Session], settings: Settings, bob: Tenant) -> tuple[str, str]:
    return make_web_user(sessions, settings, "bert@bob.example", customer_id=bob.customer_id)


@pytest.fixture
def admin_user(sessions: sessionmaker[Session], settings: Settings) -> tuple[str, str]:
    return make_web_user(sessions, settings, "root@provider.example", admin=True)


@pytest.fixture(scope="module")
def document_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def document_server(document_pki: TestPki) -> Iterator[DocumentServer]:
    """A customer's web server for sync sources: real HTTPS on loopback (test CA)."""
    server = DocumentServer(document_pki.server_context())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

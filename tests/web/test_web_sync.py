"""The customer's sync sources over HTTP on both databases, against a real HTTPS document
server on loopback: runs are listed as they happen, a held mass deletion is applied only
after the customer confirms it on the page, and another customer's source is "not found"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings, SyncSettings
from postmeister.sync.service import run_source
from tests.support.docserver import DocumentServer, Reply
from tests.support.factories import Tenant
from tests.support.tls import TestPki
from tests.web.conftest import Browser

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"


def _document(*accounts: str) -> bytes:
    accounts_ = [{"name": name, "password": MD5} for name in accounts]
    return json.dumps({"alice.example": {"account": accounts_, "alias": []}}).encode()


@pytest.fixture
def sync_settings(settings: Settings, document_pki: TestPki) -> SyncSettings:
    # The document server is on loopback, which customer sources may not reach by default.
    return settings.sync.model_copy(
        update={
            "ca_bundle": document_pki.ca_cert,
            "timeout_seconds": 5,
            "allow_private_networks": True,
        }
    )


def _addresses(app_client: TestClient, tenant: Tenant) -> list[str]:
    found = app_client.get("/email-addresses", headers=tenant.auth).json()["data"]
    return sorted(item["attributes"]["address"] for item in found)


def test_a_held_mass_deletion_waits_for_the_customers_confirmation(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient,
    document_server: DocumentServer, sync_settings: SyncSettings, sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    served = {"body": _document("anna", "ben", "cleo", "dora")}
    document_server.routes["/mail.json"] = lambda _headers: Reply(body=served["body"])
    browser.login(*alice_user)
    assert "Nothing here yet." in browser.get("/ui/customer/sync").text
    created = browser.post("/ui/customer/sync", {"url": document_server.url("/mail.json"),
                           "interval_seconds": "600"})  # fmt: skip
    assert created.status_code == 303
    detail = created.headers["location"].split("?")[0]
    source_id = int(Path(detail).name)
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    page = browser.get(detail).text
    assert re.search(r"<td[^>]*>applied</td>\s*<td[^>]*>4</td>", page), "the run and its count"
    assert "alice.example" in page, "the domain it manages"
    assert len(_addresses(app_client, alice)) == 4

    served["body"] = _document("anna")
    assert run_source(sessions, source_id, settings=sync_settings).result == "held"
    held = browser.get(detail).text
    assert 'id="held"' in held and "3 of 4" in held
    assert len(_addresses(app_client, alice)) == 4, "nothing deleted while held"
    listed = browser.get("/ui/customer/sync").text
    assert "held: waits for confirmation" in listed

    confirmed = browser.post(f"{detail}/confirm", {"confirm": "on"}, follow_redirects=True)
    assert confirmed.status_code == 200 and "Confirmed" in confirmed.text
    assert run_source(sessions, source_id, settings=sync_settings).result == "applied"
    assert _addresses(app_client, alice) == ["anna@alice.example"]
    again = browser.post(f"{detail}/confirm", {"confirm": "on"})
    assert again.status_code == 409 and "no document waiting" in again.text

    removed = browser.post(f"{detail}/delete", {"confirm": "on"}, follow_redirects=True)
    assert removed.status_code == 200 and document_server.url("/mail.json") not in removed.text
    assert _addresses(app_client, alice) == ["anna@alice.example"], "its addresses stay"


def test_a_refused_source_names_the_field(browser: Browser, alice_user: tuple[str, str]) -> None:
    browser.login(*alice_user)
    browser.get("/ui/customer/sync")
    plain = browser.post("/ui/customer/sync", {"url": "http://example.com/a.json"})
    assert plain.status_code == 422 and "over HTTPS only" in plain.text
    often = browser.post("/ui/customer/sync", {"url": "https://example.com/a.json",
                         "interval_seconds": "1"})  # fmt: skip
    assert often.status_code == 422 and "interval_seconds" in often.text
    assert 'id="source-' not in browser.get("/ui/customer/sync").text


def test_another_customers_source_is_not_found(
    browser: Browser, second_browser: Browser, alice_user: tuple[str, str],
    bob_user: tuple[str, str],
) -> None:  # fmt: skip
    second_browser.login(*bob_user)
    second_browser.get("/ui/customer/sync")
    created = second_browser.post("/ui/customer/sync", {"url": "https://bob.example/m.json"})
    bobs = created.headers["location"].split("?")[0]
    browser.login(*alice_user)
    assert "bob.example/m.json" not in browser.get("/ui/customer/sync").text
    for path in (bobs, "/ui/customer/sync/99999", "/ui/customer/sync/x"):
        page = browser.get(path)
        assert page.status_code == 404, path
        assert "bob.example/m.json" not in page.text
    for action in ("confirm", "delete"):
        assert browser.post(f"{bobs}/{action}", {"confirm": "on"}).status_code == 404
    assert second_browser.get(bobs).status_code == 200, "still there for its customer"

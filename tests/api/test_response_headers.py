"""Security headers on every response (issue 10, finding 8): nosniff and no-store always,
HSTS exactly when the request came over HTTPS."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.api.transport import HSTS
from postmeister.config import Settings
from tests.support.factories import Tenant

JSONAPI = "application/vnd.api+json"


def _assert_always(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_every_kind_of_https_response_has_all_three(client: TestClient, alice: Tenant) -> None:
    responses = [
        client.get("/mail/account/", headers=alice.auth),  # 200
        client.get("/mail/account/", headers={}),  # 401
        client.get("/mail/account/nobody@alice.example/", headers=alice.auth),  # 404
        client.get("/no/such/route"),  # 404 outside every route
        client.patch("/mail/account/"),  # 405
        client.get("/email-addresses", headers=alice.auth),  # 200, hosting
        client.get("/email-addresses", headers={"Accept": "text/html", **alice.auth}),  # 406
        client.post("/email-addresses", content=b"[[[", headers=alice.auth),  # 415
        client.get("/openapi.json"),
        client.get("/docs"),
    ]
    for response in responses:
        _assert_always(response)
        assert response.headers["strict-transport-security"] == HSTS, response.request.url


def test_one_time_secrets_are_never_stored_by_a_cache(client: TestClient, alice: Tenant) -> None:
    headers = {**alice.auth, "Content-Type": JSONAPI}
    created = client.post(
        "/email-addresses",
        json={
            "data": {
                "type": "email-address",
                "attributes": {"address": "info@alice.example", "address_type": "mailbox"},
            }
        },
        headers=headers,
    )
    assert created.status_code == 201
    assert created.json()["data"]["attributes"]["password"]  # generated, shown once
    address_id = created.json()["data"]["id"]
    reset = client.post(f"/email-addresses/{address_id}/password", headers=headers)
    app_password = client.post(
        f"/email-addresses/{address_id}/application-passwords",
        json={
            "data": {
                "type": "application-password",
                "attributes": {"device": "phone", "application": "mail"},
            }
        },
        headers=headers,
    )
    for response in (created, reset, app_password):
        assert response.json()["data"]["attributes"]["password"]
        assert response.headers["cache-control"] == "no-store"


def test_plain_http_refusal_has_no_hsts(settings: Settings, alice: Tenant) -> None:
    """RFC 6797 §7.2: never over plain HTTP, so not on the 403 that refuses it."""
    with TestClient(create_app(settings), base_url="http://testserver") as plain:
        response = plain.get("/mail/account/", headers=alice.auth)
    assert response.status_code == 403
    _assert_always(response)
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize(
    ("forwarded", "status", "hsts"),
    [("https", 200, True), ("http", 403, False), (None, 403, False)],
)
def test_behind_a_tls_proxy_hsts_follows_x_forwarded_proto(
    settings: Settings, alice: Tenant, forwarded: str | None, status: int, hsts: bool
) -> None:
    proxied = settings.model_copy(
        update={"http": settings.http.model_copy(update={"behind_tls_proxy": True})}
    )
    extra = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    with TestClient(create_app(proxied), base_url="http://testserver") as plain:
        response = plain.get("/mail/account/", headers={**alice.auth, **extra})
    assert response.status_code == status
    _assert_always(response)
    assert ("strict-transport-security" in response.headers) is hsts


def test_a_body_over_the_limit_is_413_with_the_headers(settings: Settings, alice: Tenant) -> None:
    small = settings.model_copy(
        update={"http": settings.http.model_copy(update={"max_body_bytes": 100})}
    )
    with TestClient(create_app(small), base_url="https://testserver") as client:
        response = client.post(
            "/mail/account/",
            content=b"x" * 101,
            headers={**alice.auth, "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    _assert_always(response)
    assert response.headers["strict-transport-security"] == HSTS

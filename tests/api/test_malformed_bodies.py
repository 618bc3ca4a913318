"""Authenticate first, and every malformed body is a 400 (issue 10, finding 7).

Before, the controller dialect parsed the body before it looked at the token: a 2,000-deep
JSON array (RecursionError) or a 5,000-digit number (Python's int-string limit) was a 500
for anyone. Now every route authenticates first (no token: 401, whatever the body), and a
body that cannot be read is a 400 in the dialect's own error format, in both dialects.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.api.common import MAX_JSON_DEPTH
from postmeister.api.errors import WWW_AUTHENTICATE
from postmeister.api.routing import AuthenticatedRoute
from postmeister.config import Settings
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.support.snapshot import snapshot

JSONAPI = "application/vnd.api+json"

MALFORMED: dict[str, bytes] = {
    "2000-deep array": b"[" * 2000 + b"]" * 2000,
    "2000-deep object": b'{"a":' * 2000 + b"1" + b"}" * 2000,
    "just over the depth limit": b'{"a":' * MAX_JSON_DEPTH + b"[1]" + b"}" * MAX_JSON_DEPTH,
    "5000-digit integer": b'{"name": ' + b"9" * 5000 + b"}",
    "5000-digit negative integer": b'{"data": -' + b"7" * 5000 + b"}",
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
    "UTF-16": '{"name": "x"}'.encode("utf-16"),
    "unpaired surrogate": b'{"name": "\\ud800"}',
    "not JSON": b"{name: x",
    "NaN-free garbage": b"\x00\x01\x02",
}

# One write route of each kind per dialect: a body FastAPI parses (hosting), a body the
# controller parses itself (JSON object or form), with and without an object in the URL.
CONTROLLER_ROUTES = [
    ("POST", "/mail/account/"),
    ("POST", "/mail/account/info@alice.example/set_password/"),
    ("PUT", "/mail/alias/office@alice.example/"),
    ("POST", "/sync/sources/"),
]
HOSTING_ROUTES = [
    ("POST", "/email-addresses"),
    ("PATCH", "/email-addresses/1"),
    ("POST", "/email-addresses/1/application-passwords"),
]


def _content_type(path: str) -> str:
    return JSONAPI if path.startswith("/email-addresses") else "application/json"


@pytest.mark.parametrize(("method", "path"), CONTROLLER_ROUTES + HOSTING_ROUTES)
def test_without_a_token_any_body_is_401(client: TestClient, method: str, path: str) -> None:
    for name, body in MALFORMED.items():
        for auth in ({}, {"Authorization": "Bearer pm_unknown"}):
            response = client.request(
                method, path, content=body, headers={**auth, "Content-Type": _content_type(path)}
            )
            assert response.status_code == 401, (name, response.text)
            assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
            assert "Traceback" not in response.text
            if path.startswith("/email-addresses"):
                assert response.json()["errors"][0]["code"] == "unauthenticated"
            else:
                assert response.json()["type"].endswith(":unauthenticated")


@pytest.fixture
def alice_objects(client: TestClient, alice: Tenant) -> dict[str, str]:
    account = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert account.status_code == 201, account.text
    alias = client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "info@alice.example"},
        headers=alice.auth,
    )
    assert alias.status_code == 201, alias.text
    listed = client.get("/email-addresses", headers=alice.auth).json()["data"]
    return {item["attributes"]["address"]: item["id"] for item in listed}


def _on_objects(path: str, ids: dict[str, str]) -> str:
    return path.replace("/1", "/" + ids["info@alice.example"], 1)


@pytest.mark.parametrize(("method", "path"), CONTROLLER_ROUTES)
def test_with_a_token_a_malformed_body_is_a_400_problem(
    client: TestClient,
    alice: Tenant,
    alice_objects: dict[str, str],
    sessions: sessionmaker[Session],
    method: str,
    path: str,
) -> None:
    before = snapshot(sessions)
    for name, body in MALFORMED.items():
        response = client.request(
            method, path, content=body, headers={**alice.auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:postmeister:problem:malformed-body", name
        assert problem["status"] == 400
        assert problem["detail"] and "Traceback" not in response.text
    assert snapshot(sessions) == before


@pytest.mark.parametrize(("method", "path"), HOSTING_ROUTES)
def test_with_a_token_a_malformed_document_is_a_400_jsonapi_error(
    client: TestClient,
    alice: Tenant,
    alice_objects: dict[str, str],
    sessions: sessionmaker[Session],
    method: str,
    path: str,
) -> None:
    before = snapshot(sessions)
    for name, body in MALFORMED.items():
        response = client.request(
            method,
            _on_objects(path, alice_objects),
            content=body,
            headers={**alice.auth, "Content-Type": JSONAPI},
        )
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"] == JSONAPI
        [error] = response.json()["errors"]
        assert error["status"] == "400"
        assert error["code"] == "malformed-body", name
        assert error["detail"] and "Traceback" not in response.text
    assert snapshot(sessions) == before


def test_the_reason_is_named(client: TestClient, alice: Tenant) -> None:
    def detail(body: bytes) -> str:
        response = client.post(
            "/mail/account/",
            content=body,
            headers={**alice.auth, "Content-Type": "application/json"},
        )
        text: str = response.json()["detail"]
        return text

    assert "nests deeper than 32 levels" in detail(MALFORMED["2000-deep array"])
    assert "nests deeper than 32 levels" in detail(MALFORMED["just over the depth limit"])
    assert "number too long" in detail(MALFORMED["5000-digit integer"])
    assert "not UTF-8" in detail(MALFORMED["invalid UTF-8"])
    assert "unpaired surrogate" in detail(MALFORMED["unpaired surrogate"])
    assert "not valid JSON" in detail(MALFORMED["not JSON"])
    assert "must be a JSON object" in detail(b"[1, 2]")


def test_a_document_at_the_depth_limit_is_read(client: TestClient, alice: Tenant) -> None:
    """`meta` may hold any JSON: nesting up to the limit is accepted, not refused."""
    meta: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH - 4):  # document, data, meta are three levels of it
        meta = {"m": meta}
    document = {
        "data": {
            "type": "email-address",
            "attributes": {"address": "deep@alice.example", "address_type": "mailbox"},
            "meta": meta,
        }
    }
    response = client.post(
        "/email-addresses", json=document, headers={**alice.auth, "Content-Type": JSONAPI}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "content_type", "status"),
    [
        ("/mail/account/", "text/plain", 415),
        ("/mail/account/", "application/x-www-form-urlencoded", 422),  # a form: no "name"
        ("/email-addresses", "application/json", 415),
        ("/email-addresses", "text/plain", 415),
    ],
)
def test_a_deep_body_under_the_wrong_type_is_a_4xx_never_a_500(
    client: TestClient, alice: Tenant, path: str, content_type: str, status: int
) -> None:
    response = client.post(
        path,
        content=MALFORMED["2000-deep array"],
        headers={**alice.auth, "Content-Type": content_type},
    )
    assert response.status_code == status, response.text


def test_a_malformed_form_is_a_400(client: TestClient, alice: Tenant) -> None:
    for body, content_type in [
        (b"password=%ff%fe", "application/x-www-form-urlencoded"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"irrelevant", "multipart/form-data"),  # no boundary
    ]:
        response = client.post(
            "/mail/account/info@alice.example/set_password/",
            content=body,
            headers={**alice.auth, "Content-Type": content_type},
        )
        assert 400 <= response.status_code < 500, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_every_api_route_authenticates_before_it_reads_a_body(settings: Settings) -> None:
    """The structural guarantee: a route outside `AuthenticatedRoute` could parse a body
    before the token is checked. Only the documentation pages and the health probes (GET,
    no body), the health probes and the client autoconfiguration routes (mail clients ask
    without credentials; `api/clientconfig.py` bounds and parses its one body itself) are
    public."""
    public = {
        "/openapi.json",
        "/docs",
        "/redoc",
        "/docs/assets/{name}",
        "/healthz",
        "/readyz",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/mail/config-v1.1.xml",
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
        "/mobileconfig",
    }
    pending: list[Any] = list(create_app(settings).routes)
    seen = 0
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # an included router
        if included is not None:
            pending.extend(included.routes)
        elif getattr(route, "path", "").startswith("/ui"):
            continue  # the web interface: sessions, not tokens (tests/web/test_web_routes.py)
        elif getattr(route, "path", "") not in public:
            assert isinstance(route, AuthenticatedRoute), route
            seen += 1
    # 15 controller, 12 hosting, 5 sync-source, /metrics, 5 customer, 5 package, 4 token, 5 domain,
    # 1 domain DNS, 2 DKIM keys, 2 audit, 6 webhook, 2 sending limits
    assert seen == 70


@pytest.mark.parametrize("customer_id", [0, -1, 2**31, 2**40, 2**63, 10**100])
def test_an_id_out_of_range_is_a_422_not_a_database_error(
    client: TestClient, admin_auth: dict[str, str], customer_id: int
) -> None:
    """Found by probing: PostgreSQL refuses to compare 2**40 with an INTEGER id (500)."""
    response = client.post(
        "/sync/sources/",
        json={"url": "https://sync.example/mail.json", "customer_id": customer_id},
        headers=admin_auth,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "customer_id"

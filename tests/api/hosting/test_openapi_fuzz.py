"""The OpenAPI document: served, valid, accurate for the hosting dialect; and a schema-based
fuzzer (schemathesis strategies driven by hypothesis) that finds no server error on either
dialect and, for the hosting dialect, no response that breaks the published schema.

Four runs over every operation, on both databases:
- valid requests (25 examples per operation): no 5xx, hosting responses match the schema;
- schema-violating requests (schemathesis' negative mode, 10): no 5xx;
- the same without a token, or with an unknown one (10): always 401 (issue 10, finding 7);
- malformed bodies under every content type, with and without a token (10): deep nesting,
  numbers of thousands of digits, invalid UTF-8, UTF-16, unpaired surrogates, random bytes.
  Never a 5xx; without a token always 401; with one, a JSON body that cannot be read is 400.

The fuzzer's ids and addresses are steered half of the time onto objects that exist, so that
the write paths are reached, not only 404s. FUZZ_EXAMPLES scales every run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.api.errors import WWW_AUTHENTICATE
from postmeister.config import SchedulerSettings, Settings, WebhookSettings
from tests.api.hosting.jsonapi import JSONAPI, forward, mailbox
from tests.support.clock import ControlledClock
from tests.support.factories import STRONG_PASSWORD, Tenant, make_tenant, make_token

BASE_URL = "https://testserver"
WEBHOOK_URL = "https://127.0.0.1:9/hook"  # nothing is sent: the dispatcher is off


@dataclass
class World:
    """What exists before fuzzing: one tenant with a mailbox, a forward, an app password."""

    tenant: Tenant
    mailbox_id: str
    forward_id: str
    app_password_id: str
    admin_token: str
    webhook_id: str = "1"

    @property
    def auth(self) -> dict[str, str]:
        return self.tenant.auth

    def auth_for(self, case: Any) -> dict[str, str]:
        """The customer's token, and an admin's a third of the time (admins reach more:
        other customers' objects, the `customer_id` of a sync source)."""
        if _pick(case, "admin") is not None:
            return {"Authorization": f"Bearer {self.admin_token}"}
        return self.auth


@pytest.fixture
def fuzz_app(settings: Settings) -> FastAPI:
    # No background dispatcher; loopback webhook URLs allowed, so registrations can succeed.
    hooks = WebhookSettings(enabled=False, allow_private_networks=True)
    quiet = settings.model_copy(
        update={"scheduler": SchedulerSettings(enabled=False), "webhooks": hooks}
    )
    return create_app(quiet, clock=ControlledClock(dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.UTC)))


@pytest.fixture
def fuzz_client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(fuzz_client: TestClient, sessions: sessionmaker[Session]) -> World:
    tenant = make_tenant(sessions, name="Fuzz GmbH", domain="fuzz.example")
    info = mailbox(fuzz_client, tenant, "info", password=STRONG_PASSWORD)
    office = forward(fuzz_client, tenant, "office", ["info@fuzz.example"])
    created = fuzz_client.post(
        f"/email-addresses/{info['id']}/application-passwords",
        json={
            "data": {
                "type": "application-password",
                "attributes": {"device": "d", "application": "a"},
            }
        },
        headers={**tenant.auth, "Content-Type": JSONAPI},
    )
    admin = make_token(sessions, admin=True)
    hook = fuzz_client.post(
        "/webhooks",
        json={
            "data": {
                "type": "webhook",
                "attributes": {"url": WEBHOOK_URL, "event_types": ["address.created"]},
            }
        },
        headers={**tenant.auth, "Content-Type": JSONAPI},
    )
    return World(
        tenant,
        info["id"],
        office["id"],
        created.json()["data"]["id"],
        admin,
        hook.json()["data"]["id"],
    )


def test_the_openapi_document_describes_the_hosting_dialect(fuzz_client: TestClient) -> None:
    document = fuzz_client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    expected = {
        "/email-addresses": {"get", "post"},
        "/email-addresses/{address_id}": {"get", "patch", "delete"},
        "/email-addresses/{address_id}/password": {"post"},
        "/email-addresses/{address_id}/forward-to/{target}": {"post", "delete"},
        "/email-addresses/{address_id}/application-passwords": {"get", "post"},
        "/email-addresses/{address_id}/application-passwords/{app_password_id}": {"get", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
        for method in methods:
            operation = paths[path][method]
            for status, response in operation["responses"].items():
                if status != "204":
                    assert list(response["content"]) == [JSONAPI], (path, method, status)
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == [JSONAPI]
    listing = {p["name"] for p in paths["/email-addresses"]["get"]["parameters"]}
    assert {
        "page[size]",
        "page[after]",
        "page[before]",
        "filter[package_id]",
        "filter[address]",
        "filter[domain]",
        "package_id",
        "address",
        "domain",
    } <= listing
    schemas = document["components"]["schemas"]
    patch = schemas["EmailAddressPatchAttributes"]["properties"]
    assert set(patch) == {
        "description",
        "antispam",
        "forward_to",
        "password",
        "quota",
        "autoresponder",
        "subaddress_extension",
    }
    assert patch["antispam"]["enum"] == ["reject", "junk-folder", "subject-rewrite", "none"]
    # Loading it is schemathesis' validation of the document: every operation loads.
    # 15 controller, 12 hosting, 5 sync-source, 5 customer, 5 package, 4 API-token, 5 domain,
    # 1 domain DNS, 2 DKIM keys, 2 audit, 6 webhook, 2 sending limits
    assert len(OPERATIONS) == len(LOADED) == 69


# The document depends on the routes only; no database is touched to build it.
SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite:///:memory:")).openapi()
)
LOADED = list(SCHEMA.get_all_operations())
OPERATIONS = [result.ok() for result in LOADED if isinstance(result, Ok)]


def _pick(case: Any, *choices: str) -> str | None:
    """A stable pseudo-random choice per case; None keeps the generated value."""
    seed = zlib.crc32(
        json.dumps([case.path_parameters, case.query, case.body], default=str).encode()
    )
    options = [*choices, None, None]
    return options[seed % len(options)]


def steer(case: Any, world: World) -> None:
    params = case.path_parameters or {}
    if "address_id" in params:
        chosen = _pick(case, world.mailbox_id, world.forward_id)
        if chosen is not None:
            params["address_id"] = chosen
    if "app_password_id" in params and _pick(case, world.app_password_id) is not None:
        params["app_password_id"] = world.app_password_id
    if "webhook_id" in params and _pick(case, world.webhook_id) is not None:
        params["webhook_id"] = world.webhook_id
    for name in ("account_id", "alias_id"):
        if name in params:
            chosen = _pick(case, "info@fuzz.example", "office@fuzz.example")
            if chosen is not None:
                params[name] = chosen
    body = case.body
    if isinstance(body, dict):
        data = body.get("data")
        attributes = data.get("attributes") if isinstance(data, dict) else None
        steering = _pick(case, "address", "valid mailbox")
        if isinstance(attributes, dict) and isinstance(attributes.get("address"), str) and steering:
            local = re.sub(r"[^a-z0-9]", "", attributes["address"].split("@")[0].lower())
            attributes["address"] = f"{local or 'x'}@fuzz.example"
            attributes.pop("password", None)  # generated, so that creation can succeed
            if steering == "valid mailbox":
                attributes["address_type"] = "mailbox"
                for name in ("description", "forward_to", "antispam"):
                    attributes.pop(name, None)
        url = attributes.get("url") if isinstance(attributes, dict) else None
        if isinstance(url, str) and isinstance(attributes, dict) and _pick(case, "webhook url"):
            attributes["url"] = WEBHOOK_URL  # a URL that passes, so creation succeeds
        if isinstance(body.get("domain"), str) and _pick(case, "steer"):
            body["domain"] = "fuzz.example"
    if case.path == "/email-addresses/{address_id}" and case.method.upper() == "PATCH":
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and _pick(case, "same-id") is not None:
            data["id"] = params["address_id"]


def send(client: TestClient, case: Any, auth: dict[str, str]) -> Any:
    """The case through our own test client (HTTPS, the app's lifespan under our control)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {**(kwargs.get("headers") or {}), **auth}
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["content"] = json.dumps(kwargs["json"]).encode()
    elif isinstance(kwargs.get("data"), dict):
        body["data"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    return client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, **body
    )


# FUZZ_EXAMPLES=400 digs deeper when hunting a rare failure; CI uses the bounded default.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SMALL_RUN = max(1, EXAMPLES * 2 // 5)


def _bounded(examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors_on_either_dialect(
    operation: Any, fuzz_client: TestClient, world: World
) -> None:
    checks = [response_schema_conformance, content_type_conformance, status_code_conformance]

    @given(case=operation.as_strategy())
    @_bounded(EXAMPLES)
    def fuzz(case: Any) -> None:
        steer(case, world)
        response = send(fuzz_client, case, world.auth_for(case))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if case.path.startswith("/email-addresses"):
            case.validate_response(response, checks=checks)

    fuzz()


def _breakable(operation: Any) -> bool:
    """Whether any request breaks this operation's schema: a body or query parameter, or a
    path parameter with a pattern or a non-string type (any string fits a bare string)."""
    schemas = [param.definition.get("schema", {}) for param in operation.path_parameters]
    return bool(operation.body or operation.query) or any(
        "pattern" in schema or schema.get("type") != "string" for schema in schemas
    )


BREAKABLE = [op for op in OPERATIONS if _breakable(op)]


@pytest.mark.parametrize("operation", BREAKABLE, ids=[op.label for op in BREAKABLE])
def test_no_server_errors_on_requests_that_break_the_schema(
    operation: Any, fuzz_client: TestClient, world: World
) -> None:
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @_bounded(SMALL_RUN)
    def fuzz(case: Any) -> None:
        steer(case, world)
        response = send(fuzz_client, case, world.auth_for(case))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)

    fuzz()


NO_TOKEN: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": "Bearer pm_not_a_token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_without_a_token_every_request_is_401(
    operation: Any, fuzz_client: TestClient, world: World
) -> None:
    @given(case=operation.as_strategy(), auth=st.sampled_from(NO_TOKEN))
    @_bounded(SMALL_RUN)
    def fuzz(case: Any, auth: dict[str, str]) -> None:
        steer(case, world)
        response = send(fuzz_client, case, auth)
        if response.status_code in (404, 405) and _route_level(response):
            return  # a generated id with a slash names no route at all: nothing to protect
        assert response.status_code == 401, (case.method, case.formatted_path, response.text)
        assert response.headers["www-authenticate"] == WWW_AUTHENTICATE

    fuzz()


def _route_level(response: Any) -> bool:
    """A 404/405 of the router (no route matched; Starlette's own detail), not of a route:
    a route cannot answer without a token, it authenticates first."""
    body = response.json()
    detail = body["errors"][0]["detail"] if "errors" in body else body["detail"]
    return detail in ("Not Found", "Method Not Allowed")


JSON_TYPES = ("application/json", JSONAPI)
CONTENT_TYPES = (
    *JSON_TYPES,
    "application/json; charset=utf-8",
    JSONAPI + '; ext="https://example.com/ext"',
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "text/plain",
    "application/octet-stream",
    "no/such;;type",
    None,
)


@st.composite
def malformed_bodies(draw: st.DrawFn) -> bytes:
    """Bodies no route can read, in the shapes that used to reach a parser's limits."""
    depth = draw(st.integers(min_value=33, max_value=5000))
    digits = draw(st.integers(min_value=4301, max_value=20000))
    kind = draw(
        st.sampled_from(
            ["array", "object", "mixed", "number", "utf8", "utf16", "surrogate", "bytes", "form"]
        )
    )
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"data":' * depth + b"null" + b"}" * depth
    if kind == "mixed":
        return b'{"a":[' * depth + b"1" + b"]}" * depth
    if kind == "number":
        sign = draw(st.sampled_from([b"", b"-"]))
        return b'{"data": {"attributes": {"quota": {"limit": ' + sign + b"9" * digits + b"}}}}"
    if kind == "utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        return b'{"name": "' + junk + b'", "data": {"type": "email-address"}}'
    if kind == "utf16":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32"]))
        return '{"data": {"type": "email-address"}}'.encode(encoding)
    if kind == "surrogate":
        return b'{"name": "\\ud800", "data": {"type": "email-address", "id": "\\udfff"}}'
    if kind == "form":
        return b"name=%ff%fe&to=" + b"%" * draw(st.integers(1, 50))
    # Random bytes after a NUL, which no JSON text may start with.
    data: bytes = draw(st.binary(max_size=200))
    return b"\x00" + data


def _fill(path: str, world: World) -> str:
    values = {
        "address_id": world.mailbox_id,
        "app_password_id": world.app_password_id,
        "target": "info@fuzz.example",
        "account_id": "info@fuzz.example",
        "alias_id": "office@fuzz.example",
        "source_id": "1",
        "domain_id": "1",
        "customer_id": "1",
        "package_id": "1",
        "token_id": "1",
        "event_id": "1",
        "webhook_id": world.webhook_id,
        "name": "node1",  # a mail node (/mail-nodes/{name})
    }
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_malformed_bodies_are_4xx_before_and_after_authentication(
    operation: Any, fuzz_client: TestClient, world: World
) -> None:
    path = _fill(operation.path, world)
    token = world.auth

    @given(
        body=malformed_bodies(),
        content_type=st.sampled_from(CONTENT_TYPES),
        auth=st.sampled_from([token, *NO_TOKEN]),
    )
    @_bounded(SMALL_RUN)
    def fuzz(body: bytes, content_type: str | None, auth: dict[str, str]) -> None:
        headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
        response = fuzz_client.request(
            operation.method.upper(), path, content=body, headers=headers
        )
        where = (operation.method, path, content_type, body[:60])
        assert response.status_code < 500, (*where, response.text)
        assert "Traceback" not in response.text
        if auth is not token:
            assert response.status_code == 401, (*where, response.text)
        elif content_type in JSON_TYPES and operation.body:
            assert response.status_code in (400, 415), (*where, response.text)

    fuzz()

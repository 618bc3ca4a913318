"""Every route of /customers, /packages and /api-tokens against another customer's objects
answers 404, exactly like a missing object, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.hosting.jsonapi import JSONAPI, errors
from tests.api.hosting.provisioning import auth_of, create, data, send
from tests.support.factories import Tenant, make_token
from tests.support.snapshot import snapshot

MISSING = "987654"

# (method, path template, body): {c} the customer, {p} its package, {t} its token.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/customers/{c}", None),
    ("PATCH", "/customers/{c}", ("customer", {"name": "Taken Over"})),
    ("PATCH", "/customers/{c}", ("customer", {"suspended": True})),
    ("DELETE", "/customers/{c}?cascade=true", None),
    ("GET", "/packages/{p}", None),
    ("PATCH", "/packages/{p}", ("package", {"max_addresses": 0})),
    ("DELETE", "/packages/{p}", None),
    ("GET", "/api-tokens/{t}", None),
    ("DELETE", "/api-tokens/{t}", None),
]


@pytest.fixture
def alice_objects(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> dict[str, str]:
    admin = auth_of(make_token(sessions, admin=True))
    package = data(
        create(client, admin, "/packages", "package", name="Extra", customer_id=alice.customer_id),
        201,
    )
    token = data(create(client, alice.auth, "/api-tokens", "api-token", label="second"), 201)
    return {"c": str(alice.customer_id), "p": package["id"], "t": token["id"]}


def call(client: TestClient, auth: dict[str, str], method: str, path: str, body: Any) -> Any:
    if body is None:
        return send(client, auth, method, path)
    kind, attributes = body
    object_id = path.split("?")[0].rsplit("/", 1)[1]
    document = {"data": {"type": kind, "id": object_id, "attributes": attributes}}
    return send(client, auth, method, path, document)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_customer_gets_404_exactly_like_a_missing_object(
    client: TestClient,
    bob: Tenant,
    sessions: sessionmaker[Session],
    alice_objects: dict[str, str],
    method: str,
    path: str,
    body: Any,
) -> None:
    # Its first request records the token's use; from then on a refusal writes nothing.
    send(client, bob.auth, "GET", "/packages")
    before = snapshot(sessions)
    foreign = call(client, bob.auth, method, path.format(**alice_objects), body)
    missing_ids = dict.fromkeys(alice_objects, MISSING)
    missing = call(client, bob.auth, method, path.format(**missing_ids), body)
    assert foreign.status_code == missing.status_code == 404, foreign.text
    assert foreign.headers["content-type"] == JSONAPI
    assert [e["code"] for e in errors(foreign)] == [e["code"] for e in errors(missing)]
    assert [e["title"] for e in errors(foreign)] == [e["title"] for e in errors(missing)]
    assert snapshot(sessions) == before


def test_lists_show_only_the_callers_own_objects(
    client: TestClient, alice: Tenant, bob: Tenant, alice_objects: dict[str, str]
) -> None:
    assert send(client, bob.auth, "GET", "/customers").status_code == 404
    packages = data(send(client, bob.auth, "GET", "/packages"))
    assert {item["attributes"]["customer_id"] for item in packages} == {bob.customer_id}
    filtered = data(
        send(client, bob.auth, "GET", f"/packages?filter[customer_id]={alice.customer_id}")
    )
    assert filtered == []
    tokens = data(send(client, bob.auth, "GET", "/api-tokens"))
    assert {item["attributes"]["customer_id"] for item in tokens} == {bob.customer_id}
    assert alice_objects["t"] not in {item["id"] for item in tokens}


def test_a_customer_cannot_create_a_customer_or_a_package_for_another(
    client: TestClient, alice: Tenant, bob: Tenant, sessions: sessionmaker[Session]
) -> None:
    send(client, bob.auth, "GET", "/packages")
    before = snapshot(sessions)
    assert create(client, bob.auth, "/customers", "customer", name="Mine").status_code == 404
    other = create(
        client, bob.auth, "/packages", "package", name="X", customer_id=alice.customer_id
    )
    assert other.status_code == 403
    token = create(client, bob.auth, "/api-tokens", "api-token", customer_id=alice.customer_id)
    assert token.status_code == 404
    assert snapshot(sessions) == before


def test_without_a_token_everything_is_401(client: TestClient) -> None:
    for path in ("/customers", "/packages", "/api-tokens", "/customers/1", "/api-tokens/1"):
        assert client.get(path).status_code == 401

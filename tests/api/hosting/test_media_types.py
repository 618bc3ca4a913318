"""JSON:API 1.1 content negotiation: 415 for bodies not sent as the JSON:API media type,
406 when the client does not accept it, and the exact media type on every answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.errors import NotAcceptable, UnsupportedMediaType
from postmeister.api.hosting.media import check_accept, check_content_type
from postmeister.config import Settings
from tests.api.hosting.jsonapi import JSONAPI, codes, mailbox
from tests.support.factories import Tenant
from tests.support.snapshot import snapshot

SPEC_MAILBOX = {
    "data": {
        "type": "email-address",
        "attributes": {"address": "postfach@alice.example", "address_type": "mailbox"},
    }
}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        f"{JSONAPI}; charset=utf-8",
        f"{JSONAPI}; version=1.1",
        f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"',
        "application/vnd.api+json-seq",
    ],
)
def test_a_body_in_another_media_type_is_415_and_changes_nothing(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session], content_type: str
) -> None:
    before = snapshot(sessions)
    response = client.post(
        "/email-addresses",
        json=SPEC_MAILBOX,
        headers={**alice.auth, "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert codes(response) == ["unsupported-media-type"]
    assert snapshot(sessions) == before


def test_a_body_without_content_type_is_415(client: TestClient, alice: Tenant) -> None:
    response = client.post(
        "/email-addresses",
        content=b'{"data": {"type": "email-address", "attributes": {}}}',
        headers=alice.auth,
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    [JSONAPI, f'{JSONAPI}; profile="https://example.com/profile"', "Application/Vnd.Api+JSON"],
)
def test_the_jsonapi_media_type_with_a_profile_is_accepted(
    client: TestClient, alice: Tenant, content_type: str
) -> None:
    response = client.post(
        "/email-addresses", json=SPEC_MAILBOX, headers={**alice.auth, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "text/html, application/xml;q=0.9",
        f"{JSONAPI}; charset=utf-8",
        f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"',
        f"{JSONAPI};q=0, application/json",
        "*/*;q=0",
    ],
)
def test_an_accept_header_without_plain_jsonapi_is_406(
    client: TestClient, alice: Tenant, accept: str
) -> None:
    response = client.get("/email-addresses", headers={**alice.auth, "Accept": accept})
    assert response.status_code == 406
    assert response.headers["content-type"] == JSONAPI
    assert codes(response) == ["not-acceptable"]


@pytest.mark.parametrize(
    "accept",
    [
        JSONAPI,
        "*/*",
        "application/*",
        f'{JSONAPI}; profile="https://example.com/p", {JSONAPI}; charset=utf-8',
        f"application/json, {JSONAPI};q=0.5",
        f'text/html, {JSONAPI}; ext="https://jsonapi.org/ext/atomic", */*;q=0.1',
    ],
)
def test_accept_headers_that_allow_plain_jsonapi_are_served(
    client: TestClient, alice: Tenant, accept: str
) -> None:
    response = client.get("/email-addresses", headers={**alice.auth, "Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSONAPI


def test_no_accept_header_means_anything_goes(client: TestClient, alice: Tenant) -> None:
    response = client.get("/email-addresses", headers={**alice.auth, "Accept": ""})
    assert response.status_code == 200


def test_every_answer_and_every_error_is_a_jsonapi_document(
    client: TestClient, alice: Tenant
) -> None:
    created = mailbox(client, alice)
    for response in (
        client.get(f"/email-addresses/{created['id']}", headers=alice.auth),
        client.get("/email-addresses/999", headers=alice.auth),
        client.get("/email-addresses"),
        client.put("/email-addresses/1", headers=alice.auth),
        client.get("/email-addresses/1/nothing-here", headers=alice.auth),
    ):
        assert response.headers["content-type"] == JSONAPI, response.request.url
        assert "jsonapi" in response.json()
    unknown_route = client.get("/email-addresses/1/nothing-here", headers=alice.auth)
    assert unknown_route.status_code == 404
    wrong_method = client.put("/email-addresses/1", headers=alice.auth)
    assert wrong_method.status_code == 405
    assert "allow" in wrong_method.headers


def test_checks_as_pure_functions() -> None:
    check_content_type(JSONAPI)
    check_content_type(f'{JSONAPI};profile="a b"')
    with pytest.raises(UnsupportedMediaType):
        check_content_type(None)
    with pytest.raises(UnsupportedMediaType):
        check_content_type(f'{JSONAPI}; ext=""; charset="x"')
    check_accept(None)
    check_accept(f'text/plain, {JSONAPI}; profile="x,y"')
    with pytest.raises(NotAcceptable):
        check_accept('text/plain; q="0,5", application/json')
    with pytest.raises(NotAcceptable):
        check_accept("garbage")


def test_transport_refusals_are_jsonapi_documents_here(
    client: TestClient, alice: Tenant, settings: Settings
) -> None:
    huge = b"{" + b" " * (settings.http.max_body_bytes + 1) + b"}"
    too_large = client.post(
        "/email-addresses", content=huge, headers={**alice.auth, "Content-Type": JSONAPI}
    )
    assert too_large.status_code == 413
    assert codes(too_large) == ["body-too-large"]
    with TestClient(client.app, base_url="http://testserver") as plain:
        refused = plain.get("/email-addresses", headers=alice.auth)
    assert refused.status_code == 403
    assert codes(refused) == ["https-required"]
    # The controller dialect keeps its own format for the same refusal.
    with TestClient(client.app, base_url="http://testserver") as plain:
        controller = plain.get("/mail/account/", headers=alice.auth)
    assert controller.headers["content-type"] == "application/problem+json"

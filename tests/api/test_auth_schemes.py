"""The API token the way existing clients send it (issue 11, item 1): `Bearer`, `Token`
(Django REST Framework) and HTTP Basic with the token as the password, on both dialects and
both databases. The scheme never widens or narrows what a token may do."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.common import token_from_authorization
from postmeister.api.errors import WWW_AUTHENTICATE
from postmeister.models import ApiToken
from tests.api.hosting.jsonapi import JSONAPI
from tests.support.factories import STRONG_PASSWORD, Tenant, make_token


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer pm_abc", "pm_abc"),
        ("bearer   pm_abc  ", "pm_abc"),
        ("Token pm_abc", "pm_abc"),
        ("TOKEN pm_abc", "pm_abc"),
        (basic("token", "pm_abc"), "pm_abc"),
        (basic("", "pm_abc"), "pm_abc"),
        (basic("a:b", "pm_abc"), "b:pm_abc"),  # the first colon ends the user (RFC 7617)
        (basic("ü-user", "pm_abc"), "pm_abc"),
        (basic("token", ""), None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic !!!not-base64", None),
        ("Basic " + base64.b64encode(b"user:\xff\xfe").decode(), None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Digest pm_abc", None),
        ("pm_abc", None),
        ("", None),
    ],
)
def test_the_token_is_read_from_each_scheme(header: str, token: str | None) -> None:
    assert token_from_authorization(header) == token


def test_a_colon_in_the_user_name_is_part_of_the_password() -> None:
    # RFC 7617: the user-id cannot contain a colon, so the password is all after the first.
    assert token_from_authorization(basic("user", "pm_a:b")) == "pm_a:b"


def _headers(scheme: str, token: str) -> dict[str, str]:
    if scheme == "basic":
        return {"Authorization": basic("token", token)}
    return {"Authorization": f"{scheme} {token}"}


SCHEMES = ["Bearer", "Token", "basic"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_both_dialects_accept_the_token_in_every_scheme(
    client: TestClient, alice: Tenant, bob: Tenant, scheme: str
) -> None:
    auth = _headers(scheme, alice.token)
    created = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    listed = client.get("/mail/account/", headers=auth)
    assert [a["id"] for a in listed.json()] == [f"info@{alice.domain}"]
    hosting = client.get("/email-addresses", headers={**auth, "Accept": JSONAPI})
    assert hosting.status_code == 200
    assert [d["attributes"]["address"] for d in hosting.json()["data"]] == [f"info@{alice.domain}"]
    # The scheme changes nothing about tenancy: Bob's token in the same scheme sees nothing
    # of Alice's, and her account is a 404 to him.
    bob_auth = _headers(scheme, bob.token)
    assert client.get("/mail/account/", headers=bob_auth).json() == []
    assert client.get(f"/mail/account/info@{alice.domain}/", headers=bob_auth).status_code == 404


def test_a_client_with_the_token_in_its_base_url_works(client: TestClient, alice: Tenant) -> None:
    # httpx (like requests and most clients) turns `https://token:pm_…@host/` into Basic.
    response = client.get("/mail/account/", auth=("token", alice.token))
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_wrong_token_is_the_same_401_in_every_scheme(
    client: TestClient, sessions: sessionmaker[Session], scheme: str
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    expired = make_token(sessions, admin=True, expires_at=soon)
    with sessions.begin() as session:  # let it expire
        session.execute(
            update(ApiToken)
            .where(ApiToken.expires_at.is_not(None))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    for token in ("pm_unknown", expired):
        for path, accept in (("/mail/account/", "*/*"), ("/email-addresses", JSONAPI)):
            response = client.get(path, headers={**_headers(scheme, token), "Accept": accept})
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == WWW_AUTHENTICATE


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_read_only_token_stays_read_only_in_every_scheme(
    client: TestClient, sessions: sessionmaker[Session], alice: Tenant, scheme: str
) -> None:
    read_only = make_token(sessions, customer_id=alice.customer_id, read_only=True)
    auth = _headers(scheme, read_only)
    assert client.get("/mail/account/", headers=auth).status_code == 200
    refused = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=auth,
    )
    assert refused.status_code == 403
    assert client.get("/mail/account/", headers=_headers(scheme, alice.token)).json() == []


def test_the_challenge_names_every_scheme(client: TestClient) -> None:
    challenge = client.get("/mail/account/").headers["www-authenticate"]
    for scheme in ("Bearer", "Basic", "Token"):
        assert scheme in challenge

"""The controller lists' two shapes (issue 11): the spec's plain array, streamed in chunks,
and DRF's page envelope with `page`/`page_size`; on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.controller import lists
from tests.support.factories import STRONG_PASSWORD, Tenant, add_domain_to


def add_accounts(client: TestClient, tenant: Tenant, count: int, domain: str = "") -> list[str]:
    ids = []
    for n in range(count):
        body = {"name": f"u{n}", "domain": domain or tenant.domain, "password": STRONG_PASSWORD}
        response = client.post("/mail/account/", json=body, headers=tenant.auth)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def add_alias(client: TestClient, tenant: Tenant, name: str) -> str:
    body = {"name": name, "domain": tenant.domain, "to": f"u0@{tenant.domain}"}
    response = client.post("/mail/alias/", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_without_page_parameters_the_list_is_a_plain_array_across_chunks(
    client: TestClient, alice: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "STREAM_CHUNK", 2)
    ids = add_accounts(client, alice, 5)
    response = client.get("/mail/account/", headers=alice.auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    listed = response.json()
    assert [a["id"] for a in listed] == ids
    assert set(listed[0]) == {
        "id", "name", "domain", "password", "spoofing_whitelist", "submission_disabled",
        "subaddress_extension",
    }  # fmt: skip


def test_an_empty_plain_list_is_an_empty_array(client: TestClient, alice: Tenant) -> None:
    response = client.get("/mail/account/", headers=alice.auth)
    assert response.status_code == 200
    assert response.content == b"[]"


def test_the_streamed_list_carries_the_security_headers(client: TestClient, alice: Tenant) -> None:
    add_accounts(client, alice, 1)
    response = client.get("/mail/account/", headers=alice.auth)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_an_unknown_domain_filter_is_a_problem_in_both_shapes(
    client: TestClient, alice: Tenant
) -> None:
    for params in ({"domain": "nowhere.example"}, {"domain": "nowhere.example", "page": "1"}):
        response = client.get("/mail/account/", params=params, headers=alice.auth)
        assert response.status_code == 404, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:postmeister:problem:not-found"


def test_pages_have_drf_envelopes_and_links(client: TestClient, alice: Tenant) -> None:
    ids = add_accounts(client, alice, 5)
    first = client.get("/mail/account/", params={"page_size": "2"}, headers=alice.auth).json()
    assert first == {
        "count": 5,
        "next": "https://testserver/mail/account/?page_size=2&page=2",
        "previous": None,
        "results": first["results"],
    }
    assert [a["id"] for a in first["results"]] == ids[:2]
    second = client.get(first["next"], headers=alice.auth).json()
    assert [a["id"] for a in second["results"]] == ids[2:4]
    assert second["previous"] == "https://testserver/mail/account/?page_size=2"
    third = client.get(second["next"], headers=alice.auth).json()
    assert [a["id"] for a in third["results"]] == ids[4:]
    assert third["next"] is None
    assert third["previous"] == "https://testserver/mail/account/?page_size=2&page=2"
    last = client.get("/mail/account/?page=last&page_size=2", headers=alice.auth).json()
    assert last["results"] == third["results"]


def test_following_next_keeps_the_domain_filter(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    add_domain_to(sessions, alice, "second.example")
    add_accounts(client, alice, 2)
    wanted = add_accounts(client, alice, 3, domain="second.example")
    seen: list[str] = []
    url: str | None = "/mail/account/?domain=second.example&page_size=1"
    while url is not None:
        page = client.get(url, headers=alice.auth).json()
        assert page["count"] == 3
        seen += [a["id"] for a in page["results"]]
        url = page["next"]
        assert url is None or "domain=second.example" in url
    assert seen == wanted


def test_page_size_10000_as_clients_send_it(client: TestClient, alice: Tenant) -> None:
    ids = add_accounts(client, alice, 3)
    page = client.get("/mail/account/?page_size=10000", headers=alice.auth).json()
    assert page["count"] == 3
    assert page["next"] is None and page["previous"] is None
    assert [a["id"] for a in page["results"]] == ids


def test_page_alone_uses_the_default_size_and_above_the_maximum_is_clamped(
    client: TestClient, alice: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "PAGE_SIZE", 2)
    monkeypatch.setattr(lists, "MAX_PAGE_SIZE", 3)
    ids = add_accounts(client, alice, 4)
    default = client.get("/mail/account/?page=1", headers=alice.auth).json()
    assert [a["id"] for a in default["results"]] == ids[:2]
    clamped = client.get("/mail/account/?page_size=50", headers=alice.auth).json()
    assert [a["id"] for a in clamped["results"]] == ids[:3]
    assert clamped["next"] == "https://testserver/mail/account/?page_size=50&page=2"
    huge = client.get("/mail/account/?page_size=" + "9" * 40, headers=alice.auth)
    assert len(huge.json()["results"]) == 3


def test_bobs_pages_never_contain_alices_addresses(
    client: TestClient, alice: Tenant, bob: Tenant
) -> None:
    add_accounts(client, alice, 3)
    bobs = add_accounts(client, bob, 2)
    page = client.get("/mail/account/?page_size=10000", headers=bob.auth).json()
    assert page["count"] == 2
    assert [a["id"] for a in page["results"]] == bobs
    assert [a["id"] for a in client.get("/mail/account/", headers=bob.auth).json()] == bobs


def test_the_admin_sees_every_tenant_and_alias_lists_page_too(
    client: TestClient, alice: Tenant, bob: Tenant, admin_auth: dict[str, str]
) -> None:
    accounts = add_accounts(client, alice, 1) + add_accounts(client, bob, 1)
    aliases = [add_alias(client, alice, "a"), add_alias(client, bob, "b")]
    listed = client.get("/mail/account/", headers=admin_auth).json()
    assert [a["id"] for a in listed] == accounts
    page = client.get("/mail/alias/?page_size=1", headers=admin_auth).json()
    assert page["count"] == 2
    assert page["results"][0]["id"] == aliases[0]
    assert page["next"] == "https://testserver/mail/alias/?page_size=1&page=2"
    assert [a["id"] for a in client.get("/mail/alias/", headers=admin_auth).json()] == aliases


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "4", "99999999999999999999999"])
def test_a_page_that_does_not_exist_is_drfs_invalid_page(
    client: TestClient, alice: Tenant, page: str
) -> None:
    add_accounts(client, alice, 3)
    response = client.get(f"/mail/account/?page_size=1&page={page}", headers=alice.auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:postmeister:problem:invalid-page"
    assert response.json()["detail"] == "Invalid page."


def test_page_one_of_an_empty_list_is_an_empty_page(client: TestClient, alice: Tenant) -> None:
    page = client.get("/mail/account/?page=1", headers=alice.auth).json()
    assert page == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("size", ["0", "-5", "ten", ""])
def test_a_page_size_that_is_not_a_positive_integer_is_refused(
    client: TestClient, alice: Tenant, size: str
) -> None:
    response = client.get(f"/mail/account/?page_size={size}", headers=alice.auth)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:postmeister:problem:invalid-parameter"

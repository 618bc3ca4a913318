"""The controller dialect's /mail/account/ routes, driven over HTTP on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.hashing import PasswordHashing
from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant
from tests.support.snapshot import snapshot


def create_account(client: TestClient, tenant: Tenant, name: str = "info", **extra: object):  # type: ignore[no-untyped-def]
    body = {"name": name, "domain": tenant.domain, "password": STRONG_PASSWORD, **extra}
    return client.post("/mail/account/", json=body, headers=tenant.auth)


def verifies(hashed: str, plain: str) -> bool:
    return PasswordHashing(PasswordSettings()).verify(hashed, plain)


def test_create_account_returns_the_spec_model_with_a_hash(
    client: TestClient, alice: Tenant
) -> None:
    response = create_account(client, alice)
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["id"] == "info@alice.example"
    assert account["name"] == "info"
    assert account["domain"] == "alice.example"
    assert account["submission_disabled"] is False
    assert account["spoofing_whitelist"] == ""
    assert account["password"].startswith("$argon2id$")
    assert verifies(account["password"], STRONG_PASSWORD)
    assert STRONG_PASSWORD not in response.text


def test_create_account_from_form_fields(client: TestClient, alice: Tenant) -> None:
    form = {
        "name": "Sales",
        "domain": "ALICE.example",
        "password": STRONG_PASSWORD,
        "submission_disabled": "true",
        "spoofing_whitelist": "office@alice.example, skylime.net",
    }
    response = client.post("/mail/account/", data=form, headers=alice.auth)
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["id"] == "sales@alice.example"
    assert account["submission_disabled"] is True
    assert account["spoofing_whitelist"] == "office@alice.example,skylime.net"


def test_get_list_and_domain_filter(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    from tests.support.factories import add_domain_to

    add_domain_to(sessions, alice, "second.example")
    create_account(client, alice, "one")
    client.post(
        "/mail/account/",
        json={"name": "two", "domain": "second.example", "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    listed = client.get("/mail/account/", headers=alice.auth).json()
    assert [a["id"] for a in listed] == ["one@alice.example", "two@second.example"]
    filtered = client.get("/mail/account/", params={"domain": "second.example"}, headers=alice.auth)
    assert [a["id"] for a in filtered.json()] == ["two@second.example"]
    one = client.get("/mail/account/ONE@alice.example/", headers=alice.auth)
    assert one.status_code == 200
    assert one.json()["id"] == "one@alice.example"


def test_idn_domain_is_shown_as_entered_and_found_in_both_forms(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    from tests.support.factories import add_domain_to

    add_domain_to(sessions, alice, "bücher.example")
    response = client.post(
        "/mail/account/",
        json={"name": "kasse", "domain": "xn--bcher-kva.example", "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert response.status_code == 201, response.text
    assert response.json()["domain"] == "bücher.example"
    assert (
        client.get("/mail/account/kasse@xn--bcher-kva.example/", headers=alice.auth).status_code
        == 200
    )
    assert client.get("/mail/account/kasse@BÜCHER.example/", headers=alice.auth).status_code == 200


def test_set_password_replaces_the_hash(client: TestClient, alice: Tenant) -> None:
    old = create_account(client, alice).json()["password"]
    response = client.post(
        "/mail/account/info@alice.example/set_password/",
        data={"password": OTHER_STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert response.status_code == 200, response.text
    new = response.json()["password"]
    assert new != old
    assert verifies(new, OTHER_STRONG_PASSWORD)
    assert not verifies(new, STRONG_PASSWORD)


def test_set_password_applies_the_password_policy(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    create_account(client, alice)
    before = snapshot(sessions)
    response = client.post(
        "/mail/account/info@alice.example/set_password/",
        json={"password": "short"},
        headers=alice.auth,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("password-policy")
    assert "min_length" in {e["rule"] for e in problem["errors"]}
    assert "short" not in response.text.replace("too short", "")
    assert snapshot(sessions) == before


def test_submission_can_be_disabled_and_enabled(client: TestClient, alice: Tenant) -> None:
    create_account(client, alice)
    url = "/mail/account/info@alice.example/"
    disabled = client.post(url + "disable_submission/", headers=alice.auth)
    assert disabled.status_code == 200
    assert disabled.json()["submission_disabled"] is True
    assert client.get(url, headers=alice.auth).json()["submission_disabled"] is True
    enabled = client.post(url + "enable_submission/", headers=alice.auth)
    assert enabled.json()["submission_disabled"] is False


def test_spoofing_whitelist_is_validated_and_stored_as_a_list(
    client: TestClient, alice: Tenant
) -> None:
    create_account(client, alice)
    url = "/mail/account/info@alice.example/set_spoofing_whitelist/"
    ok = client.post(
        url, json={"spoofing_whitelist": "Office@Alice.example,skylime.net"}, headers=alice.auth
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["spoofing_whitelist"] == "office@alice.example,skylime.net"
    star = client.post(url, json={"spoofing_whitelist": "*"}, headers=alice.auth)
    assert star.json()["spoofing_whitelist"] == "*"
    bad = client.post(
        url, json={"spoofing_whitelist": "ok.example,not an address,@x"}, headers=alice.auth
    )
    assert bad.status_code == 422
    fields = [e["field"] for e in bad.json()["errors"]]
    assert fields == ["spoofing_whitelist[1]", "spoofing_whitelist[2]"]
    assert (
        client.get("/mail/account/info@alice.example/", headers=alice.auth).json()[
            "spoofing_whitelist"
        ]
        == "*"
    )
    cleared = client.post(url, json={"spoofing_whitelist": ""}, headers=alice.auth)
    assert cleared.json()["spoofing_whitelist"] == ""


def test_delete_account(client: TestClient, alice: Tenant) -> None:
    create_account(client, alice)
    assert client.delete("/mail/account/info@alice.example/", headers=alice.auth).status_code == 204
    assert client.get("/mail/account/info@alice.example/", headers=alice.auth).status_code == 404
    assert client.delete("/mail/account/info@alice.example/", headers=alice.auth).status_code == 404


def test_duplicate_account_is_409_case_insensitively(client: TestClient, alice: Tenant) -> None:
    assert create_account(client, alice, "info").status_code == 201
    again = create_account(client, alice, "INFO")
    assert again.status_code == 409
    assert again.json()["type"].endswith("already-exists")


def test_account_cannot_shadow_an_alias(client: TestClient, alice: Tenant) -> None:
    client.post(
        "/mail/alias/",
        json={"name": "office", "domain": alice.domain, "to": "x@y.example"},
        headers=alice.auth,
    )
    response = create_account(client, alice, "office")
    assert response.status_code == 409
    assert "alias" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"name": "a", "domain": "alice.example"}, 422, ["password"]),
        (
            {"name": "a", "domain": "alice.example", "password": STRONG_PASSWORD, "colour": "red"},
            422,
            ["colour"],
        ),
        ({"name": 5, "domain": "alice.example", "password": STRONG_PASSWORD}, 422, ["name"]),
        (
            {
                "name": "a",
                "domain": "alice.example",
                "password": STRONG_PASSWORD,
                "submission_disabled": "maybe",
            },
            422,
            ["submission_disabled"],
        ),
        ({"name": "a b", "domain": "alice.example", "password": STRONG_PASSWORD}, 422, ["name"]),
        ({"name": "x" * 65, "domain": "alice.example", "password": STRONG_PASSWORD}, 422, ["name"]),
        ({"name": "a@b", "domain": "alice.example", "password": STRONG_PASSWORD}, 422, ["name"]),
        ({"name": "a", "domain": "unknown.example", "password": STRONG_PASSWORD}, 404, None),
        ({"name": "a", "domain": "not a domain", "password": STRONG_PASSWORD}, 422, ["domain"]),
        (
            {
                "name": "a",
                "domain": "alice.example",
                "password": STRONG_PASSWORD,
                "spoofing_whitelist": "a@@b",
            },
            422,
            ["spoofing_whitelist[0]"],
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    body: dict[str, object],
    status: int,
    fields: list[str] | None,
) -> None:
    before = snapshot(sessions)
    response = client.post("/mail/account/", json=body, headers=alice.auth)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    if fields is not None:
        assert [e["field"] for e in problem["errors"]] == fields
    assert snapshot(sessions) == before


def test_address_longer_than_254_octets_is_refused(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    from tests.support.factories import add_domain_to

    long_domain = ".".join(["d" * 50] * 4) + ".example"  # 211 octets: address is 275
    add_domain_to(sessions, alice, long_domain)
    response = client.post(
        "/mail/account/",
        json={"name": "l" * 63, "domain": long_domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert "254" in response.text


def test_malformed_json_and_wrong_media_type(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(sessions)
    headers = {**alice.auth, "content-type": "application/json"}
    broken = client.post("/mail/account/", content=b'{"name": "a", ', headers=headers)
    assert broken.status_code == 400
    assert broken.json()["type"].endswith("malformed-body")
    array = client.post("/mail/account/", content=b"[1, 2]", headers=headers)
    assert array.status_code == 400
    xml = client.post(
        "/mail/account/", content=b"<a/>", headers={**alice.auth, "content-type": "text/xml"}
    )
    assert xml.status_code == 415
    assert snapshot(sessions) == before


def test_oversized_body_is_413(client: TestClient, alice: Tenant) -> None:
    huge = {"name": "a", "domain": alice.domain, "password": "x" * 2_000_000}
    response = client.post("/mail/account/", json=huge, headers=alice.auth)
    assert response.status_code == 413
    assert response.json()["type"].endswith("body-too-large")


def test_unknown_route_and_method_are_problem_documents(client: TestClient, alice: Tenant) -> None:
    missing = client.get("/mail/nothing/", headers=alice.auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = client.patch("/mail/account/", headers=alice.auth)
    assert wrong.status_code == 405

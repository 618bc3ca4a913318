"""API tokens from the customer menu and the administration, over HTTP on both databases:
the secret is shown once and works against the API at once, the rights chosen on the form
hold there, a revoked token is refused on its next request, and another customer's token
is "not found"."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.web import tokens as web_tokens
from tests.support.factories import Tenant, add_domain_to
from tests.web.conftest import Browser

SECRET = re.compile(r'id="secret"[^>]*>(pm_[^<]+)<')


def _secret(page: str) -> str:
    found = SECRET.search(page)
    assert found, "the secret page shows the token"
    return found.group(1)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_customer_creates_a_token_that_works_once_shown_and_revokes_it(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    browser.login(*alice_user)
    listed = browser.get("/ui/customer/tokens")
    assert listed.status_code == 200
    assert 'href="/ui/customer/tokens" aria-current="page"' in listed.text
    created = browser.post("/ui/customer/tokens", {"label": "billing export"})
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    secret = _secret(created.text)
    assert app_client.get("/domains", headers=_bearer(secret)).status_code == 200
    again = browser.get("/ui/customer/tokens")
    assert "billing export" in again.text
    assert secret not in again.text, "the secret is shown only once"
    token_id = re.findall(r'id="token-(\d+)"', again.text)[-1]
    revoked = browser.post(f"/ui/customer/tokens/{token_id}/revoke", follow_redirects=True)
    assert revoked.status_code == 200 and "Revoked." in revoked.text
    assert app_client.get("/domains", headers=_bearer(secret)).status_code == 401
    assert alice.token not in revoked.text
    assert app_client.get("/domains", headers=alice.auth).status_code == 200, "others stay"


def test_the_rights_chosen_on_the_form_hold_in_the_api(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    browser.login(*alice_user)
    page = browser.get("/ui/customer/tokens")
    assert f'value="{alice.domain}"' in page.text, "the customer's domains can be ticked"
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    created = browser.post("/ui/customer/tokens", {"label": "reader", "read_only": "on",
                           "domains": alice.domain, "expires": tomorrow})  # fmt: skip
    secret = _secret(created.text)
    seen = app_client.get("/domains", headers=_bearer(secret))
    assert seen.status_code == 200
    write = app_client.post(
        "/mail/account/", json={"name": "x", "domain": alice.domain, "password": "irrelevant"},
        headers=_bearer(secret),
    )  # fmt: skip
    assert write.status_code == 403, "a read-only token writes nothing"
    listed = browser.get("/ui/customer/tokens").text
    assert "read only" in listed and f"{tomorrow} 00:00 UTC" in listed


def test_a_customer_with_more_domains_than_checkboxes_types_them(
    browser: Browser, alice: Tenant, bob: Tenant, alice_user: tuple[str, str],
    app_client: TestClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(web_tokens, "CHECKBOXES", 2)
    for name in ("second.alice.example", "third.alice.example"):
        add_domain_to(sessions, alice, name)
    browser.login(*alice_user)
    page = browser.get("/ui/customer/tokens").text
    assert 'name="domains_typed"' in page and 'name="domains"' not in page
    created = browser.post("/ui/customer/tokens", {"label": "two of three",
                           "domains_typed": f"Third.Alice.example\n\n{alice.domain}, "})  # fmt: skip
    secret = _secret(created.text)
    seen = app_client.get("/domains", headers=_bearer(secret)).json()["data"]
    assert sorted(d["attributes"]["name"] for d in seen) == sorted(
        [alice.domain, "third.alice.example"]
    )
    # The other customer's domain typed in is refused like a missing one; nothing is made.
    before = browser.get("/ui/customer/tokens").text.count('id="token-')
    foreign = browser.post("/ui/customer/tokens", {"domains_typed": bob.domain})
    assert foreign.status_code == 422 and "domains" in foreign.text
    assert browser.get("/ui/customer/tokens").text.count('id="token-') == before


def test_a_refused_token_form_names_the_field(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    browser.login(*alice_user)
    before = browser.get("/ui/customer/tokens").text.count('id="token-')
    past = browser.post("/ui/customer/tokens", {"label": "old", "expires": "2001-01-01"})
    assert past.status_code == 422
    assert "expires_at" in past.text and "the expiry lies in the past" in past.text
    foreign = browser.post("/ui/customer/tokens", {"domains": "bob.example"})
    assert foreign.status_code == 422 and "domains" in foreign.text
    assert browser.get("/ui/customer/tokens").text.count('id="token-') == before


def test_another_customers_token_is_not_found(
    browser: Browser, alice: Tenant, bob: Tenant, alice_user: tuple[str, str],
    app_client: TestClient,
) -> None:  # fmt: skip
    bobs = app_client.get("/api-tokens", headers=bob.auth).json()["data"][0]["id"]
    browser.login(*alice_user)
    listed = browser.get("/ui/customer/tokens")
    assert f'id="token-{bobs}"' not in listed.text
    for path in (f"/ui/customer/tokens/{bobs}/revoke", "/ui/customer/tokens/99999/revoke",
                 "/ui/customer/tokens/abc/revoke"):  # fmt: skip
        refused = browser.post(path)
        assert refused.status_code == 404, path
        assert "Not found." in refused.text
    assert app_client.get("/domains", headers=bob.auth).status_code == 200
    # A customer's page never offers an admin token, whatever the form sends.
    created = browser.post(
        "/ui/customer/tokens", {"admin": "on", "customer_id": str(bob.customer_id)}
    )
    secret = _secret(created.text)
    mine = app_client.get("/api-tokens", headers=_bearer(secret)).json()["data"]
    assert {item["attributes"]["customer_id"] for item in mine} == {alice.customer_id}
    assert not any(item["attributes"]["admin"] for item in mine)


def test_an_admin_creates_a_customers_token_lists_every_token_and_revokes(
    browser: Browser, alice: Tenant, bob: Tenant, admin_user: tuple[str, str],
    alice_user: tuple[str, str], app_client: TestClient,
) -> None:  # fmt: skip
    browser.login(*admin_user)
    listed = browser.get("/ui/admin/tokens")
    assert listed.status_code == 200
    assert "Customer ID" in listed.text
    created = browser.post("/ui/admin/tokens", {"label": "for bob",
                           "customer_id": str(bob.customer_id)})  # fmt: skip
    secret = _secret(created.text)
    theirs = app_client.get("/api-tokens", headers=_bearer(secret)).json()["data"]
    assert {item["attributes"]["customer_id"] for item in theirs} == {bob.customer_id}
    only_bob = browser.get("/ui/admin/tokens", params={"customer": str(bob.customer_id)}).text
    assert "for bob" in only_bob
    ids = re.findall(r'id="token-(\d+)"', only_bob)
    everyone = browser.get("/ui/admin/tokens").text
    assert len(re.findall(r'id="token-(\d+)"', everyone)) > len(ids)
    revoked = browser.post(f"/ui/admin/tokens/{ids[-1]}/revoke")
    assert revoked.status_code == 303
    assert app_client.get("/domains", headers=_bearer(secret)).status_code == 401
    # The admin pages are an admin's: a customer user is sent to the login page.
    customer = Browser(browser.client)
    customer.client.cookies.clear()
    customer.login(*alice_user)
    assert customer.get("/ui/admin/tokens").status_code == 303
    assert customer.post(f"/ui/admin/tokens/{ids[0]}/revoke").status_code == 303

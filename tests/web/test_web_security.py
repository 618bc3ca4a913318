"""The web interface's security properties, over HTTP against the real app, on both
databases: headers, cookie flags, CSRF and Origin, throttling, sessions, tenancy."""

from __future__ import annotations

import datetime as dt

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import unit_of_work
from postmeister.domain.web_users import rules
from postmeister.models import AuditEvent, Customer
from postmeister.web.security import CSP
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.web.conftest import Browser


def test_every_page_sends_the_policy_headers(app_client: TestClient) -> None:
    for path in ("/ui/login", "/ui/mailbox/login", "/ui/customer", "/ui/no-such-page"):
        response = app_client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
    page = app_client.get("/ui/login")
    assert "<script>" not in page.text and "style=" not in page.text
    assert 'src="/ui/static/postmeister.js"' in page.text
    assert app_client.get("/ui/static/postmeister.css").status_code == 200


def test_the_session_cookie_is_secure_httponly_strict_and_scoped(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    browser.get("/ui/login")
    response = browser.post("/ui/login", {"email": alice_user[0], "password": alice_user[1]})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/customer"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("pm_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/ui"):
        assert flag.lower() in cookie.lower(), cookie
    assert browser.get("/ui/customer").status_code == 200


def test_a_form_without_the_csrf_token_or_from_another_site_is_refused(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    browser.get("/ui/login")
    missing = browser.post("/ui/login", {"email": alice_user[0], "password": alice_user[1]},
                           csrf=False)  # fmt: skip
    assert missing.status_code == 403
    assert "pm_session" not in missing.headers.get("set-cookie", "")
    foreign = browser.post("/ui/login", {"email": alice_user[0], "password": alice_user[1]},
                           origin="https://evil.example")  # fmt: skip
    assert foreign.status_code == 403
    cross = browser.client.post(
        "/ui/login",
        data={"email": alice_user[0], "password": alice_user[1], "csrf": browser.csrf or ""},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    )
    assert cross.status_code == 403
    assert browser.login(*alice_user).url.path == "/ui/customer"
    # Logged in, a form needs the session's own token, not any token.
    wrong = browser.post("/ui/account/locale", {"locale": "de", "csrf": "0" * 64})
    assert wrong.status_code == 403


def test_logins_are_throttled_per_account_and_per_client(
    browser: Browser, alice_user: tuple[str, str], bob_user: tuple[str, str]
) -> None:
    email, password = alice_user
    browser.get("/ui/login")
    for _ in range(rules.MAX_FAILURES_PER_ACCOUNT):
        assert browser.post("/ui/login", {"email": email, "password": "wrong"}).status_code == 401
    refused = browser.post("/ui/login", {"email": email, "password": password})
    assert refused.status_code == 429, "the right password is refused while throttled"
    assert "pm_session" not in refused.headers.get("set-cookie", "")
    # Another account from the same client still works until the client's own limit.
    assert browser.login(*bob_user).url.path == "/ui/customer"
    for n in range(rules.MAX_FAILURES_PER_CLIENT):
        browser.post("/ui/login", {"email": f"guess{n}@bob.example", "password": "x"})
    browser.client.cookies.clear()
    browser.get("/ui/login")
    assert browser.post("/ui/login", {"email": bob_user[0], "password": bob_user[1]}
                        ).status_code == 429  # fmt: skip


def test_another_customers_address_is_not_found(
    browser: Browser, alice: Tenant, bob: Tenant, alice_user: tuple[str, str],
    app_client: TestClient,
) -> None:  # fmt: skip
    created = app_client.post(
        "/mail/account/",
        json={"name": "secret", "domain": bob.domain, "password": STRONG_PASSWORD},
        headers=bob.auth,
    )
    assert created.status_code == 201, created.text
    bobs = app_client.get(
        "/email-addresses", params={"filter[address]": f"secret@{bob.domain}"}, headers=bob.auth
    ).json()["data"][0]["id"]
    browser.login(*alice_user)
    for path in (f"/ui/customer/addresses/{bobs}", "/ui/customer/addresses/99999",
                 "/ui/customer/addresses/abc"):  # fmt: skip
        page = browser.get(path)
        assert page.status_code == 404, path
        assert "secret@" not in page.text
    for path in (f"/ui/customer/addresses/{bobs}", f"/ui/customer/addresses/{bobs}/delete",
                 f"/ui/customer/addresses/{bobs}/password"):  # fmt: skip
        assert browser.post(path, {"generate": "1"}).status_code == 404, path
    still = app_client.get(f"/email-addresses/{bobs}", headers=bob.auth)
    assert still.status_code == 200


def test_a_password_change_ends_the_other_sessions(
    browser: Browser, second_browser: Browser, alice_user: tuple[str, str]
) -> None:
    email, password = alice_user
    browser.login(email, password)
    second_browser.login(email, password)
    assert second_browser.get("/ui/customer").status_code == 200
    browser.get("/ui/account")
    changed = browser.post("/ui/account/password", {"current_password": password,
                           "password": STRONG_PASSWORD}, follow_redirects=True)  # fmt: skip
    assert changed.status_code == 200 and changed.url.path == "/ui/account"
    assert browser.get("/ui/customer").status_code == 200, "the changing session stays"
    ended = second_browser.get("/ui/customer", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/ui/login"
    second_browser.client.cookies.clear()
    assert second_browser.login(email, password).status_code == 401
    assert second_browser.login(email, STRONG_PASSWORD).url.path == "/ui/customer"


def test_totp_when_the_admin_requires_it(
    browser: Browser, second_browser: Browser, alice: Tenant, alice_user: tuple[str, str],
    admin_user: tuple[str, str], sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    second_browser.login(*admin_user)
    required = second_browser.post(f"/ui/admin/customers/{alice.customer_id}",
                                   {"action": "require_totp"}, follow_redirects=True)  # fmt: skip
    assert required.status_code == 200
    with unit_of_work(sessions, write=False) as session:
        assert session.get_one(Customer, alice.customer_id).totp_required
    enrol = browser.login(*alice_user)
    assert enrol.url.path == "/ui/login/totp"
    assert browser.get("/ui/customer", follow_redirects=False).status_code == 303
    secret = enrol.text.split('name="secret" value="')[1].split('"')[0]
    wrong = browser.post("/ui/login/totp", {"secret": secret, "code": "000000"})
    assert wrong.status_code == 401
    code = pyotp.TOTP(secret).now()
    done = browser.post("/ui/login/totp", {"secret": secret, "code": code}, follow_redirects=True)
    assert done.url.path == "/ui/customer"
    # Next time: password, then the code from the same app (no new key offered).
    browser.client.cookies.clear()
    again = browser.login(*alice_user)
    assert again.url.path == "/ui/login/totp" and 'name="secret"' not in again.text
    later = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert browser.post("/ui/login/totp", {"code": later},
                        follow_redirects=True).url.path == "/ui/customer"  # fmt: skip


def test_one_time_secrets_are_not_cached_and_changes_name_the_web_user(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], sessions: sessionmaker[Session]
) -> None:
    browser.login(*alice_user)
    browser.get("/ui/customer/addresses/new?kind=mailbox")
    created = browser.post("/ui/customer/addresses", {"kind": "mailbox", "local_part": "info",
                           "domain": alice.domain, "password": ""})  # fmt: skip
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    assert 'id="secret"' in created.text
    with unit_of_work(sessions, write=False) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.resource == "address")).one()
    assert (event.actor_kind, event.actor_label) == ("web", alice_user[0])
    trail = browser.get("/ui/customer/audit")
    assert trail.status_code == 200
    assert f"web: {alice_user[0]}" in trail.text and "info@alice.example" in trail.text


def test_the_language_follows_the_browser_then_the_users_setting(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    german = browser.get("/ui/login", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in german.text and "Anmelden" in german.text
    assert '<html lang="en">' in browser.get("/ui/login").text
    browser.login(*alice_user)
    browser.get("/ui/account")
    browser.post("/ui/account/locale", {"locale": "de"})
    assert '<html lang="de">' in browser.get("/ui/customer").text


def test_a_mailbox_login_is_throttled_whatever_the_spelling(
    browser: Browser, alice: Tenant, app_client: TestClient
) -> None:
    created = app_client.post(
        "/mail/account/",
        json={"name": "guarded", "domain": alice.domain, "password": STRONG_PASSWORD},
        headers=alice.auth,
    )
    assert created.status_code == 201, created.text
    browser.get("/ui/mailbox/login")
    for spelling in ("Guarded@Alice.example", "GUARDED@alice.example", "guarded@ALICE.EXAMPLE",
                     "guarded@alice.example", "Guarded@alice.Example"):  # fmt: skip
        failed = browser.post("/ui/mailbox/login", {"email": spelling, "password": "wrong"})
        assert failed.status_code == 401
    refused = browser.post(
        "/ui/mailbox/login", {"email": "guarded@alice.example", "password": STRONG_PASSWORD}
    )
    assert refused.status_code == 429

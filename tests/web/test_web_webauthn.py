"""WebAuthn keys over HTTP on both databases, as the account page's and the login page's
script use them (a software authenticator answers for the browser): add a key, log in
with the password and the key, the key alone satisfies a customer that requires two-factor
(no TOTP enrolment forced), an answer is good for one login only, another user's key id
in a URL is "not found", removing needs the password. Without JavaScript the keys are
still listed, renamed and removed with plain forms."""

from __future__ import annotations

import datetime as dt
import json

import pyotp
import pytest

from postmeister.config import Settings
from tests.support.factories import Tenant
from tests.support.webauthn_authenticator import SoftAuthenticator
from tests.web.conftest import Browser
from tests.web.test_web_totp_replay import _enrol

ORIGIN = "https://testserver"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The web interface's public host is the test client's."""
    return settings.model_copy(
        update={"dns": settings.dns.model_copy(update={"web_host": "testserver"})}
    )


def _add_key(browser: Browser, key: SoftAuthenticator, name: str) -> int:
    browser.get("/ui/account")
    options = browser.post("/ui/account/webauthn/options")
    assert options.status_code == 200, options.text
    assert options.json()["rp"]["id"] == "testserver"
    added = browser.post(
        "/ui/account/webauthn", {"name": name, "credential": key.create(options.text)}
    )
    assert added.status_code == 303, added.text
    page = browser.get("/ui/account")
    assert name in page.text
    return int(page.text.split(f">{name}</th>")[0].rsplit('id="key-', 1)[1].split('"')[0])


def _require_two_factor(admin: Browser, admin_user: tuple[str, str], customer: Tenant) -> None:
    admin.login(*admin_user)
    admin.get("/ui/admin")
    admin.post(f"/ui/admin/customers/{customer.customer_id}", {"action": "require_totp"})


def _key_login(browser: Browser, user: tuple[str, str], key: SoftAuthenticator) -> str:
    """Log in with the password and the key; the path it ends on."""
    browser.client.cookies.clear()
    second = browser.login(*user)
    assert second.url.path == "/ui/login/totp"
    assert "Use security key" in second.text
    options = browser.post("/ui/login/webauthn/options")
    assert options.status_code == 200, options.text
    done = browser.post("/ui/login/webauthn", {"credential": key.get(options.text)})
    return str(done.headers.get("location", done.status_code))


def test_a_key_added_on_the_account_page_is_the_second_factor_at_login(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    assert browser.login(*alice_user).url.path == "/ui/customer"
    page = browser.get("/ui/account")
    assert "Security keys and passkeys" in page.text and "webauthn.js" in page.text
    key = SoftAuthenticator(origin=ORIGIN)
    _add_key(browser, key, "YubiKey 5")
    assert _key_login(browser, alice_user, key) == "/ui/customer"
    assert browser.get("/ui/customer").status_code == 200
    # The account page lists when it was last used.
    assert "Last used" in browser.get("/ui/account").text

    # An answer is good for one login: replayed in the next one (whose challenge it does
    # not carry), it is refused, and counts as a failed login.
    browser.client.cookies.clear()
    browser.login(*alice_user)
    options = browser.post("/ui/login/webauthn/options")
    answer = key.get(options.text)
    assert browser.post("/ui/login/webauthn", {"credential": answer}).status_code == 303
    browser.client.cookies.clear()
    browser.login(*alice_user)
    refused = browser.post("/ui/login/webauthn", {"credential": answer})
    assert refused.status_code == 401
    assert "The security key was not accepted." in refused.text
    assert browser.get("/ui/customer").status_code == 303, "still not logged in"


def test_a_key_satisfies_a_customer_that_requires_two_factor(
    browser: Browser, second_browser: Browser, alice: Tenant, alice_user: tuple[str, str],
    admin_user: tuple[str, str],
) -> None:  # fmt: skip
    browser.login(*alice_user)
    key = SoftAuthenticator(origin=ORIGIN)
    _add_key(browser, key, "Laptop")
    _require_two_factor(second_browser, admin_user, alice)
    browser.client.cookies.clear()
    second = browser.login(*alice_user)
    # No TOTP enrolment is forced on a user who has a key, and none can be slipped in.
    assert 'name="secret"' not in second.text and 'name="code"' not in second.text
    sneaked = browser.post("/ui/login/totp", {"secret": "JBSWY3DPEHPK3PXP", "code": "123456"})
    assert sneaked.status_code == 401
    assert _key_login(browser, alice_user, key) == "/ui/customer"


def test_another_users_key_is_not_found_and_removal_needs_the_password(
    browser: Browser, second_browser: Browser, alice_user: tuple[str, str],
    bob_user: tuple[str, str],
) -> None:  # fmt: skip
    second_browser.login(*bob_user)
    bert_key = _add_key(second_browser, SoftAuthenticator(origin=ORIGIN), "Bert key")
    browser.login(*alice_user)
    anna = SoftAuthenticator(origin=ORIGIN)
    anna_key = _add_key(browser, anna, "Anna key")
    assert "Bert key" not in browser.get("/ui/account").text
    for action, form in (
        ("name", {"name": "Mine"}),
        ("remove", {"current_password": alice_user[1]}),
    ):
        response = browser.post(f"/ui/account/webauthn/{bert_key}/{action}", form)
        assert response.status_code == 404, action
    for missing in ("999999", "0", "x"):
        assert (
            browser.post(f"/ui/account/webauthn/{missing}/name", {"name": "Mine"}).status_code
            == 404
        )
    assert "Bert key" in second_browser.get("/ui/account").text

    # Bert key cannot log in as Anna.
    browser.client.cookies.clear()
    browser.login(*alice_user)
    options = browser.post("/ui/login/webauthn/options")
    bert = SoftAuthenticator(origin=ORIGIN)
    assert (
        browser.post("/ui/login/webauthn", {"credential": bert.get(options.text)}).status_code
        == 401
    )
    assert _key_login(browser, alice_user, anna) == "/ui/customer"

    # Rename, then remove: the wrong password is refused, the right one removes the key.
    browser.get("/ui/account")
    assert (
        browser.post(f"/ui/account/webauthn/{anna_key}/name", {"name": "Desk key"}).status_code
        == 303
    )
    assert ">Desk key</th>" in browser.get("/ui/account").text
    wrong = browser.post(f"/ui/account/webauthn/{anna_key}/remove", {"current_password": "nope"})
    assert wrong.status_code == 422 and ">Desk key</th>" in wrong.text
    removed = browser.post(
        f"/ui/account/webauthn/{anna_key}/remove", {"current_password": alice_user[1]}
    )
    assert removed.status_code == 303
    assert ">Desk key</th>" not in browser.get("/ui/account").text
    browser.client.cookies.clear()
    assert browser.login(*alice_user).url.path == "/ui/customer", "no second factor left"


def test_a_forged_or_wrong_origin_registration_is_refused(
    browser: Browser, alice_user: tuple[str, str]
) -> None:
    browser.login(*alice_user)
    browser.get("/ui/account")
    options = browser.post("/ui/account/webauthn/options")
    phished = SoftAuthenticator(origin="https://testserver.evil.example")
    refused = browser.post(
        "/ui/account/webauthn", {"name": "Key", "credential": phished.create(options.text)}
    )
    assert refused.status_code == 422
    assert "The security key could not be added." in refused.text
    # No challenge was asked for: nothing to answer (the posted one is the client's copy).
    forged = SoftAuthenticator(origin=ORIGIN).create(json.dumps(options.json()))
    assert (
        browser.post("/ui/account/webauthn", {"name": "Key", "credential": forged}).status_code
        == 422
    )
    assert '<th scope="row">Key</th>' not in browser.get("/ui/account").text


def test_a_user_with_totp_and_a_key_logs_in_with_either(
    browser: Browser, second_browser: Browser, alice: Tenant, alice_user: tuple[str, str],
    admin_user: tuple[str, str],
) -> None:  # fmt: skip
    _require_two_factor(second_browser, admin_user, alice)
    secret, _ = _enrol(browser, alice_user)
    key = SoftAuthenticator(origin=ORIGIN)
    _add_key(browser, key, "Phone")
    browser.client.cookies.clear()
    second = browser.login(*alice_user)
    assert 'name="code"' in second.text and "Use security key" in second.text
    assert 'name="secret"' not in second.text, "no new TOTP enrolment"
    later = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert browser.post("/ui/login/totp", {"code": later}).headers["location"] == "/ui/customer"
    assert _key_login(browser, alice_user, key) == "/ui/customer"

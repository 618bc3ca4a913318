"""A TOTP code opens one session only: over HTTP on both databases (migration 0016), the
code a user logged in with is refused for every later login, and so is an older one, while
the next step's code still works."""

from __future__ import annotations

import datetime as dt

import pyotp

from tests.support.factories import Tenant
from tests.web.conftest import Browser


def _enrol(browser: Browser, user: tuple[str, str]) -> tuple[str, str]:
    """Log in, enrol an authenticator; its secret and the code that was used."""
    enrol = browser.login(*user)
    assert enrol.url.path == "/ui/login/totp"
    secret = enrol.text.split('name="secret" value="')[1].split('"')[0]
    code = pyotp.TOTP(secret).now()
    done = browser.post("/ui/login/totp", {"secret": secret, "code": code}, follow_redirects=True)
    assert done.url.path == "/ui/customer"
    return secret, code


def _second_factor(browser: Browser, user: tuple[str, str], code: str) -> int:
    browser.client.cookies.clear()
    assert browser.login(*user).url.path == "/ui/login/totp"
    return browser.post("/ui/login/totp", {"code": code}).status_code


def test_a_code_that_logged_in_once_is_refused_after(
    browser: Browser, second_browser: Browser, alice: Tenant, alice_user: tuple[str, str],
    admin_user: tuple[str, str],
) -> None:  # fmt: skip
    second_browser.login(*admin_user)
    second_browser.get("/ui/admin")
    second_browser.post(f"/ui/admin/customers/{alice.customer_id}", {"action": "require_totp"})
    secret, used = _enrol(browser, alice_user)
    assert _second_factor(browser, alice_user, used) == 401, "the enrolment code is spent"
    totp = pyotp.TOTP(secret)
    later = totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert _second_factor(browser, alice_user, later) == 303, "the next step's code works"
    assert browser.get("/ui/customer").status_code == 200
    assert _second_factor(browser, alice_user, later) == 401, "but only once"
    # An older step's code, still inside the window, is refused too.
    assert _second_factor(browser, alice_user, totp.now()) == 401
    refused = browser.get("/ui/customer")
    assert refused.status_code == 303 and refused.headers["location"] == "/ui/login"

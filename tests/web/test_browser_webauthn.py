"""A security key in Debian's headless Chromium: Chromium's own virtual authenticator (the
DevTools protocol's WebAuthn domain: CTAP2, internal transport, user verification) stands
in for the key, the page's script runs the ceremonies as in any browser. The user adds a
key on the account page, logs out, and logs in with the password and the key; axe-core
finds no serious or critical violation on the pages that show keys. Without JavaScript the
key is still renamed and removed.

WebAuthn needs a secure context and an RP ID that is a host name, not an IP address: the
app is served over HTTPS on 127.0.0.1 and the browser opens it as `https://localhost`,
which is also the configured public host (`dns.web_host`) the RP ID comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.support.factories import make_tenant
from tests.support.processes import free_port
from tests.support.web import https_in_thread, make_web_user
from tests.web.test_browser import (  # noqa: F401 - the module's Chromium fixture
    chromium,
    new_context,
    submit,
    visit,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def ui(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The app over HTTPS in a thread of this process (stopped by `should_exit`), its
    public host and port as the browser reaches it: the WebAuthn origin."""
    port = free_port()
    public = settings.model_copy(update={
        "dns": settings.dns.model_copy(update={"web_host": "localhost"}),
        "http": settings.http.model_copy(update={"port": port}),
    })  # fmt: skip
    with https_in_thread(create_app(public), port, tmp_path / "tls", name="webauthn-ui-server"):
        yield f"https://localhost:{port}"


def _virtual_authenticator(page: Page) -> None:
    """A platform authenticator that verifies its user and needs no touch (the page's own
    frame tree keeps it across navigations)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }})  # fmt: skip


def _password_step(page: Page, ui: str, email: str, password: str) -> None:
    visit(page, f"{ui}/ui/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    submit(page, "Log in")


def test_a_key_added_on_the_account_page_logs_in_with_the_password(
    ui: str,
    chromium: Browser,  # noqa: F811 - the fixture
    sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    tenant = make_tenant(sessions, name="Alice GmbH", domain="alice.example")
    email, password = make_web_user(sessions, settings, "anna@alice.example",
                                    customer_id=tenant.customer_id)  # fmt: skip
    context = new_context(chromium)
    try:
        page = context.new_page()
        _virtual_authenticator(page)
        _password_step(page, ui, email, password)
        expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

        visit(page, f"{ui}/ui/account")
        expect(page.get_by_text("Adding or using a security key needs JavaScript")).to_be_hidden()
        page.get_by_label("Name of the key").fill("Laptop passkey")
        submit(page, "Add a security key")
        expect(page.get_by_role("status")).to_have_text("Saved.")
        row = page.locator("#keys tbody tr")
        expect(row).to_have_count(1)
        expect(row.get_by_role("rowheader")).to_have_text("Laptop passkey")

        with page.expect_navigation():
            page.get_by_role("button", name="Log out").click()
        _password_step(page, ui, email, password)
        expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor authentication")
        expect(page.get_by_label("Six-digit code from your authenticator app")).to_have_count(0)
        submit(page, "Use security key")
        expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

        visit(page, f"{ui}/ui/account")
        expect(page.locator("#keys tbody tr td").nth(1)).not_to_have_text("–")
        logged_in = context.storage_state()
    finally:
        context.close()

    # Without JavaScript the key is still listed, renamed and removed with plain forms; only
    # adding one says it needs the script. (No axe here: it runs as a script itself.)
    plain = chromium.new_context(ignore_https_errors=True, java_script_enabled=False,
                                 storage_state=logged_in)  # fmt: skip
    try:
        page = plain.new_page()
        page.goto(f"{ui}/ui/account")
        expect(page.get_by_text("Adding or using a security key needs JavaScript")).to_be_visible()
        expect(page.get_by_role("button", name="Add a security key")).to_be_hidden()
        page.get_by_label("New name").fill("Old laptop")
        with page.expect_navigation():
            page.get_by_role("button", name="Rename: Laptop passkey").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        row = page.locator("#keys tbody tr")
        row.get_by_label("Current password").fill(password)
        with page.expect_navigation():
            row.get_by_role("button", name="Remove: Old laptop").click()
        expect(page.get_by_role("status")).to_have_text("Deleted.")
        expect(page.locator("#keys tbody tr")).to_have_count(0)
    finally:
        plain.close()

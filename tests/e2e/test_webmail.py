"""The webmail (Roundcube from Debian, behind nginx and PHP-FPM, configured by
`render_webmail`) against the running stack, in headless Chromium (Debian's, driven by
Playwright; no browser is downloaded):

- log in with the mailbox password, open a message that arrived by SMTP, send one to
  another mailbox (it arrives with the login's address as From), log out;
- an application password logs in too; a wrong password is refused (an error, no session);
- a From of another customer's address is refused by submission (the spoofing rules apply
  to the webmail too), even when the identity was changed behind Roundcube's back;
- the HTTPS listener speaks TLS 1.2 and 1.3 only, with the data plane's certificate.

The full browser flow runs on the SQLite stack; the logins run on both databases.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e import hosting
from tests.e2e.conftest import Stack, unique
from tests.e2e.mail import HOST, deliver, subject_is, unique_subject, wait_for_messages
from tests.e2e.test_app_passwords import add_app_password
from tests.e2e.webmail import WebmailInstance, start_webmail, stop_webmail
from tests.support.factories import make_tenant

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no internet: nothing in the background may try to reach it.
CHROMIUM_ARGS = [
    "--no-sandbox",  # Chromium's sandbox refuses to run as root
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Like the data plane's daemons, these are Debian's packages: missing ones fail, not skip.
    assert CHROMIUM.exists(), "needs Debian's chromium (scripts/install-dataplane-packages)"
    # `launch` gives Chromium a fresh profile (user-data dir) of its own, removed on close.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def webmails() -> Iterator[dict[str, WebmailInstance]]:
    started: dict[str, WebmailInstance] = {}
    try:
        yield started
    finally:
        for instance in started.values():
            stop_webmail(instance)


def webmail_for(stack: Stack, webmails: dict[str, WebmailInstance]) -> WebmailInstance:
    if stack.backend not in webmails:
        webmails[stack.backend] = start_webmail(stack)
    return webmails[stack.backend]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Chromium trusts the system's CAs only; the certificate is checked by the TLS test.
    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    # Generous: the first compose page loads the editor while the rest of the suite runs.
    context.set_default_timeout(45_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Page, webmail: WebmailInstance, user: str, password: str) -> None:
    page.goto(webmail.url)
    page.fill("#rcmloginuser", user)
    page.fill("#rcmloginpwd", password)
    page.click("#rcmloginsubmit")


def logged_in(page: Page) -> None:
    page.wait_for_url("**_task=mail**")
    expect(page.locator("#mailboxlist")).to_be_visible()


def session_cookie(page: Page) -> bool:
    return any(cookie["name"] == "roundcube_sessauth" for cookie in page.context.cookies())


def test_log_in_read_send_and_log_out(
    sqlite_stack: Stack, webmails: dict[str, WebmailInstance], page: Page
) -> None:
    stack = sqlite_stack
    webmail = webmail_for(stack, webmails)
    box = hosting.mailbox(stack, prefix="webmail")
    other = hosting.mailbox(stack, prefix="webpeer")
    arrived = unique_subject("delivered")
    codes = deliver(
        stack.ports["smtp"],
        sender="someone@remote.example",
        recipients=[box.address],
        subject=arrived,
    )
    assert codes == {box.address: 250}
    assert wait_for_messages(stack.ports["imap"], box.address, box.password, subject_is(arrived))

    log_in(page, webmail, box.address, box.password)
    logged_in(page)
    row = page.locator("#messagelist tr", has_text=arrived)
    expect(row).to_be_visible()
    row.dblclick()
    expect(page.locator("#messagebody")).to_contain_text(
        "Hello from the Postmeister end-to-end tests."
    )

    sent = unique_subject("from webmail")
    compose_and_send(page, webmail, to=other.address, subject=sent)
    expect(page.locator("#messagestack")).to_contain_text("sent", ignore_case=True)
    found = wait_for_messages(stack.ports["imap"], other.address, other.password, subject_is(sent))
    assert found, "the message sent in the webmail did not arrive"
    assert found[0]["From"].addresses[0].addr_spec == box.address
    body = found[0].get_body(("plain",))
    assert body is not None
    assert "Written in the webmail." in body.get_content()

    page.locator("a.logout").first.click()
    expect(page.locator("#rcmloginuser")).to_be_visible()
    assert not session_cookie(page)
    page.goto(webmail.url + "?_task=mail")
    expect(page.locator("#rcmloginuser")).to_be_visible()


def test_an_application_password_logs_in_and_a_wrong_password_is_refused(
    stack: Stack, webmails: dict[str, WebmailInstance], page: Page
) -> None:
    webmail = webmail_for(stack, webmails)
    account = stack.create_account()
    _, secret = add_app_password(stack, account)

    log_in(page, webmail, account.address, account.password + "x")
    expect(page.locator("#messagestack")).to_contain_text("Login failed")
    expect(page.locator("#rcmloginuser")).to_be_visible()
    assert not session_cookie(page)

    log_in(page, webmail, account.address, secret)
    logged_in(page)
    assert session_cookie(page)


def compose_and_send(page: Page, webmail: WebmailInstance, *, to: str, subject: str) -> None:
    page.goto(webmail.url + "?_task=mail&_action=compose")
    # Roundcube redirects to the draft's own compose URL (`_id=`) first.
    page.wait_for_url("**_action=compose&_id=**")
    try:
        recipient = page.locator("#compose_to input[type=text]").first
        recipient.fill(to)
        recipient.press("Enter")
        page.fill("#compose-subject", subject)
        page.fill("#composebody", "Written in the webmail.")
    except PlaywrightTimeout as exc:
        # Once in a full CI run a field never became editable; say what the page showed.
        shown = page.locator("body").inner_text(timeout=5_000)[:1500]
        raise AssertionError(f"compose page {page.url} was not ready; it showed:\n{shown}") from exc
    page.locator("button.send").first.click()


def test_a_from_of_another_customer_is_refused_by_submission(
    sqlite_stack: Stack, webmails: dict[str, WebmailInstance], page: Page
) -> None:
    stack = sqlite_stack
    webmail = webmail_for(stack, webmails)
    box = hosting.mailbox(stack, prefix="webspoof")
    other = hosting.mailbox(stack, prefix="webvictim")
    victim_domain = f"{unique('bank')}.example"
    make_tenant(stack.sessions, name=unique("Customer "), domain=victim_domain)
    log_in(page, webmail, box.address, box.password)
    logged_in(page)
    # The identity's address cannot be edited in Roundcube (identities_level 3); an edited
    # row stands for any way around that: submission must refuse the From on its own.
    with sqlite3.connect(webmail.database) as db:
        changed = db.execute(
            "UPDATE identities SET email = ? WHERE email = ?", (f"ceo@{victim_domain}", box.address)
        ).rowcount
    assert changed == 1

    subject = unique_subject("spoofed in webmail")
    compose_and_send(page, webmail, to=other.address, subject=subject)
    # Postfix's envelope check (the From is the envelope sender too) refuses it at RCPT.
    expect(page.locator("#messagestack")).to_contain_text(
        "Sender address rejected: not owned by user"
    )
    assert not wait_for_messages(
        stack.ports["imap"], other.address, other.password, subject_is(subject), timeout=3
    )


def test_https_speaks_tls_1_2_and_1_3_only_with_the_data_planes_certificate(
    sqlite_stack: Stack, webmails: dict[str, WebmailInstance]
) -> None:
    stack = sqlite_stack
    webmail = webmail_for(stack, webmails)
    port = int(webmail.url.rsplit(":", 1)[1].strip("/"))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = webmail.pki.client_context()
        context.minimum_version = context.maximum_version = version
        with (
            socket.create_connection((HOST, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            assert tls.version() == version.name.replace("_", ".")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    # OpenSSL 3 offers TLS 1.1 at security level 0 only (see tests/e2e/test_tls.py).
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection((HOST, port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname=HOST)

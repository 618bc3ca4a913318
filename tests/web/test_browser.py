"""The web interface in Debian's headless Chromium, against the app served over HTTPS by
uvicorn, on the private Postfix + Dovecot stack of each database (tests/e2e/conftest.py).

What a person does, checked where a person would notice: a customer logs in with TOTP,
creates a mailbox, sets its autoresponder dates, creates an application password, logs in
over IMAP with it and revokes it; a mailbox owner changes the password and the old one stops
working over IMAP; an admin suspends a customer and its mailbox cannot log in; another
customer's address id in the URL is "not found". axe-core checks every page visited (no
serious or critical violation), and the main pages are photographed for the README.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from postmeister.api.app import create_app
from postmeister.config import DnsSettings
from postmeister.dataplane.status import stack_targets
from postmeister.sync.service import run_source
from tests.e2e import hosting
from tests.e2e.conftest import (  # noqa: F401 - fixtures used by this module
    Stack,
    postgres_stack,
    sqlite_stack,
    stack,
    strong_password,
    unique,
)
from tests.e2e.mail import deliver, imap_login_works, wait_for_subject
from tests.support.dns_server import NsdServer, nsd
from tests.support.docserver import DocumentServer, Reply
from tests.support.processes import free_port
from tests.support.tls import TestPki
from tests.support.web import https_in_thread, make_web_user
from tests.web.test_web_sync import MD5

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# The README's screenshots are rewritten only on request (POSTMEISTER_WRITE_SCREENSHOTS=1
# scripts/test tests/web/test_browser.py); otherwise they are taken into a scratch folder,
# so a test run never leaves the checkout changed.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("POSTMEISTER_WRITE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"postmeister-screenshots-{os.getpid()}"
)
AXE_SOURCE = AXE.read_text() if AXE.exists() else ""
CHROMIUM_ARGS = [
    "--no-sandbox",  # Chromium's sandbox refuses to run as root
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class WebServer:
    url: str
    stack: Stack


def _serve(plane: Stack, tmp: Path) -> Iterator[WebServer]:
    """The app over HTTPS in a thread of this process (stopped by `should_exit`, no process
    to kill), on the stack's database."""
    port = free_port()
    app = create_app(plane.settings)
    # The health page probes this stack's daemons, not the installed system's.
    app.state.dataplane_targets = stack_targets(plane.root)
    with https_in_thread(app, port, tmp / "tls", name="web-ui-server"):
        yield WebServer(url=f"https://127.0.0.1:{port}", stack=plane)


@pytest.fixture
def web(stack: Stack, tmp_path: Path) -> Iterator[WebServer]:  # noqa: F811 - the fixture
    yield from _serve(stack, tmp_path)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "needs Debian's chromium (scripts/install-dataplane-packages)"
    assert AXE.exists(), "needs axe-core (scripts/install-test-assets)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def new_context(chromium: Browser, *, locale: str = "en-US", viewport: ViewportSize | None = None,
                state: Any = None) -> BrowserContext:  # fmt: skip
    # Chromium trusts the system's CAs only; the server's certificate is self-signed.
    context = chromium.new_context(
        ignore_https_errors=True, locale=locale, viewport=viewport or DESKTOP,
        storage_state=state,
    )  # fmt: skip
    context.set_default_timeout(30_000)
    return context


def accessible(page: Page) -> None:
    """axe-core on the page as shown: no serious or critical violation.

    Injected through the DevTools protocol (`evaluate`), not `add_script_tag`: the pages'
    Content-Security-Policy refuses inline scripts, and the browser enforces it here too."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    assert violations == [], f"{page.url}: {violations}"


def visit(page: Page, url: str) -> None:
    page.goto(url)
    accessible(page)


def submit(page: Page, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).first.click()
    accessible(page)


def log_in(page: Page, web: WebServer, email: str, password: str, *, mailbox: bool = False
           ) -> None:  # fmt: skip
    visit(page, f"{web.url}/ui/{'mailbox/' if mailbox else ''}login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    submit(page, "Log in")


def photograph(chromium: Browser, context: BrowserContext, url: str, name: str,
               web: WebServer) -> None:  # fmt: skip
    """Screenshots of one page at desktop and phone width, in German and English, with the
    same session (cookies copied). Only the SQLite run writes them: one set is enough."""
    if web.stack.backend != "sqlite":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    state = context.storage_state()
    for language, locale in (("en", "en-US"), ("de", "de-DE")):
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            shot = new_context(chromium, locale=locale, viewport=viewport, state=state)
            try:
                page = shot.new_page()
                page.goto(url)
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{language}-{size}.png"),
                                full_page=True)  # fmt: skip
            finally:
                shot.close()


def test_customer_totp_mailbox_autoresponder_and_app_password(
    web: WebServer, chromium: Browser
) -> None:
    plane = web.stack
    customer = hosting.customer(plane, prefix="webui")
    email, password = make_web_user(plane.sessions, plane.settings, f"{unique('anna')}@example.org",
                                    customer_id=customer.id)  # fmt: skip
    admin_email, admin_password = make_web_user(
        plane.sessions, plane.settings, f"{unique('root')}@provider.example", admin=True
    )
    other = hosting.customer(plane, prefix="webother")
    foreign = hosting.request_as(
        plane, other.token, "POST", "/email-addresses",
        {"data": {"type": "email-address", "attributes": {
            "address": f"private@{other.domain}", "address_type": "forward",
            "forward_to": [f"someone@{other.domain}"]}}},
    )  # fmt: skip
    assert foreign.status_code == 201, foreign.text
    foreign_id = foreign.json()["data"]["id"]

    # The admin requires a second factor for the customer.
    admin = new_context(chromium)
    admin_page = admin.new_page()
    log_in(admin_page, web, admin_email, admin_password)
    row = admin_page.locator(f"#customer-{customer.id}")
    with admin_page.expect_navigation():
        row.get_by_role("button", name=re.compile("^Require two-factor")).click()
    expect(row.locator("td").nth(3)).to_have_text("yes")
    accessible(admin_page)
    photograph(chromium, admin, f"{web.url}/ui/admin", "admin-customers", web)
    admin.close()

    context = new_context(chromium)
    page = context.new_page()
    photograph(chromium, context, f"{web.url}/ui/login", "login", web)
    log_in(page, web, email, password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor authentication")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Six-digit code").fill(pyotp.TOTP(secret).now())
    submit(page, "Confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_text(customer.domain)).to_be_visible()
    photograph(chromium, context, page.url, "customer-overview", web)

    # A new mailbox with a password the policy accepts.
    visit(page, f"{web.url}/ui/customer/addresses/new?kind=mailbox")
    local = unique("vacation")
    address = f"{local}@{customer.domain}"
    box_password = strong_password(address)
    page.get_by_label("Name (before the @)").fill(local)
    page.get_by_label("Domain").select_option(customer.domain)
    page.get_by_label("Description").fill("Holiday mailbox")
    page.get_by_label("New password").fill(box_password)
    submit(page, "Create")
    expect(page.get_by_role("heading", level=1)).to_contain_text(address)
    edit_url = page.url.split("?")[0]
    assert imap_login_works(plane.ports["imap"], address, box_password)

    # Its autoresponder: text and dates.
    starts = dt.date.today() + dt.timedelta(days=3)
    ends = starts + dt.timedelta(days=14)
    page.get_by_label("Reply text").fill("I am away until the 20th.")
    page.get_by_label("Switch on on (date)").fill(starts.isoformat())
    page.get_by_label("Switch off on (date)").fill(ends.isoformat())
    submit(page, "Save")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Switch on on (date)")).to_have_value(starts.isoformat())
    expect(page.get_by_label("Switch off on (date)")).to_have_value(ends.isoformat())
    details = hosting.request_as(plane, customer.token, "GET",
                                 f"/email-addresses/{edit_url.rsplit('/', 1)[1]}")  # fmt: skip
    responder = details.json()["data"]["attributes"]["autoresponder"]
    assert (responder["activates"], responder["expires"]) == (starts.isoformat(), ends.isoformat())
    photograph(chromium, context, edit_url, "mailbox-edit", web)

    # The live policy check names the rules a weak password breaks, as it is typed.
    page.get_by_label("New password").first.fill("short")
    expect(page.locator("li[data-rule=min_length]")).to_have_class("failed")

    # An application password: shown once, logs in over IMAP, revoked, no longer does.
    page.get_by_label("Device").fill("Phone")
    page.get_by_label("Application").fill("K-9 Mail")
    submit(page, "Create")
    app_secret = page.locator("#secret").inner_text()
    assert imap_login_works(plane.ports["imap"], address, app_secret)
    visit(page, edit_url)
    submit(page, "Revoke: Phone / K-9 Mail")
    expect(page.get_by_role("status")).to_have_text("Revoked.")
    assert not imap_login_works(plane.ports["imap"], address, app_secret)
    assert imap_login_works(plane.ports["imap"], address, box_password)

    visit(page, f"{web.url}/ui/customer/addresses?q={customer.domain}")
    expect(page.get_by_role("link", name=address)).to_be_visible()
    photograph(chromium, context, page.url, "customer-addresses", web)

    # The audit trail names the web user as the actor of each change.
    visit(page, f"{web.url}/ui/customer/audit")
    expect(page.get_by_text(f"web: {email}").first).to_be_visible()
    photograph(chromium, context, page.url, "customer-audit", web)

    # Another customer's address id typed into the URL: not found, nothing shown.
    response = page.goto(f"{web.url}/ui/customer/addresses/{foreign_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_text("Not found.")).to_be_visible()
    expect(page.get_by_text("private@")).to_have_count(0)
    accessible(page)
    context.close()


def test_mailbox_owner_changes_the_password_and_the_old_one_stops_at_once(
    web: WebServer, chromium: Browser
) -> None:
    plane = web.stack
    box = hosting.mailbox(plane, prefix="selfservice")
    new_password = strong_password(box.address)
    context = new_context(chromium)
    page = context.new_page()
    log_in(page, web, box.address, box.password, mailbox=True)
    expect(page.get_by_role("heading", level=1)).to_have_text(box.address)
    photograph(chromium, context, page.url, "mailbox-self-service", web)
    page.get_by_label("Current password").fill(box.password)
    page.get_by_label("New password").fill(new_password)
    submit(page, "Change password")
    expect(page.get_by_role("status")).to_contain_text("The password was changed")
    assert not imap_login_works(plane.ports["imap"], box.address, box.password)
    assert imap_login_works(plane.ports["imap"], box.address, new_password)
    context.close()


def test_mailbox_owner_forwards_mail_once_the_package_allows_it(
    web: WebServer, chromium: Browser
) -> None:
    """The admin grants self-service forwarding on the package (API); the owner sets a
    target on the page, and real Postfix then delivers each message to both mailboxes."""
    plane = web.stack
    customer = hosting.customer(plane, prefix="webforward")
    boxes: dict[str, tuple[str, str]] = {}
    for local in ("owner", "copy"):
        address = f"{local}@{customer.domain}"
        boxes[local] = (address, strong_password(address))
        created = hosting.request_as(
            plane, customer.token, "POST", "/email-addresses",
            {"data": {"type": "email-address", "attributes": {
                "address": address, "address_type": "mailbox", "password": boxes[local][1]}}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
    package = hosting.request_as(plane, customer.token, "GET", "/packages").json()["data"][0]["id"]
    granted = hosting.request_as(
        plane, customer.admin, "PATCH", f"/packages/{package}",
        {"data": {"type": "package", "id": package,
                  "attributes": {"allow_self_service_forwarding": True}}},
    )  # fmt: skip
    assert granted.status_code == 200, granted.text
    context = new_context(chromium)
    page = context.new_page()
    log_in(page, web, *boxes["owner"], mailbox=True)
    page.get_by_label("Forward to (one address per line)").fill(boxes["copy"][0])
    submit(page, "Save forwarding")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Forward to (one address per line)")).to_have_value(
        boxes["copy"][0] + "\n"
    )
    photograph(chromium, context, page.url.split("?")[0], "mailbox-forwarding", web)
    subject = unique("forwarded")
    codes = deliver(plane.ports["smtp"], sender="someone@sender.example",
                    recipients=[boxes["owner"][0]], subject=subject)  # fmt: skip
    assert codes == {boxes["owner"][0]: 250}
    assert wait_for_subject(plane.ports["imap"], *boxes["owner"], subject), "a copy stays"
    assert wait_for_subject(plane.ports["imap"], *boxes["copy"], subject), "and one is forwarded"
    context.close()


def test_admin_suspends_a_customer_and_its_mailbox_cannot_log_in(
    web: WebServer, chromium: Browser
) -> None:
    plane = web.stack
    customer = hosting.customer(plane, prefix="websuspend")
    address = f"box@{customer.domain}"
    password = strong_password(address)
    created = hosting.request_as(
        plane, customer.token, "POST", "/email-addresses",
        {"data": {"type": "email-address", "attributes": {
            "address": address, "address_type": "mailbox", "password": password}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert imap_login_works(plane.ports["imap"], address, password)
    admin_email, admin_password = make_web_user(
        plane.sessions, plane.settings, f"{unique('ops')}@provider.example", admin=True
    )
    context = new_context(chromium)
    page = context.new_page()
    log_in(page, web, admin_email, admin_password)
    row = page.locator(f"#customer-{customer.id}")
    with page.expect_navigation():
        row.get_by_role("button", name=re.compile("^Suspend")).click()
    expect(row.locator("td").nth(2)).to_have_text("Suspended")
    accessible(page)
    assert not imap_login_works(plane.ports["imap"], address, password)
    context.close()


def test_packages_domains_tokens_sync_and_the_admin_pages(
    stack: Stack, tmp_path: Path, chromium: Browser,  # noqa: F811 - the fixture
    document_server: DocumentServer, document_pki: TestPki,
) -> None:  # fmt: skip
    """The second slice's pages, each checked by axe: a customer's packages, domains with
    their DNS records checked against a real DNS server (NSD), API tokens, a sync source
    whose mass deletion is confirmed; the admin's packages, domains, tokens, audit trail and
    health (this stack's daemons answering)."""
    with nsd(tmp_path / "nsd") as dns_server:
        resolved = stack.settings.model_copy(
            update={"dns": DnsSettings(resolvers=[dns_server.address], timeout_seconds=2)}
        )
        serving = contextlib.contextmanager(_serve)
        with serving(dataclasses.replace(stack, settings=resolved), tmp_path) as web:
            _second_slice(web, chromium, document_server, document_pki, dns_server)


def _second_slice(web: WebServer, chromium: Browser, documents: DocumentServer,
                  pki: TestPki, dns_server: NsdServer) -> None:  # fmt: skip
    plane = web.stack
    customer = hosting.customer(plane, prefix="webpages")
    email, password = make_web_user(plane.sessions, plane.settings, f"{unique('cara')}@example.org",
                                    customer_id=customer.id)  # fmt: skip
    admin_email, admin_password = make_web_user(
        plane.sessions, plane.settings, f"{unique('ops')}@provider.example", admin=True
    )
    context = new_context(chromium)
    page = context.new_page()
    log_in(page, web, email, password)

    visit(page, f"{web.url}/ui/customer/packages")
    expect(page.get_by_role("heading", level=1)).to_have_text("Packages")
    expect(page.get_by_role("row", name=re.compile("^Messages per mailbox and hour"))
           ).to_contain_text("200")  # fmt: skip
    photograph(chromium, context, page.url, "customer-packages", web)

    # The domain's DNS: the MX record published on the DNS server is ok, the others missing.
    domain_id = hosting.request_as(plane, customer.token, "GET", "/domains").json()["data"][0]["id"]
    zone = hosting.request_as(plane, customer.token, "GET", f"/domains/{domain_id}/dns?format=zone"
                              ).text  # fmt: skip
    dns_server.publish(customer.domain, next(r for r in zone.splitlines() if " MX " in r) + "\n")
    visit(page, f"{web.url}/ui/customer/domains")
    with page.expect_navigation():
        page.get_by_role("link", name=f"Check DNS: {customer.domain}").click()
    accessible(page)
    expect(page.locator("tr.dns-ok").first).to_contain_text("MX")
    expect(page.locator("tr.dns-missing").first).to_be_visible()
    photograph(chromium, context, page.url, "customer-domain-dns", web)

    # An API token: shown once, works against the API, revoked.
    visit(page, f"{web.url}/ui/customer/tokens")
    page.get_by_label("Label").fill("Shop")
    page.get_by_label("Read only").check()
    submit(page, "New API token")
    token = page.locator("#secret").inner_text()
    assert hosting.request_as(plane, token, "GET", "/domains").status_code == 200
    visit(page, f"{web.url}/ui/customer/tokens")
    photograph(chromium, context, page.url, "customer-tokens", web)
    submit(page, "Revoke: Shop")
    expect(page.get_by_role("status")).to_have_text("Revoked.")
    assert hosting.request_as(plane, token, "GET", "/domains").status_code == 401

    # A sync source whose second document would delete most addresses: held, confirmed.
    sync = plane.settings.sync.model_copy(
        update={"ca_bundle": pki.ca_cert, "timeout_seconds": 5, "allow_private_networks": True}
    )
    body = {"now": _accounts(customer.domain, "a", "b", "c", "d")}
    documents.routes["/mail.json"] = lambda _headers: Reply(body=body["now"])
    visit(page, f"{web.url}/ui/customer/sync")
    page.get_by_label("Document URL (HTTPS)").fill(documents.url("/mail.json"))
    submit(page, "Add a sync source")
    source_url = page.url.split("?")[0]
    source_id = int(source_url.rsplit("/", 1)[1])
    assert run_source(plane.sessions, source_id, settings=sync).result == "applied"
    body["now"] = _accounts(customer.domain, "a")
    assert run_source(plane.sessions, source_id, settings=sync).result == "held"
    visit(page, source_url)
    expect(page.get_by_role("heading", name="A mass deletion waits for your confirmation")
           ).to_be_visible()  # fmt: skip
    photograph(chromium, context, source_url, "customer-sync-held", web)
    page.get_by_label("Yes, apply this document and delete those addresses").check()
    submit(page, "Confirm the deletion")
    expect(page.get_by_role("status")).to_contain_text("Confirmed")
    assert run_source(plane.sessions, source_id, settings=sync).result == "applied"
    left = hosting.request_as(plane, customer.token, "GET", "/email-addresses").json()["data"]
    assert [a["attributes"]["address"] for a in left] == [f"a@{customer.domain}"]
    context.close()

    admin = new_context(chromium)
    page = admin.new_page()
    log_in(page, web, admin_email, admin_password)
    visit(page, f"{web.url}/ui/admin/packages?customer={customer.id}")
    with page.expect_navigation():
        page.locator("table").get_by_role("link").first.click()
    accessible(page)
    page.get_by_label("Mailboxes", exact=True).fill("25")
    submit(page, "Save")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_role("row", name=re.compile("^Mailboxes"))).to_contain_text("25")
    photograph(chromium, admin, page.url, "admin-package", web)
    visit(page, f"{web.url}/ui/admin/domains")
    extra = f"{unique('extra')}.example"
    page.get_by_label("Domain", exact=True).fill(extra)
    page.get_by_label("Customer ID", exact=True).fill(str(customer.id))
    submit(page, "Add a domain")
    expect(page.get_by_text(extra)).to_be_visible()
    visit(page, f"{web.url}/ui/admin/tokens")
    page.get_by_label("Label").fill("Reseller")
    page.get_by_label("Customer ID", exact=True).fill(str(customer.id))
    submit(page, "New API token")
    assert hosting.request_as(plane, page.locator("#secret").inner_text(), "GET", "/domains"
                              ).status_code == 200  # fmt: skip
    visit(page, f"{web.url}/ui/admin/audit?customer={customer.id}")
    expect(page.get_by_text(f"web: {admin_email}").first).to_be_visible()
    visit(page, f"{web.url}/ui/admin/health")
    expect(page.locator("#check-database")).to_contain_text("ok")
    expect(page.locator("#daemon-postfix td").nth(1)).to_have_text("yes")
    expect(page.locator("#daemon-dovecot td").nth(1)).to_have_text("yes")
    photograph(chromium, admin, page.url, "admin-health", web)
    admin.close()


def _accounts(domain: str, *names: str) -> bytes:
    accounts = [{"name": name, "password": MD5} for name in names]
    return json.dumps({domain: {"account": accounts, "alias": []}}).encode()

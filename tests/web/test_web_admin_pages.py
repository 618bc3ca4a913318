"""The administration's audit trail and health page, over HTTP on both databases: every
customer's events (and one customer's), the database and scheduler checks of /readyz, the
data-plane daemons' answers, and a sync source whose latest run failed."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.sync_sources.service import create_source
from postmeister.sync.service import run_source
from tests.support.factories import Tenant
from tests.support.processes import free_port
from tests.web.conftest import Browser


def test_the_audit_trail_shows_every_customer_and_filters_by_one(
    browser: Browser, alice: Tenant, bob: Tenant, admin_user: tuple[str, str],
    alice_user: tuple[str, str],
) -> None:  # fmt: skip
    browser.login(*admin_user)
    browser.get("/ui/admin")
    browser.post(f"/ui/admin/customers/{alice.customer_id}", {"action": "require_totp"})
    everyone = browser.get("/ui/admin/audit")
    assert everyone.status_code == 200
    assert alice.domain in everyone.text and bob.domain in everyone.text
    assert f"web: {admin_user[0]}" in everyone.text, "the admin's own change is named"
    only_bob = browser.get("/ui/admin/audit", params={"customer": str(bob.customer_id)}).text
    assert bob.domain in only_bob and alice.domain not in only_bob
    customer = Browser(browser.client)
    customer.client.cookies.clear()
    customer.login(*alice_user)
    assert customer.get("/ui/admin/audit").status_code == 303


def test_the_health_page_names_the_database_the_daemons_and_a_failing_source(
    browser: Browser, alice: Tenant, admin_user: tuple[str, str], settings: Settings,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    sync = settings.sync.model_copy(update={"allow_private_networks": True, "timeout_seconds": 5})
    url = f"https://127.0.0.1:{free_port()}/mail.json"  # nothing listens there
    with unit_of_work(sessions) as session:
        source_id = create_source(session, Actor.for_customer(alice.customer_id), url=url,
                                  interval_seconds=None, settings=sync).id  # fmt: skip
    assert run_source(sessions, source_id, settings=sync, now=dt.datetime.now(dt.UTC)).result == (
        "failed"
    )
    browser.login(*admin_user)
    page = browser.get("/ui/admin/health")
    assert page.status_code == 200
    database = re.search(r'<tr id="check-database">(.*?)</tr>', page.text, re.S)
    assert database and "<strong>ok</strong>" in database.group(1)
    assert "schema revision" in database.group(1)
    for daemon in ("postfix", "dovecot", "milter", "rspamd", "authpolicy"):
        assert f'id="daemon-{daemon}"' in page.text, daemon
    failing = re.search(rf'<tr id="source-{source_id}">(.*?)</tr>', page.text, re.S)
    assert failing and url in failing.group(1) and "failed" in failing.group(1)

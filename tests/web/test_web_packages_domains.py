"""Packages and domains in the customer menu and the administration, over HTTP on both
databases: the usage against every limit, each domain's DNS records checked live against a
real DNS server (NSD on loopback) or a dead resolver, limits an admin sets holding in the
API, and another customer's package or domain is "not found"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import DnsSettings, Settings
from tests.support.dns_server import NsdServer, nsd
from tests.support.factories import STRONG_PASSWORD, Tenant
from tests.web.conftest import Browser


def _mailbox(app_client: TestClient, tenant: Tenant, local: str) -> int:
    created = app_client.post(
        "/mail/account/",
        json={"name": local, "domain": tenant.domain, "password": STRONG_PASSWORD},
        headers=tenant.auth,
    )
    status: int = created.status_code
    return status


def _package_id(app_client: TestClient, tenant: Tenant) -> str:
    found: str = app_client.get("/packages", headers=tenant.auth).json()["data"][0]["id"]
    return found


def _row(page: str, label: str) -> list[str]:
    """The cells of the table row headed `label`, tags stripped."""
    found = re.search(rf"<th scope=\"row\">{re.escape(label)}</th>(.*?)</tr>", page, re.S)
    assert found, label
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found.group(1).split("</td>")][:-1]


def test_the_customer_sees_the_usage_against_every_limit(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    assert _mailbox(app_client, alice, "one") == 201
    assert _mailbox(app_client, alice, "two") == 201
    browser.login(*alice_user)
    page = browser.get("/ui/customer/packages")
    assert page.status_code == 200
    assert _row(page.text, "Mailboxes") == ["2", "unlimited"]
    assert _row(page.text, "Addresses") == ["2", "unlimited"]
    assert _row(page.text, "Messages per mailbox and hour") == ["–", "200"]
    german = browser.get("/ui/customer/packages", headers={"Accept-Language": "de"})
    assert _row(german.text, "Postfächer") == ["2", "unbegrenzt"]


def test_an_admin_sets_a_limit_the_api_then_enforces(
    browser: Browser, second_browser: Browser, alice: Tenant, bob: Tenant,
    admin_user: tuple[str, str], alice_user: tuple[str, str], app_client: TestClient,
) -> None:  # fmt: skip
    package = _package_id(app_client, alice)
    browser.login(*admin_user)
    listed = browser.get("/ui/admin/packages", params={"customer": str(alice.customer_id)})
    assert f'id="package-{package}"' in listed.text
    edit = browser.get(f"/ui/admin/packages/{package}")
    assert edit.status_code == 200
    fields = dict(re.findall(r'<input id="([a-z_]+)" name="\1"[^>]*value="([^"]*)"', edit.text))
    saved = browser.post(f"/ui/admin/packages/{package}",
                         {**fields, "max_mailboxes": "1", "max_quota_mib": "512"},
                         follow_redirects=True)  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text
    attributes = app_client.get(f"/packages/{package}", headers=alice.auth).json()["data"]
    assert attributes["attributes"]["max_mailboxes"] == 1
    assert attributes["attributes"]["max_quota_bytes"] == 512 * 2**20
    assert attributes["attributes"]["mailbox_messages_per_hour"] == 200, "unchanged fields stay"
    assert _mailbox(app_client, alice, "first") == 201
    assert _mailbox(app_client, alice, "second") == 409, "the limit holds in the API"
    second_browser.login(*alice_user)
    shown = second_browser.get("/ui/customer/packages").text
    assert _row(shown, "Mailboxes") == ["1", "1"]
    # A refused limit names the field; nothing changes.
    refused = browser.post(f"/ui/admin/packages/{package}", {**fields, "max_mailboxes": "-1"})
    assert refused.status_code == 422 and "max_mailboxes" in refused.text


def test_an_admin_creates_a_package_for_a_customer(
    browser: Browser, alice: Tenant, admin_user: tuple[str, str], app_client: TestClient
) -> None:
    browser.login(*admin_user)
    page = browser.get("/ui/admin/packages")
    assert 'name="mailbox_messages_per_hour" inputmode="numeric" pattern="[0-9]*" value="200"' in (
        page.text
    ), "a new package's form starts from the default sending limits"
    created = browser.post("/ui/admin/packages", {"customer_id": str(alice.customer_id),
                           "name": "Premium", "max_mailboxes": "50", "max_storage_mib": "10240"},
                           follow_redirects=True)  # fmt: skip
    assert created.status_code == 200 and "Premium" in created.text
    names = {p["attributes"]["name"]: p["attributes"] for p in
             app_client.get("/packages", headers=alice.auth).json()["data"]}  # fmt: skip
    assert names["Premium"]["max_mailboxes"] == 50
    assert names["Premium"]["max_storage_bytes"] == 10240 * 2**20
    twice = browser.post("/ui/admin/packages", {"customer_id": str(alice.customer_id),
                         "name": "Premium"})  # fmt: skip
    assert twice.status_code == 409
    nobody = browser.post("/ui/admin/packages", {"customer_id": "99999", "name": "X"})
    assert nobody.status_code == 422 and "customer_id" in nobody.text


def test_another_customers_package_and_domain_are_not_found(
    browser: Browser, alice: Tenant, bob: Tenant, alice_user: tuple[str, str],
    app_client: TestClient,
) -> None:  # fmt: skip
    bobs_domain = app_client.get("/domains", headers=bob.auth).json()["data"][0]["id"]
    browser.login(*alice_user)
    assert bob.domain not in browser.get("/ui/customer/domains").text
    assert "Bob" not in browser.get("/ui/customer/packages").text
    for path in (f"/ui/customer/domains/{bobs_domain}", "/ui/customer/domains/99999",
                 "/ui/customer/domains/x"):  # fmt: skip
        page = browser.get(path)
        assert page.status_code == 404, path
        assert bob.domain not in page.text
    # The admin's package pages are an admin's only.
    assert browser.get(f"/ui/admin/packages/{_package_id(app_client, bob)}").status_code == 303


def test_with_no_resolver_answering_every_record_is_unknown(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    domain_id = app_client.get("/domains", headers=alice.auth).json()["data"][0]["id"]
    browser.login(*alice_user)
    listed = browser.get("/ui/customer/domains")
    assert alice.domain in listed.text
    assert f'href="/ui/customer/domains/{domain_id}"' in listed.text
    page = browser.get(f"/ui/customer/domains/{domain_id}")
    assert page.status_code == 200
    api = app_client.get(f"/domains/{domain_id}/dns", headers=alice.auth).json()
    states = [r["state"] for r in api["data"]["attributes"]["records"]]
    assert set(states) == {"unknown"}
    assert page.text.count("unknown (no answer)") == len(states)
    assert "Some records are missing or differ" in page.text
    zone = app_client.get(f"/domains/{domain_id}/dns?format=zone", headers=alice.auth).text
    first = next(line for line in zone.splitlines() if line and not line.startswith(";"))
    assert first.split()[0] in page.text, "the zone snippet is shown to copy"


@pytest.fixture
def dns_server(tmp_path: Path) -> Iterator[NsdServer]:
    with nsd(tmp_path / "nsd") as server:
        yield server


@pytest.fixture
def checked_browser(settings: Settings, dns_server: NsdServer) -> Iterator[Browser]:
    resolved = settings.model_copy(
        update={"dns": DnsSettings(resolvers=[dns_server.address], timeout_seconds=2)}
    )
    with TestClient(create_app(resolved), base_url="https://testserver") as client:
        yield Browser(client)


def test_a_published_record_is_ok_and_a_missing_one_is_named(
    checked_browser: Browser, dns_server: NsdServer, alice: Tenant,
    alice_user: tuple[str, str], app_client: TestClient,
) -> None:  # fmt: skip
    domain_id = app_client.get("/domains", headers=alice.auth).json()["data"][0]["id"]
    zone = app_client.get(f"/domains/{domain_id}/dns?format=zone", headers=alice.auth).text
    mx = next(line for line in zone.splitlines() if " MX " in line)
    dns_server.publish(alice.domain, mx + "\n")
    checked_browser.login(*alice_user)
    page = checked_browser.get(f"/ui/customer/domains/{domain_id}")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="dns-(\w+)">\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>(\w+)', page.text)
    by_type = {(name, kind): state for state, name, kind in rows}
    assert by_type[(alice.domain, "MX")] == "ok"
    assert "missing" in {state for state, _, _ in rows}
    assert "unknown" not in {state for state, _, _ in rows}
    # The notes in the page's language, with the same names filled in.
    assert f"no SPF record at {alice.domain}" in page.text
    german = checked_browser.get(
        f"/ui/customer/domains/{domain_id}", headers={"Accept-Language": "de"}
    )
    assert f"Kein SPF-Eintrag bei {alice.domain}" in german.text
    assert "Wohin andere Server die E-Mails der Domain zustellen" in german.text
    assert f"no SPF record at {alice.domain}" not in german.text


def test_an_admin_adds_a_domain_the_customer_then_sees(
    browser: Browser, second_browser: Browser, alice: Tenant, admin_user: tuple[str, str],
    alice_user: tuple[str, str], app_client: TestClient,
) -> None:  # fmt: skip
    browser.login(*admin_user)
    assert browser.get("/ui/admin/domains").status_code == 200
    added = browser.post("/ui/admin/domains", {"name": "Müller-Alice.example",
                         "customer_id": str(alice.customer_id)}, follow_redirects=True)  # fmt: skip
    assert added.status_code == 200 and "Saved." in added.text
    assert "müller-alice.example" in added.text
    names = [d["attributes"]["name"] for d in
             app_client.get("/domains", headers=alice.auth).json()["data"]]  # fmt: skip
    assert "müller-alice.example" in names or "xn--mller-alice-vlb.example" in names
    second_browser.login(*alice_user)
    assert "müller-alice.example" in second_browser.get("/ui/customer/domains").text
    twice = browser.post("/ui/admin/domains", {"name": "müller-alice.example",
                         "customer_id": str(alice.customer_id)})  # fmt: skip
    assert twice.status_code == 409
    bad = browser.post("/ui/admin/domains", {"name": "not a domain", "customer_id": "1"})
    assert bad.status_code == 422

"""Mailbox self-service forwarding, over HTTP on both databases: only when the package
allows it (set by an admin on the package page or in the API), the targets judged by the
same address service as the API (another customer's domain is a target like any other
address, an invalid one is named), and only the session's own mailbox is ever changed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import STRONG_PASSWORD, Tenant, make_token
from tests.web.conftest import Browser

JSONAPI = {"Content-Type": "application/vnd.api+json"}


def _mailbox(app_client: TestClient, tenant: Tenant, local: str) -> str:
    created = app_client.post(
        "/mail/account/",
        json={"name": local, "domain": tenant.domain, "password": STRONG_PASSWORD},
        headers=tenant.auth,
    )
    assert created.status_code == 201, created.text
    found: str = app_client.get(
        "/email-addresses", params={"filter[address]": f"{local}@{tenant.domain}"},
        headers=tenant.auth,
    ).json()["data"][0]["id"]  # fmt: skip
    return found


def _forward_to(app_client: TestClient, tenant: Tenant, address_id: str) -> list[str]:
    found = app_client.get(f"/email-addresses/{address_id}", headers=tenant.auth)
    targets: list[str] = found.json()["data"]["attributes"]["forward_to"]
    return targets


def _package_id(app_client: TestClient, tenant: Tenant) -> str:
    found: str = app_client.get("/packages", headers=tenant.auth).json()["data"][0]["id"]
    return found


def test_forwarding_is_offered_only_when_the_admin_allows_it_on_the_package(
    browser: Browser, second_browser: Browser, alice: Tenant, admin_user: tuple[str, str],
    alice_user: tuple[str, str], app_client: TestClient,
) -> None:  # fmt: skip
    address_id = _mailbox(app_client, alice, "owner")
    owner = f"owner@{alice.domain}"
    browser.login(owner, STRONG_PASSWORD, path="/ui/mailbox/login")
    home = browser.get("/ui/mailbox")
    assert home.status_code == 200 and 'action="/ui/mailbox/forwarding"' not in home.text
    refused = browser.post("/ui/mailbox/forwarding", {"forward_to": "copy@elsewhere.example"})
    assert refused.status_code == 403
    assert _forward_to(app_client, alice, address_id) == [], "nothing changed"

    package = _package_id(app_client, alice)
    second_browser.login(*admin_user)
    edit = second_browser.get(f"/ui/admin/packages/{package}")
    assert 'id="allow_self_service_forwarding"' in edit.text
    assert 'for="allow_self_service_forwarding">Mailbox owners may change their forwarding' in (
        edit.text
    )
    saved = second_browser.post(f"/ui/admin/packages/{package}", {
        "name": "Standard", "allow_self_service_forwarding": "on",
        "mailbox_messages_per_hour": "200"}, follow_redirects=True)  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text
    assert 'id="allow_self_service_forwarding" name="allow_self_service_forwarding" ' \
        'type="checkbox" checked' in saved.text  # fmt: skip
    package_seen = app_client.get(f"/packages/{package}", headers=alice.auth).json()["data"]
    assert package_seen["attributes"]["allow_self_service_forwarding"] is True
    # The customer sees it on its packages page; only an admin changes it.
    customer = Browser(app_client)
    customer.login(*alice_user)
    shown = customer.get("/ui/customer/packages").text
    assert f'id="package-{package}-forwarding">Mailbox owners may change their forwarding: yes' in (
        shown
    )
    assert customer.post(f"/ui/admin/packages/{package}", {"name": "Mine"}).status_code == 303
    after = app_client.get(f"/packages/{package}", headers=alice.auth).json()["data"]
    assert after["attributes"]["name"] == "Standard", "the customer's POST changed nothing"

    home = browser.get("/ui/mailbox")
    assert 'action="/ui/mailbox/forwarding"' in home.text
    assert '<label for="forward_to">Forward to (one address per line)</label>' in home.text
    done = browser.post("/ui/mailbox/forwarding",
                        {"forward_to": "Copy@Elsewhere.Example\nsecond@elsewhere.example"},
                        follow_redirects=True)  # fmt: skip
    assert done.status_code == 200 and "Saved." in done.text
    assert _forward_to(app_client, alice, address_id) == [
        "copy@elsewhere.example",
        "second@elsewhere.example",
    ], "canonical, in order, as the API"
    assert "copy@elsewhere.example" in done.text, "the page shows the stored targets"

    # Unticking the box withdraws the permission: the targets stay, the owner cannot edit them.
    second_browser.post(f"/ui/admin/packages/{package}",
                        {"name": "Standard", "mailbox_messages_per_hour": "200"})  # fmt: skip
    assert browser.post("/ui/mailbox/forwarding", {"forward_to": ""}).status_code == 403
    assert _forward_to(app_client, alice, address_id) == [
        "copy@elsewhere.example", "second@elsewhere.example"]  # fmt: skip


def test_targets_follow_the_api_rules_and_only_the_own_mailbox_changes(
    browser: Browser, alice: Tenant, bob: Tenant, app_client: TestClient,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    admin = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    package = _package_id(app_client, alice)
    allowed = app_client.patch(f"/packages/{package}", headers={**admin, **JSONAPI}, json={
        "data": {"type": "package", "id": package,
                 "attributes": {"allow_self_service_forwarding": True}}})  # fmt: skip
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["attributes"]["allow_self_service_forwarding"] is True
    mine = _mailbox(app_client, alice, "owner")
    neighbour = _mailbox(app_client, alice, "neighbour")
    bobs = _mailbox(app_client, bob, "info")
    browser.login(f"owner@{alice.domain}", STRONG_PASSWORD, path="/ui/mailbox/login")
    browser.get("/ui/mailbox")

    # The API takes an address in another customer's domain as a target (a forward target
    # is any mailbox on the internet); so does the self-service, and Bob's mailbox is
    # untouched by it.
    api = app_client.post(f"/email-addresses/{neighbour}/forward-to/info@{bob.domain}",
                          headers=alice.auth)  # fmt: skip
    assert api.status_code == 200, api.text
    done = browser.post("/ui/mailbox/forwarding", {"forward_to": f"info@{bob.domain}"})
    assert done.status_code == 303
    assert _forward_to(app_client, alice, mine) == [f"info@{bob.domain}"]
    assert _forward_to(app_client, bob, bobs) == []

    bad = browser.post("/ui/mailbox/forwarding",
                       {"forward_to": f"not-an-address\nowner@{alice.domain}"})  # fmt: skip
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text and "forward_to" in bad.text
    assert "an address cannot forward to itself" in bad.text
    assert _forward_to(app_client, alice, mine) == [f"info@{bob.domain}"], "nothing changed"
    assert _forward_to(app_client, alice, neighbour) == [f"info@{bob.domain}"]

    cleared = browser.post("/ui/mailbox/forwarding", {"forward_to": ""})
    assert cleared.status_code == 303
    assert _forward_to(app_client, alice, mine) == []


def test_a_package_created_in_the_api_does_not_allow_it_unless_asked(
    app_client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    plain = app_client.post("/packages", headers={**admin, **JSONAPI}, json={"data": {
        "type": "package", "attributes": {"name": "Basic", "customer_id": alice.customer_id}}})  # fmt: skip
    assert plain.status_code == 201, plain.text
    assert plain.json()["data"]["attributes"]["allow_self_service_forwarding"] is False
    granted = app_client.post("/packages", headers={**admin, **JSONAPI}, json={"data": {
        "type": "package", "attributes": {"name": "Plus", "customer_id": alice.customer_id,
                                          "allow_self_service_forwarding": True}}})  # fmt: skip
    assert granted.json()["data"]["attributes"]["allow_self_service_forwarding"] is True
    wrong = app_client.patch(f"/packages/{plain.json()['data']['id']}",
                             headers={**admin, **JSONAPI}, json={"data": {
        "type": "package", "id": plain.json()["data"]["id"],
        "attributes": {"allow_self_service_forwarding": "yes"}}})  # fmt: skip
    assert wrong.status_code == 422

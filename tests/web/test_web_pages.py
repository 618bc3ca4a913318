"""What the pages do, over HTTP on both databases: the same rules as the API (named on the
form), mailbox self-service with the mailbox's own password only, and suspension."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.factories import OTHER_STRONG_PASSWORD, STRONG_PASSWORD, Tenant
from tests.web.conftest import Browser


def _mailbox(app_client: TestClient, tenant: Tenant, local: str) -> tuple[str, str]:
    created = app_client.post(
        "/mail/account/",
        json={"name": local, "domain": tenant.domain, "password": STRONG_PASSWORD},
        headers=tenant.auth,
    )
    assert created.status_code == 201, created.text
    found = app_client.get(
        "/email-addresses",
        params={"filter[address]": f"{local}@{tenant.domain}"},
        headers=tenant.auth,
    ).json()["data"][0]
    return found["id"], f"{local}@{tenant.domain}"


def test_a_weak_password_is_refused_naming_every_broken_rule(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str]
) -> None:
    browser.login(*alice_user)
    browser.get("/ui/customer/addresses/new?kind=mailbox")
    refused = browser.post(
        "/ui/customer/addresses",
        {"kind": "mailbox", "local_part": "info", "domain": alice.domain, "password": "info1234"},
    )
    assert refused.status_code == 422
    for rule in ("min_length", "min_distinct", "contains_local_part", "keyboard_sequence"):
        assert f"({rule})" in refused.text, rule
    assert "info1234" not in refused.text, "the typed password is never shown again"
    listed = browser.get("/ui/customer/addresses")
    assert "info@alice.example" not in listed.text


def test_the_live_check_names_the_broken_rules(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    address_id, _ = _mailbox(app_client, alice, "live")
    browser.login(*alice_user)
    browser.get(f"/ui/customer/addresses/{address_id}")
    checked = browser.post(f"/ui/customer/addresses/{address_id}/password-check",
                           {"password": "short"})  # fmt: skip
    assert checked.status_code == 200
    assert "min_length" in checked.json()["failed"]
    strong = browser.post(f"/ui/customer/addresses/{address_id}/password-check",
                          {"password": OTHER_STRONG_PASSWORD})  # fmt: skip
    assert strong.json()["failed"] == []


def test_edit_search_and_delete_like_the_api(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    address_id, address = _mailbox(app_client, alice, "sales")
    browser.login(*alice_user)
    browser.get(f"/ui/customer/addresses/{address_id}")
    saved = browser.post(
        f"/ui/customer/addresses/{address_id}",
        {"description": "Sales team", "antispam": "junk-folder", "forward_to": "",
         "quota_mib": "512", "autoresponder_text": "Back on Monday",
         "autoresponder_active": "on", "activates": "", "expires": ""},
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    seen = app_client.get(f"/email-addresses/{address_id}", headers=alice.auth).json()
    attributes = seen["data"]["attributes"]
    assert attributes["description"] == "Sales team"
    assert attributes["antispam"] == "junk-folder"
    assert attributes["autoresponder"]["text"] == "Back on Monday"
    assert attributes["autoresponder"]["active"] is True
    assert address in browser.get("/ui/customer/addresses", params={"q": address}).text
    assert address in browser.get("/ui/customer/addresses", params={"q": alice.domain}).text
    assert address not in browser.get("/ui/customer/addresses", params={"q": "x@y.example"}).text
    browser.get(f"/ui/customer/addresses/{address_id}")
    gone = browser.post(f"/ui/customer/addresses/{address_id}/delete", {"confirm": "on"})
    assert gone.status_code == 303
    after = app_client.get(f"/email-addresses/{address_id}", headers=alice.auth)
    assert after.status_code == 404


def test_a_mailbox_owner_logs_in_with_the_mailbox_password_only(
    browser: Browser, second_browser: Browser, alice: Tenant, app_client: TestClient
) -> None:
    address_id, address = _mailbox(app_client, alice, "owner")
    issued = app_client.post(
        f"/email-addresses/{address_id}/application-passwords",
        content=b'{"data": {"type": "application-password", "attributes": '
        b'{"device": "phone", "application": "mail"}}}',
        headers={**alice.auth, "Content-Type": "application/vnd.api+json"},
    )
    assert issued.status_code == 201, issued.text
    app_secret = issued.json()["data"]["attributes"]["password"]
    refused = browser.login(address, app_secret, path="/ui/mailbox/login")
    assert refused.status_code == 401, "an application password does not open the settings"
    assert browser.login(address, STRONG_PASSWORD, path="/ui/mailbox/login").url.path == (
        "/ui/mailbox"
    )
    second_browser.login(address, STRONG_PASSWORD, path="/ui/mailbox/login")
    # The mailbox session cannot reach the customer menu.
    assert browser.get("/ui/customer").status_code == 303
    browser.get("/ui/mailbox")
    wrong = browser.post("/ui/mailbox/password",
                         {"current_password": "nope", "password": OTHER_STRONG_PASSWORD})  # fmt: skip
    assert wrong.status_code == 422
    changed = browser.post("/ui/mailbox/password", {"current_password": STRONG_PASSWORD,
                           "password": OTHER_STRONG_PASSWORD})  # fmt: skip
    assert changed.status_code == 303
    assert browser.get("/ui/mailbox").status_code == 200
    assert second_browser.get("/ui/mailbox").status_code == 303, "the other session ended"
    second_browser.client.cookies.clear()
    assert second_browser.login(address, STRONG_PASSWORD, path="/ui/mailbox/login"
                                ).status_code == 401  # fmt: skip


def test_suspending_a_customer_ends_its_users_sessions(
    browser: Browser, second_browser: Browser, alice: Tenant, alice_user: tuple[str, str],
    admin_user: tuple[str, str],
) -> None:  # fmt: skip
    browser.login(*alice_user)
    assert browser.get("/ui/customer").status_code == 200
    second_browser.login(*admin_user)
    listed = second_browser.get("/ui/admin")
    assert "Alice GmbH" in listed.text
    suspended = second_browser.post(f"/ui/admin/customers/{alice.customer_id}",
                                    {"action": "suspend"}, follow_redirects=True)  # fmt: skip
    assert "Suspended" in suspended.text
    assert browser.get("/ui/customer").status_code == 303
    browser.client.cookies.clear()
    assert browser.login(*alice_user).status_code == 401
    # A customer user is not an admin: the admin pages send it to the login page.
    second_browser.post(f"/ui/admin/customers/{alice.customer_id}", {"action": "unsuspend"})
    browser.login(*alice_user)
    assert browser.get("/ui/admin").status_code == 303

"""Service errors on German pages, over HTTP on both databases: a broken rule is named in
German (the field and the sentence), a problem without a German entry keeps the service's
English message, English pages keep the service's own words, and an error page is German."""

from __future__ import annotations

from string import Formatter

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.errors import STATUS_TABLE
from postmeister.domain.addresses.rules import Rule
from postmeister.domain.dns.notes import ENGLISH as DNS_ENGLISH
from postmeister.domain.passwords.policy import RULES
from postmeister.web.messages import DNS_NOTES_DE, FAILURES_DE, PROBLEMS_DE
from tests.support.factories import STRONG_PASSWORD, Tenant, make_token
from tests.web.conftest import Browser


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


def _edit() -> dict[str, str]:
    return {"description": "", "antispam": "reject", "forward_to": "", "quota_mib": "",
            "autoresponder_text": "Bin weg", "activates": "2030-06-10",
            "expires": "2030-06-01"}  # fmt: skip


def test_a_german_page_names_a_broken_rule_in_german(
    browser: Browser, alice: Tenant, alice_user: tuple[str, str], app_client: TestClient
) -> None:
    address_id = _mailbox(app_client, alice, "urlaub")
    browser.login(*alice_user)
    path = f"/ui/customer/addresses/{address_id}"
    browser.get(path)
    english = browser.post(path, _edit())
    assert english.status_code == 422
    assert "must not be before the activation date" in english.text
    assert "<strong>autoresponder.expires</strong>" in english.text

    browser.client.headers["Accept-Language"] = "de-DE,de;q=0.9"
    browser.get(path)
    german = browser.post(path, _edit())
    assert german.status_code == 422
    assert german.headers["Content-Language"] == "de"
    assert "<strong>Ausschalten am</strong>: Die Daten passen nicht zusammen" in german.text
    assert "must not be before the activation date" not in german.text
    # Nothing was stored: the API still shows no autoresponder text.
    stored = app_client.get(f"/email-addresses/{address_id}", headers=alice.auth).json()
    assert "Bin weg" not in str(stored)

    # A form the page parses itself (a quota that is not a number) is German too.
    quota = browser.post(path, {**_edit(), "quota_mib": "viel", "activates": "",
                                "expires": ""})  # fmt: skip
    assert quota.status_code == 422 and "<strong>Kontingent</strong>: Eine ganze Zahl in MiB." in (
        quota.text
    )


def test_without_a_german_entry_the_english_message_is_shown(
    browser: Browser, alice: Tenant, app_client: TestClient, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": f"Bearer {make_token(sessions, admin=True)}",
             "Content-Type": "application/vnd.api+json"}  # fmt: skip
    _mailbox(app_client, alice, "owner")
    browser.client.headers["Accept-Language"] = "de"
    browser.login(f"owner@{alice.domain}", STRONG_PASSWORD, path="/ui/mailbox/login")
    browser.get("/ui/mailbox")
    # The package does not allow forwarding yet: a German error page.
    refused = browser.post("/ui/mailbox/forwarding", {"forward_to": "kopie@elsewhere.example"})
    assert refused.status_code == 403
    assert "Das ist Ihnen hier nicht erlaubt." in refused.text

    package = app_client.get("/packages", headers=alice.auth).json()["data"][0]["id"]
    app_client.patch(f"/packages/{package}", headers=admin, json={"data": {
        "type": "package", "id": package, "attributes": {"allow_self_service_forwarding": True}}})  # fmt: skip
    browser.get("/ui/mailbox")
    bad = browser.post("/ui/mailbox/forwarding",
                       {"forward_to": f"kein-adresse\nowner@{alice.domain}"})  # fmt: skip
    assert bad.status_code == 422
    assert "<strong>Weiterleiten an</strong>: Eine Adresse kann nicht an sich selbst " \
        "weiterleiten." in bad.text  # fmt: skip
    # The syntax check names no rule code, so its English sentence stands (never nothing).
    assert "<strong>Weiterleiten an</strong>: &#39;kein-adresse&#39; is not an email address" in (
        bad.text
    )


def test_every_rule_and_error_code_of_the_services_has_a_german_sentence() -> None:
    rules = {v for k, v in vars(Rule).items() if k.isupper() and isinstance(v, str)}
    assert rules | set(RULES) <= set(PROBLEMS_DE)
    codes = {status.code for _, status in STATUS_TABLE}
    assert set(FAILURES_DE) <= codes, "an entry for a code the table does not know"


def test_every_dns_note_has_a_german_sentence_with_the_same_placeholders() -> None:
    assert set(DNS_NOTES_DE) == set(DNS_ENGLISH)
    for code, english in DNS_ENGLISH.items():
        fields = {name for _, name, _, _ in Formatter().parse(english) if name}
        german = {name for _, name, _, _ in Formatter().parse(DNS_NOTES_DE[code]) if name}
        assert german == fields, code

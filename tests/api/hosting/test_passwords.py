"""The password policy over HTTP (each rule failing alone, named in the error) and
POST /email-addresses/{id}/password, which generates a new password and shows it once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import PasswordSettings, Settings
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.domain.passwords.leaked import password_sha1
from postmeister.domain.passwords.policy import RULES, check_password
from postmeister.models import Address
from tests.api.hosting.jsonapi import (
    attributes_of,
    codes,
    create,
    errors,
    forward,
    get,
    headers,
    mailbox,
    patch,
    pointers,
)
from tests.conftest import fast_password_settings
from tests.support.factories import STRONG_PASSWORD, Tenant, make_token
from tests.support.snapshot import snapshot

LEAKED = "Granite+Velvet=Harbor94"

# For the mailbox info@alice.example: each password breaks exactly the one rule named.
ONE_RULE_BROKEN = {
    "min_length": "Trombone!Glacr7",
    "max_length": "Trombone!Glacier+Mosaic=Tulip77 " * 40,
    "min_distinct": "Mississippi-Mississippi",
    "charset": "Trombone!Glacier+Mosaïc",
    "contains_local_part": "Trombone!Info+Glacier",
    "contains_domain": "Trombone!Alice+Glacier",
    "banned_word": "Trombone!Passwort+Glacier",
    "keyboard_sequence": "Trombone!qwert+Glacier",
    "leaked": LEAKED,
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """An operator-supplied leaked list (SHA-1 per line, as breach corpora publish it)."""
    leaked_file = tmp_path / "leaked-sha1.txt"
    leaked_file.write_text(f"{password_sha1(LEAKED)}:12\n")
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        passwords=fast_password_settings(leaked_hash_files=[leaked_file]),
    )


def stored_hash(sessions: sessionmaker[Session], address_id: str) -> str:
    with sessions() as session:
        hashed = session.scalar(select(Address.password_hash).where(Address.id == int(address_id)))
    assert hashed is not None
    return hashed


def test_every_rule_of_the_policy_is_covered() -> None:
    assert set(ONE_RULE_BROKEN) == set(RULES)


@pytest.mark.parametrize("rule", sorted(ONE_RULE_BROKEN))
def test_each_rule_fails_alone_and_is_named(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session], rule: str
) -> None:
    created = mailbox(client, alice, password=STRONG_PASSWORD)
    before = snapshot(sessions)
    response = patch(client, alice, created["id"], {"password": ONE_RULE_BROKEN[rule]})
    assert response.status_code == 422
    [error] = errors(response)
    assert error["code"] == rule
    assert error["status"] == "422"
    assert error["title"] == "Password does not meet the policy"
    assert error["source"] == {"pointer": "/data/attributes/password"}
    assert ONE_RULE_BROKEN[rule].strip() not in error["detail"]
    assert snapshot(sessions) == before


def test_the_spec_example_password_is_refused(client: TestClient, alice: Tenant) -> None:
    created = mailbox(client, alice)
    response = patch(client, alice, created["id"], {"password": "lieber laenger, als kuerzer"})
    assert response.status_code == 422
    assert codes(response) == ["banned_word"]


def test_a_password_breaking_several_rules_names_each(client: TestClient, alice: Tenant) -> None:
    response = create(
        client, alice, address="info@alice.example", address_type="mailbox", password="info1234"
    )
    assert response.status_code == 422
    assert {"min_length", "min_distinct", "contains_local_part", "keyboard_sequence"} <= set(
        codes(response)
    )
    assert set(pointers(response)) == {"/data/attributes/password"}


def test_both_dialects_enforce_the_same_policy(client: TestClient, alice: Tenant) -> None:
    response = client.post(
        "/mail/account/",
        json={"name": "info", "domain": alice.domain, "password": ONE_RULE_BROKEN["leaked"]},
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert [e["rule"] for e in response.json()["errors"]] == ["leaked"]


def test_post_password_generates_a_new_one_shown_once(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    created = mailbox(client, alice, password=STRONG_PASSWORD)
    old_hash = stored_hash(sessions, created["id"])
    response = client.post(f"/email-addresses/{created['id']}/password", headers=alice.auth)
    assert response.status_code == 200, response.text
    attributes = attributes_of(response)
    new = attributes["password"]
    assert new != STRONG_PASSWORD
    assert (
        check_password(new, local_part="info", domain="alice.example", settings=PasswordSettings())
        == []
    )
    new_hash = stored_hash(sessions, created["id"])
    assert new_hash != old_hash
    hashing = PasswordHashing(PasswordSettings())
    assert hashing.verify(new_hash, new)
    assert not hashing.verify(new_hash, STRONG_PASSWORD)
    later = get(client, alice, created["id"])
    assert "password" not in attributes_of(later)
    assert new not in later.text


def test_post_password_on_a_forward_or_without_write_access(
    client: TestClient, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    office = forward(client, alice, "office", ["a@elsewhere.example"])
    info = mailbox(client, alice)
    reader = make_token(sessions, customer_id=alice.customer_id, read_only=True)
    before = snapshot(sessions)
    on_forward = client.post(f"/email-addresses/{office['id']}/password", headers=alice.auth)
    assert on_forward.status_code == 409
    assert "forward" in errors(on_forward)[0]["detail"]
    read_only = client.post(
        f"/email-addresses/{info['id']}/password", headers={"Authorization": f"Bearer {reader}"}
    )
    assert read_only.status_code == 403
    assert snapshot(sessions) == before


def test_post_password_takes_no_document_but_checks_the_media_type(
    client: TestClient, alice: Tenant
) -> None:
    info = mailbox(client, alice)
    wrong_type = client.post(
        f"/email-addresses/{info['id']}/password",
        content=b"{}",
        headers={**alice.auth, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    with_document = client.post(
        f"/email-addresses/{info['id']}/password", content=b"{}", headers=headers(alice)
    )
    assert with_document.status_code == 200

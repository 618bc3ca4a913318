"""`postmeister domain list|show|update|catchall|delete` as a real process on both databases:
JSON on stdout, the same rules as `/domains`, a clear error and exit 1 when one is broken."""

from __future__ import annotations

import json
import os
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from tests.support.factories import add_domain_to, make_tenant
from tests.support.processes import cli


def run(settings: Settings, *args: str) -> Any:
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
    }
    done = cli("domain", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(settings: Settings, *args: str) -> str:
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
    }
    done = cli("domain", *args, env=env)
    assert done.returncode == 1, done.stdout
    return done.stderr


def test_domain_verbs_print_json_and_apply_the_domain_rules(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    alice = make_tenant(sessions, name="Alice", domain="alice.example")
    bob = make_tenant(sessions, name="Bob", domain="bob.example")
    add_domain_to(sessions, alice, "alias.example")

    alias = run(settings, "update", "alias.example", "--alias-of", "alice.example")
    assert alias["alias_of"] == "alice.example"
    shown = run(settings, "show", "alice.example")
    assert shown["aliases"] == ["alias.example"]
    caught = run(settings, "catchall", "alice.example", "Someone@Elsewhere.example")
    assert caught["catchall"] == ["someone@elsewhere.example"]
    assert "same customer" in refused(
        settings, "update", "bob.example", "--alias-of", "alice.example"
    )
    assert "alias" in refused(
        settings, "update", "alice.example", "--customer", str(bob.customer_id)
    )
    assert "cascade" in refused(settings, "delete", "alice.example")

    listed = run(settings, "list", "--customer", str(alice.customer_id))
    assert [item["name"] for item in listed] == ["alice.example", "alias.example"]
    assert run(settings, "catchall", "alice.example", "--off")["catchall"] == []
    run(settings, "update", "alias.example", "--no-alias")
    moved = run(settings, "update", "alias.example", "--customer", str(bob.customer_id))
    assert moved["customer_id"] == bob.customer_id
    assert run(settings, "delete", "alias.example")["deleted"]["name"] == "alias.example"
    assert [item["name"] for item in run(settings, "list")] == ["alice.example", "bob.example"]

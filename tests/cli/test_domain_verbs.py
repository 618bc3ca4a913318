"""`postmeister domain list|show|update|catchall|delete` as a real process on both databases:
JSON on stdout, the same rules as `/domains`, a clear error and exit 1 when one is broken."""

from __future__ import annotations

import json
import os
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from tests.support.factories import add_domain_to, make_tenant
from tests.support.processes import CliWorker, cli


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
    }


class DomainVerbs:
    """`postmeister domain ...`: the first success and the first refusal as a real process
    (the `postmeister` executable: its exit code, stdout, stderr), the others through the
    same entry point in the session's CLI worker (`tests/support/cli_worker.py`)."""

    def __init__(self, settings: Settings, worker: CliWorker) -> None:
        self.env = env_for(settings)
        self.worker = worker
        self.real_success = self.real_refusal = True

    def run(self, *args: str) -> Any:
        runner, self.real_success = (cli if self.real_success else self.worker), False
        done = runner("domain", *args, env=self.env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def refused(self, *args: str) -> str:
        runner, self.real_refusal = (cli if self.real_refusal else self.worker), False
        done = runner("domain", *args, env=self.env)
        assert done.returncode == 1, done.stdout
        return done.stderr


def test_domain_verbs_print_json_and_apply_the_domain_rules(
    settings: Settings, sessions: sessionmaker[Session], postmeister_cli: CliWorker
) -> None:
    domain = DomainVerbs(settings, postmeister_cli)
    run, refused = domain.run, domain.refused
    alice = make_tenant(sessions, name="Alice", domain="alice.example")
    bob = make_tenant(sessions, name="Bob", domain="bob.example")
    add_domain_to(sessions, alice, "alias.example")

    alias = run("update", "alias.example", "--alias-of", "alice.example")
    assert alias["alias_of"] == "alice.example"
    shown = run("show", "alice.example")
    assert shown["aliases"] == ["alias.example"]
    caught = run("catchall", "alice.example", "Someone@Elsewhere.example")
    assert caught["catchall"] == ["someone@elsewhere.example"]
    assert "same customer" in refused("update", "bob.example", "--alias-of", "alice.example")
    assert "alias" in refused("update", "alice.example", "--customer", str(bob.customer_id))
    assert "cascade" in refused("delete", "alice.example")

    listed = run("list", "--customer", str(alice.customer_id))
    assert [item["name"] for item in listed] == ["alice.example", "alias.example"]
    assert run("catchall", "alice.example", "--off")["catchall"] == []
    run("update", "alias.example", "--no-alias")
    moved = run("update", "alias.example", "--customer", str(bob.customer_id))
    assert moved["customer_id"] == bob.customer_id
    assert run("delete", "alias.example")["deleted"]["name"] == "alias.example"
    assert [item["name"] for item in run("list")] == ["alice.example", "bob.example"]

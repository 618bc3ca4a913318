"""`postmeister sync run` and `postmeister export` as a person runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import Tenant, make_tenant
from tests.support.processes import CliWorker, cli
from tests.support.snapshot import snapshot

MD5 = "$1$9hW1N3SC$J6vfo890zc50GC1jYHP211"
DOC = {
    "example.com": {
        "account": [{"name": "alice", "password": MD5}, {"name": "bob", "password": MD5}],
        "alias": [{"name": "office", "to": "alice@example.com,bob@example.com"}],
    }
}
# The hosting panel's shape: accounts also carry their whitelist and subaddress switch.
ALICE = {
    "name": "alice",
    "password": MD5,
    "spoofing_whitelist": "example.com",
    "subaddress_extension": True,
}
OFFICE = {"name": "office", "to": "alice@example.com,bob@example.com"}
PANEL_DOC = {
    "example.com": {
        "account": [
            ALICE,
            {"name": "bob", "password": MD5},
        ],
        "alias": [OFFICE],
    }
}
# What export writes for it: both keys on every account, a left-out key as its default.
PANEL_EXPORT = {
    "example.com": {
        "account": [
            ALICE,
            {
                "name": "bob",
                "password": MD5,
                "spoofing_whitelist": "",
                "subaddress_extension": False,
            },
        ],
        "alias": [OFFICE],
    }
}


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(tmp_path),
        "POSTMEISTER_DATABASE_URL": database_url,
    }


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> Tenant:
    return make_tenant(sessions, name="Example", domain="example.com")


def test_dry_run_prints_the_plan_and_changes_nothing(
    env: dict[str, str], tenant: Tenant, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "mail.json"
    path.write_text(json.dumps(DOC))
    before = snapshot(sessions)
    result = cli(
        "sync",
        "run",
        "--file",
        str(path),
        "--customer",
        str(tenant.customer_id),
        "--dry-run",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "+ create mailbox alice@example.com",
        "+ create mailbox bob@example.com",
        "+ create alias office@example.com → alice@example.com,bob@example.com",
    ]
    assert json.loads(result.stderr.strip().splitlines()[-1])["created"] == 3
    assert snapshot(sessions) == before


def test_apply_then_export_is_a_round_trip(
    env: dict[str, str], tenant: Tenant, tmp_path: Path, postmeister_cli: CliWorker
) -> None:
    """`export` runs as the real executable (what it prints is the round trip's file); the
    two `sync run`s go through the same entry point in the CLI worker."""
    path = tmp_path / "mail.json"
    path.write_text(json.dumps(PANEL_DOC))
    customer = str(tenant.customer_id)
    applied = postmeister_cli("sync", "run", "--file", str(path), "--customer", customer, env=env)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout) == {
        "result": "applied",
        "created": 3,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
    }
    exported = cli("export", "--customer", customer, env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == PANEL_EXPORT
    (tmp_path / "export.json").write_text(exported.stdout)
    again = postmeister_cli(
        "sync", "run", "--file", str(tmp_path / "export.json"), "--customer", customer, env=env
    )
    assert json.loads(again.stdout)["result"] == "unchanged"


def test_rejected_document_lists_every_problem(
    env: dict[str, str], tenant: Tenant, tmp_path: Path
) -> None:
    bad = {
        "example.com": {"account": [{"name": "a b", "password": "plain"}], "colour": []},
        "foreign.example": {},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = cli("sync", "run", "--file", str(path), "--customer", str(tenant.customer_id), env=env)
    assert result.returncode == 1
    assert "nothing changed" in result.stderr
    for pointer in (
        "/example.com/account/0/name",
        "/example.com/account/0/password",
        "/example.com/colour",
    ):
        assert pointer in result.stderr


def test_mass_deletion_needs_the_flag(
    env: dict[str, str], tenant: Tenant, tmp_path: Path, postmeister_cli: CliWorker
) -> None:
    """The refusal runs as the real executable; the setup and the forced run go through the
    same entry point in the CLI worker."""
    customer = str(tenant.customer_id)
    full = tmp_path / "full.json"
    full.write_text(json.dumps(DOC))
    postmeister_cli("sync", "run", "--file", str(full), "--customer", customer, env=env)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"example.com": {}}))
    held = cli("sync", "run", "--file", str(empty), "--customer", customer, env=env)
    assert held.returncode == 1
    assert "--allow-mass-deletion" in held.stderr
    forced = postmeister_cli(
        "sync",
        "run",
        "--file",
        str(empty),
        "--customer",
        customer,
        "--allow-mass-deletion",
        env=env,
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["deleted"] == 3

"""`postmeister node move` as a real process on both databases, where no mail is copied:
what it refuses before it touches anything, and that a failed copy leaves the home where
it was (the move itself, with two mail nodes: tests/e2e/test_placement.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.domain.access import Actor
from postmeister.domain.placement import service as placement
from tests.api.hosting.jsonapi import mailbox
from tests.cli.test_domain_verbs import env_for
from tests.support.factories import make_tenant
from tests.support.processes import cli


def _home(sessions: sessionmaker[Session], address_id: int) -> str | None:
    with sessions() as session:
        return placement.find_placement(session, Actor.system(), address_id).home_node


def test_a_move_is_refused_or_fails_without_changing_the_home(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Run as node 2 (the move runs on the new home; its Dovecot is not needed to refuse).
    env = {
        **env_for(settings),
        "POSTMEISTER_DATAPLANE__NODE_NAME": "node2",
        "POSTMEISTER_DATAPLANE__NODE_ADDRESS": "127.0.0.2",
        "POSTMEISTER_DATAPLANE__NODE_NETWORKS": '["127.0.0.0/8"]',
    }
    # Node 1 on loopback, where no doveadm server answers: the first copy fails.
    assert cli("node", "add", "node1", "--address", "127.0.0.1", env=env).returncode == 0
    alice = make_tenant(sessions, name="Move GmbH", domain="move.example")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        address_id = int(mailbox(client, alice, "info")["id"])
    assert _home(sessions, address_id) == "node1"
    assert cli("node", "add", "node2", "--address", "127.0.0.2", env=env).returncode == 0

    here = cli("node", "move", "info@move.example", "--to", "node1", env=env)
    assert here.returncode == 1 and "run the move on 'node1'" in here.stderr
    added = cli("node", "add", "node3", "--address", "127.0.0.3", "--state", "draining", env=env)
    assert added.returncode == 0
    draining = cli(
        "node", "move", "info@move.example", "--to", "node3",
        env={**env, "POSTMEISTER_DATAPLANE__NODE_NAME": "node3"},
    )  # fmt: skip
    assert draining.returncode == 1 and "is draining" in draining.stderr, draining.stderr
    same = cli(
        "node", "move", "info@move.example", "--to", "node1",
        env={**env, "POSTMEISTER_DATAPLANE__NODE_NAME": "node1"},
    )  # fmt: skip
    assert same.returncode == 1 and "already homed" in same.stderr
    failed = cli("node", "move", "info@move.example", "--to", "node2", env=env)
    assert failed.returncode == 1 and "doveadm sync failed" in failed.stderr, failed.stderr
    assert "copying info@move.example from node1" in failed.stderr
    assert "switching" not in failed.stderr
    assert _home(sessions, address_id) == "node1"

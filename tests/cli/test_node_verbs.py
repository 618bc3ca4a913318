"""`postmeister node add|list` as a real process on both databases: the registered node
takes the next mailbox created through the API, and the list counts it."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.api.hosting.jsonapi import mailbox
from tests.cli.test_domain_verbs import env_for
from tests.support.factories import make_tenant
from tests.support.processes import cli


def test_add_a_node_then_a_new_mailbox_is_homed_on_it(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    alice = make_tenant(sessions, name="Node GmbH", domain="node.example")
    env = env_for(settings)
    added = cli("node", "add", "node1", "--address", "10.0.0.11", env=env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {
        "name": "node1",
        "address": "10.0.0.11",
        "lmtp_port": 24,
        "state": "active",
        "mailboxes": 0,
    }
    again = cli("node", "add", "node1", "--address", "10.0.0.12", env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = cli("node", "add", "Node 2", "--address", "10.0.0.12", env=env)
    assert bad.returncode == 1 and "DNS label" in bad.stderr
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        mailbox(client, alice, "info")
    listed = cli("node", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(n["name"], n["mailboxes"]) for n in json.loads(listed.stdout)] == [("node1", 1)]

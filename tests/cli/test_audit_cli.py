"""`postmeister audit` as a real process: the CLI's own changes are the CLI's in the trail
(the operating-system user and the command, never its arguments), filters work."""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

from postmeister.config import Settings
from tests.support.processes import cli


def run(settings: Settings, *args: str) -> Any:
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
    }
    done = cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_cli_is_the_actor_of_its_changes_and_reads_the_trail(settings: Settings) -> None:
    created = run(settings, "customer", "create", "Shell GmbH")
    run(settings, "customer", "update", str(created["id"]), "--name", "Shell AG")

    found = run(settings, "audit", "--resource", "customer", "--customer", str(created["id"]))
    assert [e["attributes"]["action"] for e in found] == ["created", "updated"]
    renamed = found[1]["attributes"]
    assert renamed["changes"] == {"name": ["Shell GmbH", "Shell AG"]}
    assert renamed["actor_kind"] == "cli"
    assert renamed["actor_id"] == getpass.getuser()
    assert renamed["actor_label"] == "postmeister customer update"  # no argument in it
    assert renamed["request_id"] != found[0]["attributes"]["request_id"]  # one per command
    later = run(settings, "audit", "--action", "updated", "--after", found[0]["id"])
    assert [e["id"] for e in later] == [found[1]["id"]]

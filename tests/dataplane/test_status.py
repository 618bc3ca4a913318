"""`postmeister dataplane status` without a running stack: a clear message, exit 1; and a
stack whose daemons are gone is reported daemon by daemon (the running case is proven
end to end in tests/e2e/test_backup_restore.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from postmeister.dataplane.render.model import StackLayout
from tests.support.processes import cli, free_port


def test_status_without_a_stack_says_so(tmp_path: Path) -> None:
    result = cli("dataplane", "status", "--dir", str(tmp_path / "nothing"), env={**os.environ})
    assert result.returncode == 1
    assert "no running stack" in result.stderr


def test_status_of_a_stopped_stack_names_every_daemon(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path / "stack")
    layout.root.mkdir()
    names = ("smtp", "imap", "pop3", "milter", "antispam", "milter_metrics", "rspamd", "authpolicy")
    layout.state_file.write_text(json.dumps({name: free_port() for name in names}))
    result = cli("dataplane", "status", "--dir", str(layout.root), env={**os.environ})
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert set(report["daemons"]) == {"postfix", "dovecot", "milter", "rspamd", "authpolicy"}
    assert not any(daemon["answers"] for daemon in report["daemons"].values())

"""A backup taken while mail and API writes stream in, restored into a fresh data folder
(SQLite) or a fresh database (PostgreSQL), then a real stack on the restored copy: every
mailbox, alias, application password and autoresponder works there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.dataplane.render.model import StackLayout
from tests.conftest import PG_ADMIN_URL, fast_password_settings
from tests.e2e import hosting
from tests.e2e.conftest import Stack, alive, dataplane_cli, shared_tmp_dir, stack_pids
from tests.e2e.mail import (
    compose,
    deliver,
    imap_login_works,
    imap_subjects,
    send_raw,
    subject_contains,
    unique_subject,
    wait_for_messages,
    wait_for_subject,
)
from tests.support.databases import fresh_postgres_database
from tests.support.processes import CliWorker, cli
from tests.support.secrets import keep_logs

pytestmark = pytest.mark.e2e


@dataclass
class Traffic:
    """Deliveries and API writes, one after the other, until stopped."""

    stack: Stack
    to: str
    subjects: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                subject = unique_subject("during the backup")
                codes = deliver(self.stack.ports["smtp"], sender="f@sender.example",
                                recipients=[self.to], subject=subject)  # fmt: skip
                assert codes == {self.to: 250}, codes
                self.subjects.append(subject)
                self.accounts.append(self.stack.create_account().address)
                self.running.set()
        except BaseException as exc:
            self.errors.append(exc)
            self.running.set()


@contextmanager
def restore_target(stack: Stack, root: Path) -> Iterator[dict[str, str]]:
    """The environment of a fresh installation of the same kind as `stack`'s."""
    base = {**os.environ, "POSTMEISTER_DATA_DIR": str(root / "data")}
    if stack.backend == "sqlite":
        (root / "db").mkdir()
        base["POSTMEISTER_DATABASE_URL"] = f"sqlite:///{root / 'db' / 'postmeister.sqlite3'}"
        yield base
        return
    with fresh_postgres_database(PG_ADMIN_URL, prefix="pm_e2e_restore") as url:
        base["POSTMEISTER_DATABASE_URL"] = url
        yield base


def test_backup_under_load_restores_into_a_working_installation(
    stack: Stack, postmeister_cli: CliWorker
) -> None:
    """`backup` and the failing `dataplane status` run as the real executable; `restore` and
    the first `status` go through the same entry point in the CLI worker."""
    box = hosting.mailbox(stack, prefix="kept")
    _, app_secret = hosting.app_password(stack, box, "Telefon")
    away = hosting.mailbox(stack, prefix="away")
    hosting.patch(stack, away.id, {"autoresponder": {"text": "Bin im Urlaub."}})
    hosting.patch(stack, away.id, {"autoresponder": {"active": True}})
    correspondent = hosting.mailbox(stack, prefix="writer")
    alias = stack.create_alias([box.address])
    first = unique_subject("before the backup")
    assert deliver(stack.ports["smtp"], sender="f@sender.example", recipients=[box.address],
                   subject=first) == {box.address: 250}  # fmt: skip
    assert wait_for_subject(stack.ports["imap"], box.address, box.password, first)

    root = shared_tmp_dir("pm-e2e-restore-")
    backup_dir = root / "backup"
    layout = StackLayout(root / "stack")
    traffic = Traffic(stack, box.address)
    thread = threading.Thread(target=traffic.run)
    thread.start()
    try:
        assert traffic.running.wait(60)
        result = cli(
            "backup", "--out", str(backup_dir), "--mail-store",
            "--mail-root", str(StackLayout(stack.root).mail_root), env=stack.env,
        )  # fmt: skip
        during = len(traffic.subjects)
    finally:
        traffic.stop.set()
        thread.join(60)
    assert not traffic.errors, traffic.errors
    assert result.returncode == 0, result.stderr
    assert during >= 1 and len(traffic.subjects) > 1
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["mail_store"]["files"] >= 1

    with restore_target(stack, root) as env:
        restored = postmeister_cli(
            "restore", str(backup_dir), "--mail-root", str(layout.mail_root), env=env
        )
        assert restored.returncode == 0, restored.stderr
        up = dataplane_cli("up", "--dir", str(layout.root), env=env)
        assert up.returncode == 0, up.stderr
        pids = stack_pids(layout.root)
        ports = json.loads(up.stdout)
        try:
            status = postmeister_cli("dataplane", "status", "--dir", str(layout.root), env=env)
            assert status.returncode == 0, status.stdout + status.stderr
            assert json.loads(status.stdout)["ok"] is True

            imap, smtp = ports["imap"], ports["smtp"]
            # The mailbox, its password, its stored mail, its application password.
            assert first in imap_subjects(imap, box.address, box.password)
            assert imap_login_works(imap, box.address, app_secret)
            # The alias delivers into the restored mailbox.
            via_alias = unique_subject("to the alias after the restore")
            assert deliver(smtp, sender="f@sender.example", recipients=[alias],
                           subject=via_alias) == {alias: 250}  # fmt: skip
            assert wait_for_subject(imap, box.address, box.password, via_alias)
            # The autoresponder answers from the restored database.
            question = unique_subject("are you there")
            raw = compose(header_from=correspondent.address, to=away.address, subject=question)
            codes, reply = send_raw(smtp, sender=correspondent.address,
                                    recipients=[away.address], raw=raw)  # fmt: skip
            assert codes == {away.address: 250} and reply is not None and reply[0] == 250
            replies = wait_for_messages(imap, correspondent.address, correspondent.password,
                                        subject_contains(question))  # fmt: skip
            assert [str(m["Subject"]) for m in replies] == [f"Auto: {question}"]
            # A consistent copy: the accounts created before the backup ended are there
            # with their passwords, in creation order (a prefix of the stream).
            settings = Settings(data_dir=root / "data",
                                database_url=env["POSTMEISTER_DATABASE_URL"],
                                passwords=fast_password_settings())  # fmt: skip
            with TestClient(create_app(settings), base_url="https://testserver") as api:
                names = {a["name"] for a in api.get("/mail/account/",
                                                     headers=stack.tenant.auth).json()}  # fmt: skip
            kept = [a for a in traffic.accounts if a.partition("@")[0] in names]
            assert kept == traffic.accounts[: len(kept)] and len(kept) >= 1

            # `dataplane status` names a daemon that stopped, and exits 1.
            os.kill(pids["milter"], signal.SIGTERM)
            deadline = time.monotonic() + 30
            while alive(pids["milter"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            broken = cli("dataplane", "status", "--dir", str(layout.root), env=env)
            assert broken.returncode == 1
            milter = json.loads(broken.stdout)["daemons"]["milter"]
            assert milter["answers"] is False and milter["reads_contract"] is False
        finally:
            down = dataplane_cli("down", "--dir", str(layout.root), env=env)
            keep_logs(layout.log_dir, f"restored-{stack.backend}")
            assert down.returncode == 0, down.stderr
            assert not [name for name, pid in pids.items() if alive(pid)]
            shutil.rmtree(root, ignore_errors=True)

"""End-to-end fixtures: one real Postfix + Dovecot + rspamd stack per database for the session.

Each stack is started with `dataplane up` as a separate process (the command an operator
runs) and stopped with `dataplane down`; changes are made through the controller API, exactly
as a customer would, and observed with real SMTP, IMAP and POP3 clients.

The stacks live under a fresh directory in /tmp whose parents are searchable by the postfix,
dovecot and vmail users (pytest's own tmp_path is private to root, which they cannot enter).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import DkimSettings, PasswordSettings, Settings, WebhookSettings
from postmeister.dataplane.render.model import StackLayout
from postmeister.db import make_engine, make_session_factory
from postmeister.domain.passwords.generator import generate_password
from postmeister.store import migrate
from tests.conftest import PG_ADMIN_URL, fast_password_settings
from tests.support.factories import Tenant, make_tenant
from tests.support.secrets import keep_logs

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}x{uuid.uuid4().hex[:6]}"


def strong_password(address: str = "someone@example.org") -> str:
    """A fresh password that the default policy accepts for `address`."""
    local, _, domain = address.partition("@")
    return generate_password(local_part=local, domain=domain, settings=PasswordSettings())


def shared_tmp_dir(prefix: str) -> Path:
    """A directory the mail servers' users can traverse (mode 0755 under /tmp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)  # noqa: S103 (postfix, dovecot and vmail must enter it)
    return path


@contextmanager
def scratch_database(backend: str, root: Path, *, prefix: str) -> Iterator[str]:
    """A migrated database of one module's own stack; yields its URL. SQLite: a file below
    `root` (the caller removes `root`); PostgreSQL: a database `<prefix>_<random>`, dropped by
    its name afterwards."""
    if backend == "sqlite":
        (root / "db").mkdir()
        url = f"sqlite:///{root / 'db' / 'postmeister.sqlite3'}"
        migrate(url)
        yield url
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def dataplane_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "postmeister.cli.dataplane", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stack_pids(root: Path) -> dict[str, int]:
    """The pids of the daemons that run (an Ed25519 signer only where configured)."""
    files = StackLayout(root).pid_files()
    return {name: int(path.read_text().split()[0]) for name, path in files.items() if path.exists()}


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@dataclass
class Stack:
    """A running data plane, its database, and a customer who drives it through the API."""

    backend: str
    root: Path
    env: dict[str, str]
    settings: Settings
    sessions: sessionmaker[Session]
    ports: dict[str, Any]
    api: TestClient
    tenant: Tenant
    notes: list[str] = field(default_factory=list)

    @property
    def domain(self) -> str:
        return self.tenant.domain

    def create_account(self, *, whitelist: str = "", disabled: bool = False) -> Account:
        local = unique("user")
        password = strong_password(f"{local}@{self.domain}")
        response = self.api.post(
            "/mail/account/",
            json={
                "name": local,
                "domain": self.domain,
                "password": password,
                "spoofing_whitelist": whitelist,
                "submission_disabled": disabled,
            },
            headers=self.tenant.auth,
        )
        assert response.status_code == 201, response.text
        return Account(address=f"{local}@{self.domain}", password=password)

    def call(self, method: str, path: str, **json_body: Any) -> httpx.Response:
        response: httpx.Response = self.api.request(
            method, path, json=json_body or None, headers=self.tenant.auth
        )
        assert response.status_code < 300, response.text
        return response

    def create_alias(self, targets: list[str]) -> str:
        local = unique("alias")
        self.call("POST", "/mail/alias/", name=local, domain=self.domain, to=",".join(targets))
        return f"{local}@{self.domain}"


@dataclass
class Account:
    address: str
    password: str


def start_stack(
    backend: str,
    root: Path,
    database_url: str,
    *,
    extra_env: dict[str, str] | None = None,
    dkim: DkimSettings | None = None,
) -> Iterator[Stack]:
    """A stack and an API on `database_url`; `extra_env` reaches `dataplane up` (e.g. an
    outbound relay), `dkim` the API's key settings (keep them the same as in extra_env)."""
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(root / "data"),
        "POSTMEISTER_DATABASE_URL": database_url,
        **(extra_env or {}),
    }
    settings = Settings(
        dkim=dkim or DkimSettings(),
        data_dir=root / "data",
        database_url=database_url,
        passwords=fast_password_settings(),
        # The stacks live for the whole session: a dispatcher polling every 2 s would write
        # its log lines into other tests' captured logs (tests/ops/test_logs.py). The e2e
        # tests deliver no webhooks; tests/webhooks and tests/server do, with their own apps.
        webhooks=WebhookSettings(enabled=False),
    )
    result = dataplane_cli("up", "--dir", str(root / "stack"), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"`up` must print exactly one JSON object: {result.stdout!r}"
    ports = json.loads(lines[0])
    assert {"smtp", "submission", "imap", "pop3", "pop3s"} <= set(ports)
    pids = stack_pids(root / "stack")
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    # The production default, RSA, which every stack signs with (not the suite's faster
    # Ed25519-only default: an RSA signer has nothing to sign such a domain's mail with).
    tenant = make_tenant(
        sessions, name=f"E2E {backend}", domain=f"{backend}.e2e.example", dkim=DkimSettings()
    )
    try:
        with TestClient(create_app(settings), base_url="https://testserver") as api:
            yield Stack(backend, root / "stack", env, settings, sessions, ports, api, tenant)
    finally:
        engine.dispose()
        result = dataplane_cli("down", "--dir", str(root / "stack"), env=env)
        keep_logs(StackLayout(root / "stack").log_dir, f"stack-{backend}")
        assert result.returncode == 0, result.stderr
        still_running = {name: pid for name, pid in pids.items() if alive(pid)}
        assert not still_running, f"`down` left daemons running: {still_running}"


@pytest.fixture(scope="session")
def sqlite_stack() -> Iterator[Stack]:
    root = shared_tmp_dir("pm-e2e-sqlite-")
    (root / "db").mkdir()
    url = f"sqlite:///{root / 'db' / 'postmeister.sqlite3'}"
    migrate(url)
    try:
        yield from start_stack("sqlite", root, url)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_stack() -> Iterator[Stack]:
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pm_e2e_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    root = shared_tmp_dir("pm-e2e-pg-")
    try:
        migrate(url)
        yield from start_stack("postgresql", root, url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The running stack of each database in turn."""
    found: Stack = request.getfixturevalue(
        f"{'postgres' if request.param == 'postgresql' else 'sqlite'}_stack"
    )
    return found

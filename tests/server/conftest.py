"""A real `postmeister serve` process: HTTPS with its own certificate, a fresh data dir, the
bootstrap admin token it prints on first start.

`server` starts one per test (on an emptied database); `shared_server` one per module and
database, for tests that need no fresh server: each of them creates its own customer,
domain and token under names no other test uses, and none of them looks at what others
created."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from postmeister.store import migrate
from tests.conftest import BACKENDS, PG_ADMIN_URL
from tests.support.databases import fresh_postgres_database
from tests.support.processes import BIN, free_port, stop, wait_for_port


@dataclass
class Server:
    url: str
    cert: Path
    env: dict[str, str]
    admin_token: str
    output: list[str]


def run_server(database_url: str, data_dir: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(data_dir),
        "POSTMEISTER_DATABASE_URL": database_url,
    }
    process = subprocess.Popen(
        [str(BIN / "postmeister"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process=process)
        assert process.stdout is not None
        lines: list[str] = []
        while not any("bootstrap admin token" in line for line in lines):
            lines.append(process.stdout.readline())
        token = next(line for line in lines if "bootstrap" in line).rsplit(" ", 1)[1].strip()
        yield Server(
            url=f"https://127.0.0.1:{port}",
            cert=data_dir / "tls" / "cert.pem",
            env=env,
            admin_token=token,
            output=lines,
        )
    finally:
        stop(process)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    yield from run_server(database_url, tmp_path / "data")


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Server]:
    """One server per module and database, on a database of its own (migrated, empty)."""
    root = tmp_path_factory.mktemp("shared-server")
    if request.param == "sqlite":
        path = root / "postmeister.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield from run_server(f"sqlite:///{path}", root / "data")
        return
    with fresh_postgres_database(PG_ADMIN_URL, prefix="pm_server") as url:
        migrate(url)
        yield from run_server(url, root / "data")

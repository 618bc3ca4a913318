"""A real `postmeister serve` process per test: HTTPS with its own certificate, a fresh data
dir, the bootstrap admin token it prints on first start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import BIN, free_port, stop, wait_for_port


@dataclass
class Server:
    url: str
    cert: Path
    env: dict[str, str]
    admin_token: str
    output: list[str]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(tmp_path / "data"),
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
            cert=tmp_path / "data" / "tls" / "cert.pem",
            env=env,
            admin_token=token,
            output=lines,
        )
    finally:
        stop(process)

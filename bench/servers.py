"""Real server processes for the benchmarks: `postmeister serve`, the bare baseline, and the
data plane (`postmeister dataplane up/down`). Each is stopped by its own pid (the data plane
by `down`, which stops its daemons by their pid files); nothing is ever killed by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx

from bench.common import ROOT, log

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    name: str
    base_url: str
    cert: Path
    pid: int

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.base_url, verify=str(self.cert), headers=headers, timeout=60, **kwargs
        )


def _stop(process: Popen[bytes], name: str) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {process.pid}) did not stop on SIGTERM; sending SIGKILL")
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_serving(process: Popen[bytes], url: str, cert: Path, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} before serving")
        if cert.exists():
            try:
                httpx.get(url, verify=str(cert), timeout=2)
                return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on {url} within 60 s")


def _start(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> Popen[bytes]:
    with log_file.open("ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


@contextmanager
def api_servers(
    database_url: str, customer_id: int, data_dir: Path, *, workers: int = 1
) -> Iterator[tuple[Server, Server]]:
    """`postmeister serve` exactly as an operator starts it (HTTPS with the self-signed
    certificate in its data folder, access log on) and the bare baseline (`bench.bare`) with
    the same certificate, uvicorn settings and number of worker processes (one unless the
    section measures the scaling: the CPU figures read the server's own process). Both
    start at once; the certificate is made first, by the same function `serve` uses (which
    then reuses it)."""
    from postmeister.tls import ensure_self_signed

    data_dir.mkdir(parents=True, exist_ok=True)
    cert, key, _ = ensure_self_signed(data_dir / "tls")
    ours_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(data_dir),
        "POSTMEISTER_DATABASE_URL": database_url,
    }
    with ExitStack() as running:
        ours = _start(
            [sys.executable, "-m", "postmeister.cli.main", "serve", "--port", str(ours_port),
             "--workers", str(workers)],
            data_dir / "serve.log",
            env,
        )
        running.callback(_stop, ours, "postmeister serve")
        bare = _start(
            [sys.executable, "-m", "bench.bare", "--url", database_url,
             "--customer", str(customer_id), "--port", str(bare_port),
             "--cert", str(cert), "--key", str(key), "--workers", str(workers)],
            data_dir / "bare.log",
        )  # fmt: skip
        running.callback(_stop, bare, "bare FastAPI")
        servers = []
        for name, process, port in (("postmeister", ours, ours_port), ("bare", bare, bare_port)):
            base = f"https://{LOOPBACK}:{port}"
            _wait_until_serving(process, f"{base}/openapi.json", cert, name)
            servers.append(Server(name, base, cert, process.pid))
        yield servers[0], servers[1]


@contextmanager
def dataplane(database_url: str, root: Path) -> Iterator[dict[str, Any]]:
    """A private Postfix + Dovecot + milter reading `database_url` (needs root)."""
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(root / "data"),
        "POSTMEISTER_DATABASE_URL": database_url,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "postmeister.cli.dataplane",
                *args,
                "--dir",
                str(root / "stack"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 (postfix, dovecot and vmail must enter it)
    started = cli("up")
    if started.returncode != 0:
        raise RuntimeError(f"dataplane up failed: {started.stderr.strip()}")
    try:
        yield dict(json.loads(started.stdout.strip().splitlines()[-1]))
    finally:
        stopped = cli("down")
        if stopped.returncode != 0:
            log(f"dataplane down failed: {stopped.stderr.strip()}")

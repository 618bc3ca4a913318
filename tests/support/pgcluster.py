"""A private, throwaway PostgreSQL cluster that a test can stop and start.

initdb as the postgres user, on its own loopback port, trust authentication, no fsync: so
that stopping it disturbs nothing else on the machine. Stopped by the pid in its own
postmaster.pid, never by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support.processes import alive


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert candidates, f"{name} not found: install postgresql"
    return str(candidates[-1])


class PrivateCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "pgdata"
        self.port = port
        self.log = root / "postgres.log"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def init(self) -> None:
        postgres = pwd.getpwnam("postgres")
        self.data.parent.mkdir(exist_ok=True)
        os.chown(self.data.parent, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres(pg_tool("initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-o", options, "-w", "start")  # fmt: skip

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown through the postmaster's own pid; waits until it is gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not alive(pid):
                break
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postmeister"

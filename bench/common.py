"""What every benchmark shares: scratch databases, child processes, percentiles, the machine.

Nothing here measures anything by itself. Benchmarks are not tests: they never assert a time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")
Json = dict[str, Any]


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr, with the seconds since start; stdout carries only results."""
    print(f"{time.monotonic() - _STARTED:7.1f}s {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- databases


def pg_admin_url() -> str:
    """The PostgreSQL server to create scratch databases on (the tests' variable)."""
    return os.environ.get("POSTMEISTER_TEST_PG_URL", DEFAULT_PG)


def ensure_postgres() -> None:
    """Without POSTMEISTER_TEST_PG_URL, let scripts/ensure-postgres find or start a server
    (it prints its URL), and pass it on to every child process through the environment."""
    if "POSTMEISTER_TEST_PG_URL" not in os.environ:
        found = subprocess.run(
            [str(ROOT / "scripts" / "ensure-postgres")],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        os.environ["POSTMEISTER_TEST_PG_URL"] = found.stdout.strip()


@dataclass
class Database:
    """A migrated scratch database; `drop()` removes it."""

    backend: str
    url: str
    _drop: Callable[[], None] | None = field(default=None, repr=False)

    def drop(self) -> None:
        if self._drop is not None:
            self._drop()
            self._drop = None


def create_database(
    backend: str, directory: Path, label: str, *, migrated: bool = True
) -> Database:
    """An empty database: an SQLite file in `directory`, or a new PostgreSQL database."""
    from postmeister.db import make_engine
    from postmeister.store import migrate

    if backend == "sqlite":
        path = directory / f"{label}.sqlite3"
        database = Database(backend, f"sqlite:///{path}")
    else:
        admin = make_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
        name = f"pm_bench_{label}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        database = Database(backend, url, drop)
    if migrated:
        try:
            migrate(database.url)
        except BaseException:
            database.drop()
            raise
    return database


@contextmanager
def scratch_database(backend: str, directory: Path, label: str) -> Iterator[Database]:
    database = create_database(backend, directory, label)
    try:
        yield database
    finally:
        database.drop()


@contextmanager
def shared_workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory under /tmp that Postfix, Dovecot and vmail may traverse (0755):
    the data plane reads an SQLite database from there. BENCH_KEEP_WORKDIR=1 keeps it (logs
    of the servers and the data plane, for a look after a run)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)  # noqa: S103 (the mail servers' users must enter it)
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP_WORKDIR"):
            log(f"kept {path} (BENCH_KEEP_WORKDIR)")
        else:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------- processes


def own_peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB.

    Not `ru_maxrss`: on Linux a child started with (v)fork + exec inherits its parent's
    high-water mark there, so a child of a large parent would report the parent's size.
    VmHWM belongs to the address space, which exec replaces, so it is the child's own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_child(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[Json, float]:
    """Run `python -m module args`; return the JSON it prints and its peak RSS in MiB.

    Anything whose memory we report runs in a process of its own and reports its own peak
    (`own_peak_rss_mib()`) as `peak_rss_mib` in that JSON.
    """
    result = subprocess.run(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, cwd=ROOT, env=env,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed with exit code {result.returncode}")
    measured: Json = json.loads(result.stdout)
    return measured, float(measured.pop("peak_rss_mib"))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> Json:
    """p50/p99/max in milliseconds of a list of durations in seconds."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else None,
    }


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


# ---------------------------------------------------------------------------- the machine


def _first_line(command: Sequence[str]) -> str | None:
    try:
        result = subprocess.run(
            list(command), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _postgres_version() -> str | None:
    from postmeister.db import make_engine

    try:
        engine = make_engine(pg_admin_url())
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception:  # reported as unknown; the run goes on
        return None
    return str(version)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine_info() -> Json:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres_version(),
        # The package's version: `postconf` needs a main.cf, which a fresh machine lacks.
        "postfix": _first_line(["dpkg-query", "-W", "-f=${Version}", "postfix"]),
        "dovecot": _first_line(["dovecot", "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
        "load_average_at_start": load_average(),
    }

"""Where the time goes: py-spy sampling profiles of the server while wrk drives one operation.

py-spy samples the running `postmeister serve` from outside (no code change, no
instrumentation bias), RATE times a second. Two views of the same operation:

- work: one client connection, so one request at a time and nothing queues. py-spy keeps
  only threads that are running (not waiting on a socket, a lock or the database), so the
  shares are shares of the work one request costs. `busy_percent` = samples ÷ (RATE ×
  seconds): the part of the wall time the server was running at all.
- under load: `connections` clients at once, as in the throughput figures, with idle threads
  included, but only the stacks inside Postmeister's request code (a frame of
  `postmeister/api/`, that is a route or the token check, both run in the thread pool). The
  shares are shares of the wall time requests spend in their handlers, waiting included:
  for a lock, for the database, for the GIL.

Each sample's innermost frame is put in a category by its file (argon2, SQLAlchemy, the
database driver, pydantic, FastAPI/Starlette, uvicorn, TLS, Postmeister's own code, ...), and
for Postmeister's own functions the inclusive share is counted (a sample counts once for
every function on its stack). The server's whole CPU time per request comes from /proc.

py-spy is a development tool (`py-spy` on PyPI); without it the profile is skipped.
(`--gil` would be the natural filter for a one-process Python server, but on this machine
py-spy attributed the GIL to several threads per sample, so it is not used.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import Json, log, process_cpu_seconds
from bench.http_load import Operation, run_wrk
from bench.servers import Server

RATE = 200
VIEWS = ("work", "under_load")
REQUEST_CODE = "/postmeister/api/"
# Innermost frames that are waits even when py-spy counts the thread as running (it does for
# thread-pool workers waiting for work, and for the event loop waiting for sockets).
WAITS = ("Condition.wait (", "Event.wait (", "EpollSelector.select (")
# First match wins: (marker in the file path, category).
CATEGORIES = (
    ("/argon2/", "argon2 (password hashing)"),
    ("_cffi", "argon2 (password hashing)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/psycopg", "database driver (psycopg)"),
    ("/sqlite3/", "database driver (sqlite3)"),
    ("/pydantic", "pydantic"),
    ("/fastapi/", "FastAPI + Starlette"),
    ("/starlette/", "FastAPI + Starlette"),
    ("/uvicorn/", "uvicorn + h11 (HTTP)"),
    ("/h11/", "uvicorn + h11 (HTTP)"),
    ("/httptools/", "uvicorn + h11 (HTTP)"),
    ("/ssl.py", "TLS (ssl)"),
    ("/logging/", "logging (access log)"),
    ("/asyncio/", "asyncio event loop"),
    ("/selectors.py", "asyncio event loop"),
    ("/anyio/", "thread pool hand-off (anyio, threading)"),
    ("/threading.py", "thread pool hand-off (anyio, threading)"),
    ("/concurrent/", "thread pool hand-off (anyio, threading)"),
    ("/postmeister/", "Postmeister (own frames)"),
    ("/json/", "json"),
    ("/email_validator/", "email-validator / idna"),
    ("/idna/", "email-validator / idna"),
)


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def _category(frame: str) -> str:
    for marker, name in CATEGORIES:
        if marker in frame:
            return name
    return "other (stdlib, ...)"


def _function(frame: str) -> tuple[str, str]:
    """`name (path)` → (name, path)."""
    name, _, rest = frame.partition(" (")
    return name, rest.rstrip(")")


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].split("/src/")[-1].split("/lib/python3.11/")[-1]


def summarize(raw: str, *, only_request_code: bool, top: int = 12) -> Json:
    """Shares (percent of the samples kept) by category of the innermost frame, by innermost
    function, and by Postmeister function inclusively.

    The work view (`only_request_code=False`) drops samples whose innermost frame is a wait
    (WAITS); the request-code view keeps them, since there waiting is what it measures.
    """
    samples = 0
    waits = 0
    by_category: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames or (only_request_code and not any(REQUEST_CODE in f for f in frames)):
            continue
        leaf = frames[-1]
        if not only_request_code and leaf.startswith(WAITS):
            waits += count
            continue
        samples += count
        by_category[_category(leaf)] += count
        name, path = _function(leaf)
        leaves[f"{name} ({_short(path)})"] += count
        seen = set()
        for frame in frames:
            name, path = _function(frame)
            if "/postmeister/" in path:
                module = path.split("/postmeister/", 1)[1].removesuffix(".py").replace("/", ".")
                key = f"{module}.{name}"
                if key not in seen:
                    seen.add(key)
                    ours[key] += count

    def shares(counter: Counter[str]) -> list[list[object]]:
        total = samples or 1
        return [[key, round(100 * n / total, 1)] for key, n in counter.most_common(top)]

    return {
        "samples": samples,
        "wait_samples_dropped": waits,
        "by_category_percent": shares(by_category),
        "postmeister_inclusive_percent": shares(ours),
        "top_leaf_functions_percent": shares(leaves),
    }


def _record(
    tool: str,
    *,
    server: Server,
    operation: Operation,
    token: str,
    variables: dict[str, int | str],
    seconds: int,
    connections: int,
    idle: bool,
) -> Json:
    """Drive the server with wrk and record `seconds` of samples in the middle of it."""
    with tempfile.TemporaryDirectory(prefix="pm-bench-profile-") as tmp:
        output = Path(tmp) / "profile.txt"
        load: dict[str, Json] = {}

        def drive() -> None:
            load["figures"] = run_wrk(
                server.base_url,
                operation,
                token=token,
                variables=variables,
                seconds=seconds + 2,
                connections=connections,
            )

        driver = threading.Thread(target=drive)
        driver.start()
        time.sleep(1)  # past the connection set-up
        cpu_before = process_cpu_seconds(server.pid)
        wall_before = time.perf_counter()
        command = [
            tool, "record", "--pid", str(server.pid), "--duration", str(seconds),
            "--rate", str(RATE), "--format", "raw", "--full-filenames", "--nolineno",
            "--output", str(output),
        ]  # fmt: skip
        if idle:
            command.append("--idle")
        recorded = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        cpu = process_cpu_seconds(server.pid) - cpu_before
        wall = time.perf_counter() - wall_before
        driver.join()
        if recorded.returncode != 0 or not output.exists():
            log(f"py-spy failed: {recorded.stderr.strip()[:500]}")
            return {"skipped": f"py-spy failed: {recorded.stderr.strip()[:200]}"}
        summary = summarize(output.read_text(), only_request_code=idle)
    figures = load.get("figures") or {}
    rps = figures.get("rps")
    summary.update(
        connections=connections,
        load_during_profile=figures,
        server_cpu_percent_of_one_core=round(100 * cpu / wall, 1),
        server_cpu_ms_per_request=round(1000 * cpu / wall / rps, 2) if rps else None,
    )
    if not idle:
        summary["busy_percent"] = round(100 * summary["samples"] / (RATE * seconds), 1)
    return summary


def profile(
    *,
    server: Server,
    operation: Operation,
    token: str,
    variables: dict[str, int | str],
    seconds: int,
    connections: int,
    views: tuple[str, ...] = VIEWS,
) -> Json:
    tool = py_spy()
    if tool is None:
        return {"skipped": "py-spy is not installed (dev dependency)"}
    found: Json = {"seconds": seconds, "rate_hz": RATE, "argon2_ms_per_hash": argon2_ms_per_hash()}
    for name, clients, idle in (("work", 1, False), ("under_load", connections, True)):
        if name not in views:
            continue
        found[name] = _record(
            tool,
            server=server,
            operation=operation,
            token=token,
            variables=variables,
            seconds=seconds,
            connections=clients,
            idle=idle,
        )
    return found


def argon2_ms_per_hash(times: int = 10) -> float:
    """The median time of one argon2id hash with the default parameters, in this process."""
    from postmeister.config import PasswordSettings
    from postmeister.domain.passwords.hashing import PasswordHashing

    hashing = PasswordHashing(PasswordSettings())
    took = []
    for _ in range(times):
        started = time.perf_counter()
        hashing.hash("Bench-Orbit-Lantern-Pepper-58")
        took.append(time.perf_counter() - started)
    return round(1000 * sorted(took)[times // 2], 1)

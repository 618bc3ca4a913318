"""Drive a server with `wrk` (a C load generator; Debian package `wrk`) and read its figures.

Why wrk and not a Python client: the machine has two cores, and a Python HTTPS client spends
about as much CPU per request as a small endpoint, which would understate the bare baseline
most and bend the ratio. wrk costs a few microseconds per request. It keeps `connections`
HTTP/1.1 keep-alive connections busy (closed loop), so latency is measured under that load.

Requests vary per call (random address, random page, unique new names); the Lua script that
makes them is generated here. wrk's own `done` hook prints the figures as one JSON line.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import Json

WRK_THREADS = 1  # one client thread is plenty for one Python server process; leaves it a core

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class Operation:
    """One kind of request, as a Lua `request` function body (returns wrk.format(...))."""

    name: str
    method: str
    lua: str
    content_type: str | None = None
    accept: str | None = None


def lua_script(operation: Operation, *, token: str | None, variables: dict[str, int | str]) -> str:
    lines = [f"math.randomseed({random.randrange(1, 2**31)})"]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if operation.content_type:
        lines.append(f'wrk.headers["Content-Type"] = "{operation.content_type}"')
    if operation.accept:
        lines.append(f'wrk.headers["Accept"] = "{operation.accept}"')
    for name, value in variables.items():
        lines.append(f"local {name} = {json.dumps(value)}")
    lines.append("local counter = 0")
    lines.append('local function dom(d) return string.format("d%05d.bench.example", d) end')
    lines.append("request = function()\n  counter = counter + 1\n" + operation.lua + "\nend")
    return "\n".join(lines) + "\n" + _DONE


def run_wrk(
    base_url: str,
    operation: Operation,
    *,
    token: str | None,
    variables: dict[str, int | str],
    seconds: int,
    connections: int,
) -> Json:
    """One closed-loop run; returns requests/s, p50/p99 in ms, and error counts."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: run bench/setup (or apt-get install wrk)")
    variables = {**variables, "tag": uuid.uuid4().hex[:8]}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(operation, token=token, variables=variables))
    try:
        result = subprocess.run(
            [
                "wrk",
                f"-t{WRK_THREADS}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr.strip() or result.stdout.strip()}")
    figures: Json = json.loads(
        [line for line in result.stdout.splitlines() if line.startswith("{")][-1]
    )
    duration = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": figures["requests"],
        "seconds": round(duration, 2),
        "rps": round(figures["requests"] / duration, 1) if duration else 0.0,
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "mean_ms": round(figures["mean_us"] / 1000, 2),
        "errors": errors,
        "connections": connections,
    }

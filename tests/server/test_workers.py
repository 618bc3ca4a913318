"""`postmeister serve` with several worker processes (issue 16): the workers share one
port, `/metrics` adds up what every worker counted, a daily job still runs once however
many workers tick, and a supervisor killed outright takes its workers with it."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from postmeister.server import listening_socket
from tests.support.processes import BIN, alive, free_port, stop, wait_for_port

WORKERS = 2


def children_of(pid: int) -> set[int]:
    """The processes whose parent is `pid` (the test's own server: found by its id)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def wait_for(predicate: object, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s: {predicate}")


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with these labels in a scrape."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(tmp_path / "data"),
        "POSTMEISTER_DATABASE_URL": database_url,
        "POSTMEISTER_SCHEDULER__TICK_SECONDS": "0.2",
        "POSTMEISTER_LOGGING__FILE": str(tmp_path / "serve.log"),
    }
    process = subprocess.Popen(
        [str(BIN / "postmeister"), "serve", "--port", str(port), "--workers", str(WORKERS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, process=process)
        assert process.stdout is not None
        line = ""
        while "bootstrap admin token" not in line:
            line = process.stdout.readline()
            assert line, "serve ended without printing the bootstrap token"
        yield process, f"https://127.0.0.1:{port}", line.rsplit(" ", 1)[1].strip()
    finally:
        stop(process)


def test_workers_share_the_port_and_metrics_and_a_daily_job_runs_once(
    server: tuple[subprocess.Popen[str], str, str], tmp_path: Path
) -> None:
    process, url, token = server
    wait_for(lambda: len(children_of(process.pid)) >= WORKERS)
    trust = ssl.create_default_context(cafile=tmp_path / "data" / "tls" / "cert.pem")
    admin = {"Authorization": f"Bearer {token}"}
    for _ in range(40):  # a new connection each: the kernel hands them to either worker
        with httpx.Client(base_url=url, verify=trust, timeout=30) as client:
            listed = client.get("/mail/account/?page_size=17", headers=admin)
            assert listed.status_code == 200, listed.text
    time.sleep(2)  # ten ticks of each worker's scheduler
    with httpx.Client(base_url=url, verify=trust, timeout=30) as client:
        scrape = client.get("/metrics", headers=admin)
    assert scrape.status_code == 200
    text = scrape.text
    requests = samples(text, "postmeister_http_requests_total", route="/mail/account/")
    assert requests == 40
    job = "autoresponder-dates"  # daily: due once, at the first tick after start
    assert samples(text, "postmeister_scheduler_job_runs_total", job=job, outcome="ran") == 1
    others = samples(text, "postmeister_scheduler_job_runs_total", job=job, outcome="not-due")
    others += samples(text, "postmeister_scheduler_job_runs_total", job=job, outcome="locked")
    assert others >= 10
    assert "postmeister_build_info" in text
    log = (tmp_path / "serve.log").read_text()
    assert log.count("job autoresponder-dates ran") == 1
    # One access line per request, Postmeister's, without the query (uvicorn's own line
    # would be a second one, with it).
    assert log.count('"GET /mail/account/ 200"') == 40
    assert "uvicorn.access" not in log and "page_size" not in log


def test_a_killed_supervisor_takes_its_workers_with_it(
    server: tuple[subprocess.Popen[str], str, str],
) -> None:
    process = server[0]
    wait_for(lambda: len(children_of(process.pid)) >= WORKERS)
    workers = children_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)


def test_connections_to_the_shared_socket_do_not_wait_for_delayed_acks() -> None:
    """Nagle's algorithm is off on every accepted connection: with it on, a response of two
    TLS records waited ~40 ms for the client's delayed ACK (issue 16's 44 ms trap)."""
    listener = listening_socket("127.0.0.1", 0)
    try:
        listener.listen()
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()

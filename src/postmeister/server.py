"""`postmeister serve`: migrations, first-start bootstrap, then uvicorn over HTTPS.

With more than one worker process (`http.workers`, default one per core) uvicorn's
supervisor starts each worker as a fresh interpreter that builds its app with
`worker_app`, from the parent's settings passed in the environment: the settings a worker
serves with are exactly the parent's, command-line overrides included. The workers share
the listening socket; their metrics are added up through a shared folder
(`postmeister.ops.metrics`).

Logging goes through `postmeister.ops.logs` (JSON lines by default); uvicorn's own access
log is off, the controller writes its own access line with the request id
(`postmeister.api.observe`)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import tempfile
from typing import Any

import click
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory, unit_of_work
from postmeister.domain.tokens.service import any_token_exists, create_token
from postmeister.ops import metrics
from postmeister.ops.logs import configure_logging
from postmeister.store import create_data_dir, migrate
from postmeister.tls import ensure_self_signed, fingerprint

log = logging.getLogger("postmeister")

# The parent's settings as JSON, for the worker processes. The environment of a process is
# readable by its own user only, like the environment the settings came from.
SETTINGS_VARIABLE = "POSTMEISTER_SERVE_SETTINGS_JSON"
SUPERVISOR_VARIABLE = "POSTMEISTER_SERVE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_count(settings: Settings) -> int:
    """The configured worker processes, or one per core this process may run on."""
    return settings.http.workers or len(os.sched_getaffinity(0)) or 1


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the worker processes share, with Nagle's algorithm off.

    uvicorn's own (`Config.bind_socket`) is made without naming the protocol, and asyncio
    turns Nagle off only for connections of a socket that names TCP; without it, a response
    written as more than one TLS record waits for the client's delayed ACK: about 40 ms on
    every request (issue 16 measured 44 ms, bench/workers.py shows it). Linux hands
    TCP_NODELAY on from the listening socket to every accepted connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run_workers(app: str, *, workers: int, **options: Any) -> None:
    """uvicorn's supervisor over `workers` processes that build their app from the factory
    `app` ("module:function") and share `listening_socket`. Returns when stopped."""
    config = uvicorn.Config(app, factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[listening_socket(config.host, config.port)]).run()


def _die_with_supervisor(supervisor_pid: int) -> None:
    """Have the kernel kill this worker when the supervisor dies.

    uvicorn's supervisor stops its workers when it is stopped, but a supervisor killed
    outright (SIGKILL, the OOM killer) would leave them serving on the shared socket with
    nobody to restart or stop them. A killed `postmeister serve` takes its workers with it,
    as a killed single process does; what it had not done yet (webhook deliveries, jobs) is
    in the database and done after the restart."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor_pid:  # it died before the line above
        os._exit(1)


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory, see the module docstring)."""
    _die_with_supervisor(int(os.environ[SUPERVISOR_VARIABLE]))
    settings = Settings.model_validate_json(os.environ[SETTINGS_VARIABLE])
    configure_logging(settings.logging)
    return create_app(settings)


def bootstrap_admin_token(settings: Settings) -> str | None:
    """On a database without any token, create one admin token and return its secret."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            if any_token_exists(session):
                return None
            return create_token(session, admin=True, label="bootstrap").secret
    finally:
        engine.dispose()


def run(settings: Settings) -> None:
    configure_logging(settings.logging)
    create_data_dir(settings.data_dir)
    migrate(settings.resolved_database_url)
    secret = bootstrap_admin_token(settings)
    if secret is not None:
        # Printed once to the operator's terminal, never logged: it is not stored anywhere.
        click.echo(f"bootstrap admin token (shown once, store it now): {secret}")
    http = settings.http
    ssl: dict[str, str] = {}
    if not http.behind_tls_proxy:
        if http.tls_cert_file and http.tls_key_file:
            cert, key = http.tls_cert_file, http.tls_key_file
        else:
            cert, key, created = ensure_self_signed(settings.data_dir / "tls")
            verb = "created" if created else "using"
            click.echo(f"{verb} self-signed certificate {cert} (SHA-256 {fingerprint(cert)})")
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    scheme = "http (behind a TLS proxy)" if http.behind_tls_proxy else "https"
    workers = worker_count(settings)
    click.echo(
        f"serving {scheme} on {http.host}:{http.port} with {workers} worker process(es)", err=True
    )
    options: dict[str, Any] = {
        "host": http.host,
        "port": http.port,
        "log_level": settings.logging.level.lower(),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        **ssl,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # A fresh folder per start: the library's multiprocess files must not outlive the
    # processes that wrote them (old counters would be added to the new ones).
    with tempfile.TemporaryDirectory(prefix="postmeister-metrics-") as metrics_dir:
        os.environ[metrics.MULTIPROCESS_DIR] = metrics_dir
        os.environ[SETTINGS_VARIABLE] = settings.model_dump_json()
        os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())
        run_workers("postmeister.server:worker_app", workers=workers, **options)

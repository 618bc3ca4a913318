"""Web interface test helpers shared by the HTTP tests and the browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.web_users import service as web_users
from postmeister.tls import ensure_self_signed


def make_web_user(
    sessions: sessionmaker[Session],
    settings: Settings,
    email: str,
    *,
    customer_id: int | None = None,
    admin: bool = False,
) -> tuple[str, str]:
    """A web user through the service the CLI uses; its email and generated password."""
    with unit_of_work(sessions) as session:
        issued = web_users.create_user(
            session, email=email, passwords=Passwords(settings.passwords),
            customer_id=customer_id, admin=admin,
        )  # fmt: skip
        return issued.user.email, issued.password


@contextmanager
def https_in_thread(app: Any, port: int, tls_dir: Path, *, name: str) -> Iterator[None]:
    """`app` over HTTPS on 127.0.0.1:`port` in a thread of this process, with a self-signed
    certificate made in `tls_dir`; stopped by `should_exit` when the block ends (no process
    to kill)."""
    cert, key, _ = ensure_self_signed(tls_dir)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ssl_certfile=str(cert),
        ssl_keyfile=str(key), log_config=None, access_log=False, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)

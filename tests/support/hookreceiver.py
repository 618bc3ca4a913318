"""A real HTTPS webhook receiver on 127.0.0.1 that records every POST it gets.

`statuses` is what it answers, in turn (the last one repeats; default 204). Started and
stopped by the fixture that uses it (`tests/webhooks/conftest.py`), through its own handle.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [204])
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        state = self.server.state
        with state.arrived:
            state.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            state.arrived.notify_all()
        answer = b"" if status == 204 else f"answer {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on what was received instead."""


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.context = context
        self.state = _State()

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early are expected here."""

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def answer(self, *statuses: int) -> None:
        with self.state.lock:
            self.state.statuses = list(statuses)

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self.state.arrived:
            self.state.arrived.wait_for(lambda: len(self.state.received) >= count, timeout)
            return list(self.state.received)


@contextmanager
def receiving(context: ssl.SSLContext, port: int = 0) -> Iterator[Receiver]:
    """A running receiver for the block; stopped (its own thread, its own socket) after."""
    receiver = Receiver(context, port)
    thread = threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=10)

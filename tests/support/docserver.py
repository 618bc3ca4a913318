"""A real HTTPS server on 127.0.0.1 serving Basic JSON documents from a route table.

Started and stopped by the tests that use it (fixtures in tests/sync/conftest.py).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCUMENT = b'{"example.com": {"account": [], "alias": []}}\n'


@dataclass
class Reply:
    """What the test server answers for one path."""

    status: int = 200
    body: bytes = DOCUMENT
    headers: dict[str, str] = field(default_factory=dict)
    # False: no Content-Length; the body ends when the connection closes.
    content_length: bool = True
    delay: float = 0.0  # before the status line
    drip: float = 0.0  # between body pieces of 1 KiB


Route = Callable[[Message], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: DocumentServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers))
        route = self.server.routes.get(self.path.partition("?")[0])
        reply = route(self.headers) if route else Reply(status=404, body=b"not found\n")
        if reply.delay and self.server.stopping.wait(reply.delay):
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.content_length:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not reply.drip:
            self.wfile.write(reply.body)
            return
        for start in range(0, len(reply.body), 1024):
            self.wfile.write(reply.body[start : start + 1024])
            self.wfile.flush()
            if self.server.stopping.wait(reply.drip):
                return

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on what was requested instead."""


class DocumentServer(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 with a per-test route table; TLS per connection."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, Message]] = []
        self.stopping = threading.Event()

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        # The handshake runs in the connection's own thread, so a client that rejects the
        # certificate cannot stall the accept loop.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early (size limit, timeout) are expected here."""

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}{path}"

"""The milters' own metrics and status, over HTTP on their own listen address.

The milters are separate processes (`python -m postmeister.dataplane.milter`), so the
controller's `/metrics` cannot see them: each milter process serves, on the address in
`milter.json` (`"metrics"`, from `POSTMEISTER_DATAPLANE__MILTER_METRICS_ADDRESS`,
default 127.0.0.1:10033), plain HTTP without authentication:

- `GET /metrics`: the Prometheus text format, with
  `postmeister_milter_decisions_total{milter,result}`:
  - sender milter (`milter="sender"`): `accept`, `reject` (the header From is not the
    login's), `tempfail` (the database could not be read);
  - antispam milter (`milter="antispam"`): `clean` (delivered unmarked), `marked` (delivered
    as likely spam: `X-Spam: Yes`, maybe `[SPAM]`), `rejected` (550 as spam), `passed`
    (policy `none`, not scanned), `deferred` (a recipient of another policy, 452),
    `tempfail` (rspamd or the database unreachable);
- `GET /status`: whether this milter can read the contract views (one lookup), 200 with
  `{"reads_contract": true}` or 503 naming the error; `postmeister dataplane status` asks it.

It carries no addresses or other personal data, but keep it on loopback or a monitoring
network all the same.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, Counter, disable_created_metrics, generate_latest

# `*_created` series only double the output; counters' resets are what rate() handles.
disable_created_metrics()  # type: ignore[no-untyped-call]

DECISIONS: Final = Counter(
    "postmeister_milter_decisions", "Milter decisions by result", ["milter", "result"]
)

# The result names, declared so that every series exists (as 0) from the start.
SENDER_RESULTS: Final = ("accept", "reject", "tempfail")
ANTISPAM_RESULTS: Final = ("clean", "marked", "rejected", "passed", "deferred", "tempfail")


def decided(milter: str, result: str) -> None:
    DECISIONS.labels(milter, result).inc()


def declare(milter: str, results: tuple[str, ...]) -> None:
    for result in results:
        DECISIONS.labels(milter, result)


StatusCheck = Callable[[], None]  # raises when the contract views cannot be read


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._answer(200, CONTENT_TYPE_LATEST, generate_latest())
        elif self.path == "/status":
            try:
                self.server.check()
            except Exception as exc:
                body = {"reads_contract": False, "error": f"{type(exc).__name__}: {exc}"}
                self._answer(503, "application/json", json.dumps(body).encode())
            else:
                self._answer(200, "application/json", b'{"reads_contract": true}')
        else:
            self._answer(404, "text/plain", b"not found\n")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not worth a log line each."""


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], check: StatusCheck) -> None:
        self.check = check
        super().__init__(address, _Handler)


def start(address: tuple[str, int], check: StatusCheck) -> MetricsServer:
    """Serve in a daemon thread; stop with `shutdown()` and `server_close()`."""
    server = MetricsServer(address, check)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    ).start()
    return server

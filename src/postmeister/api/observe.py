"""Around every HTTP exchange: the request id, the access log line, the request metrics.

The request id comes from the client's `X-Request-ID` when it is acceptable (at most 128
characters of `A-Za-z0-9._:;=+/-`), otherwise it is generated; it is echoed in the response's
`X-Request-ID` and is on every log line of the request (`postmeister.ops.context`), so a
client's report ("request 3f2a… failed") leads to the controller's lines about it.

One access line per request (logger `postmeister.access`): method, path without the query,
route template, status, duration, the actor's token id. Nothing else of the request is
logged: no header, no query, no body. Successful health checks are logged at DEBUG only, so a
load balancer polling every second does not bury the log.

Outermost middleware: it sees the answers of `transport.Transport` (plain HTTP refused, body
too large) too.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmeister.ops import context, metrics

log = logging.getLogger("postmeister.access")

QUIET_PATHS: Final = frozenset({"/healthz", "/readyz"})


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-request-id"),
            None,
        )
        client = scope.get("client")
        request_context, token = context.begin(
            context.request_id_from(header), client_address=client[0] if client else None
        )
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = request_context.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            path = str(scope.get("path", ""))
            metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
            level = logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO
            log.log(
                level,
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    }
                },
            )
            context.end(token)

"""What every HTTP exchange gets before and after any route: HTTPS only, a body limit, and
the security headers of every response.

Requests:
- Plain HTTP is refused (403) unless `behind_tls_proxy` is set, and then it is accepted only
  for requests the proxy marks with `X-Forwarded-Proto: https`. The health probes
  (`/healthz`, `/readyz`) are the exception: they answer either way.
- A body over `max_body_bytes` is refused (413), by its Content-Length before it is read,
  and while it is read when it has none.

Responses, including refusals and errors:
- `X-Content-Type-Options: nosniff` on every one: no client may guess another type than the
  one sent (a JSON document read as HTML).
- `Cache-Control: no-store` on every one that sets no Cache-Control of its own. Generated
  passwords, new application passwords and new tokens are shown once, in one response; a
  copy in a browser or proxy cache would outlive that. Sending it on every response, rather
  than on the few that carry a secret, means a new route cannot forget it, and the other
  responses (password hashes in the controller dialect, addresses, personal data) have no
  business in a cache either. Only the static /docs assets set their own (public, cacheable).
- `Strict-Transport-Security: max-age=31536000` on every response to a request that came
  over HTTPS: directly, or through the TLS proxy as `X-Forwarded-Proto: https`. Never on
  a plain-HTTP exchange (RFC 6797 §7.2: a browser ignores it there, and it would be a lie),
  so not on the 403 that refuses plain HTTP. No `includeSubDomains`: the controller cannot
  know which other hosts share its parent domain. Browsers ignore the header while the
  certificate is not trusted (the generated self-signed one), so it cannot lock anyone out
  of a fresh install; it starts to count once the certificate is trusted.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmeister.api import dialects, errors

HSTS: Final = "max-age=31536000"
# Answered over plain HTTP too: a load balancer's health check carries no secret and gets
# none (`api/ops.py`).
PLAIN_HTTP_PATHS: Final = frozenset({"/healthz", "/readyz"})


class Transport:
    def __init__(self, app: ASGIApp, *, max_body: int, behind_tls_proxy: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.behind_tls_proxy = behind_tls_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        https = self._is_https(scope, headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["X-Content-Type-Options"] = "nosniff"
                if "cache-control" not in response_headers:
                    response_headers["Cache-Control"] = "no-store"
                if https:
                    response_headers["Strict-Transport-Security"] = HSTS
            await send(message)

        refusal: Exception | None = None
        length = headers.get("content-length", "")
        if not https and scope.get("path") not in PLAIN_HTTP_PATHS:
            refusal = errors.HttpsRequired()
        elif length.isdigit() and int(length) > self.max_body:
            refusal = errors.BodyTooLarge(self.max_body)
        if refusal is not None:
            response = dialects.render(refusal, Request(scope))
            await response(scope, receive, send_with_headers)
            return
        received = 0
        limit = self.max_body

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise errors.BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send_with_headers)

    def _is_https(self, scope: Scope, headers: dict[str, str]) -> bool:
        if scope.get("scheme") == "https":
            return True
        if self.behind_tls_proxy:
            return headers.get("x-forwarded-proto", "").lower() == "https"
        return False

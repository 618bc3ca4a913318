"""What every web page gets: security headers, the session cookie, CSRF and Origin checks.

- Every /ui response carries a Content-Security-Policy without inline script or style (the
  pages load only their own files), `Referrer-Policy: no-referrer` and `nosniff`; the
  transport middleware adds `Cache-Control: no-store` to every response that sets none.
- The session cookie is `Secure; HttpOnly; SameSite=Strict; Path=/ui`, and holds a random
  token whose SHA-256 alone is stored (`domain.web_users`).
- Every POST carries a CSRF token in a hidden field: an HMAC of the session token (nothing
  more to store), or, before login, a random value that must equal the `pm_form` cookie
  (double submit). A POST that `Sec-Fetch-Site` or `Origin` says comes from another
  site is refused either way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from fastapi import Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmeister.errors import DomainError

PREFIX: Final = "/ui"
SESSION_COOKIE: Final = "pm_session"
FORM_COOKIE: Final = "pm_form"
CSRF_FIELD: Final = "csrf"
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC_CACHE: Final = "public, max-age=3600"


class CsrfRejected(DomainError):
    """A POST without the right CSRF token, or from another site's page."""

    def __init__(self) -> None:
        super().__init__("the form is outdated or was sent from another site")


class LoginRequired(DomainError):
    """No live session of the kind this page needs: the answer is the login page."""

    def __init__(self, login_path: str = f"{PREFIX}/login") -> None:
        super().__init__("please log in")
        self.login_path = login_path


class WebHeaders:
    """Adds the web interface's security headers to every response under `PREFIX`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(PREFIX + "/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                if static and message.get("status") == 200:
                    headers["Cache-Control"] = STATIC_CACHE
            await send(message)

        await self.app(scope, receive, with_headers)


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path=PREFIX, secure=True, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=True, httponly=True,
                           samesite="strict")  # fmt: skip


def session_csrf(token: str) -> str:
    """The CSRF token of a session: bound to it, unguessable without the cookie."""
    return hmac.new(token.encode(), b"postmeister-web-csrf", hashlib.sha256).hexdigest()


def form_token(request: Request) -> tuple[str, bool]:
    """The anonymous forms' CSRF value, and whether the cookie must be set now."""
    current = request.cookies.get(FORM_COOKIE)
    if current and 20 <= len(current) <= 64:
        return current, False
    return secrets.token_urlsafe(24), True


def set_form_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        FORM_COOKIE, value, path=PREFIX, secure=True, httponly=True, samesite="strict"
    )


def check_origin(request: Request) -> None:
    """Refuse a POST that the browser says comes from another site. `Sec-Fetch-Site` is
    the browser's own verdict and sent whatever the referrer policy; `Origin` is checked
    when it names an origin (with `Referrer-Policy: no-referrer` browsers send `null` on
    form POSTs). A client that sends neither still needs the CSRF token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CsrfRejected()
    origin = request.headers.get("origin")
    if (
        origin is not None
        and origin != "null"
        and origin != f"https://{request.headers.get('host', '')}"
    ):
        raise CsrfRejected()


def check_csrf(request: Request, sent: str | None, expected: str | None) -> None:
    check_origin(request)
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfRejected()

"""Which dialect answers an error, and the exception handlers that make it answer.

The dialect is chosen by path prefix, in the static `DIALECTS` table; the controller dialect
answers everything else (including unknown routes). What each error means in HTTP is decided
once, in `errors.STATUS_TABLE`; a dialect only formats it. Every exception is handled here, so
that nothing, not even a bug, reaches a client as a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from postmeister.api import errors
from postmeister.api.controller import problems
from postmeister.api.hosting import errors as hosting
from postmeister.errors import DomainError


@dataclass(frozen=True)
class Dialect:
    prefix: str
    respond: Callable[[Exception, Request], Response]


CONTROLLER: Final = Dialect("/", problems.respond)
# Longest prefixes first; a request no prefix matches belongs to the controller dialect.
DIALECTS: Final[tuple[Dialect, ...]] = tuple(
    Dialect(prefix, hosting.respond)
    for prefix in (
        "/email-addresses",
        "/customers",
        "/packages",
        "/api-tokens",
        "/domains",
        "/audit-events",
        "/webhooks",
        "/mail-nodes",
    )
)


def _web(exc: Exception, request: Request) -> Response:
    # Imported on first use: the web layer's pages import the API's request plumbing.
    from postmeister.web.errors import respond

    return respond(exc, request)


# The web interface answers its own errors as HTML pages (`postmeister.web.errors`).
WEB: Final = Dialect("/ui", _web)


def dialect_for(path: str) -> Dialect:
    if path == WEB.prefix or path.startswith(WEB.prefix + "/"):
        return WEB
    for dialect in DIALECTS:
        if path == dialect.prefix or path.startswith(dialect.prefix + "/"):
            return dialect
    return CONTROLLER


def render(exc: Exception, request: Request) -> Response:
    return dialect_for(request.url.path).respond(exc, request)


def install(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> Response:
        return render(exc, request)

    # Every known class is registered by name: a handler for `Exception` alone would make
    # Starlette treat the error as a crash and re-raise it after answering.
    known: list[type[Exception]] = [
        DomainError,
        errors.RequestFault,
        OperationalError,
        HTTPException,
        RequestValidationError,
    ]
    for cls, _ in errors.STATUS_TABLE:
        if not any(issubclass(cls, registered) for registered in known):
            known.append(cls)
    for cls in (*known, Exception):
        app.add_exception_handler(cls, on_error)

"""Route every error to the format of the dialect the request belongs to.

Each dialect owns one error table for the errors it knows (domain errors, its own request
faults). This module only decides which dialect answers (by path prefix, in the static
`DIALECTS` table; the controller dialect answers everything else), and describes once the
failures no table knows — transport refusals, an unavailable database, unknown routes and
bugs — so that nothing, not even a bug, reaches a client as a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from postmeister.api.common import MalformedBody, UnsupportedMediaType
from postmeister.api.controller import problems
from postmeister.api.hosting import errors as hosting
from postmeister.errors import DomainError, FieldProblem, InvalidInput

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")


class HttpsRequired(Exception):
    pass


class FailureRenderer(Protocol):
    def __call__(
        self,
        request: Request,
        *,
        status: int,
        code: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response: ...


@dataclass(frozen=True)
class Dialect:
    prefix: str
    # The response for an error in the dialect's table, or None.
    error_response: Callable[[Exception, Request], Response | None]
    # The dialect's rendering of a failure described by `_failure`.
    failure_response: FailureRenderer
    # The exception classes of its table, registered as handlers.
    handles: tuple[type[Exception], ...]


def _validation_to_domain(exc: RequestValidationError) -> InvalidInput:
    return InvalidInput(
        [
            FieldProblem(".".join(str(p) for p in err["loc"][1:]) or "request", err["msg"])
            for err in exc.errors()
        ]
    )


def _controller_error(exc: Exception, request: Request) -> Response | None:
    if isinstance(exc, RequestValidationError):
        exc = _validation_to_domain(exc)
    return problems.problem_for(exc, instance=request.url.path)


def _controller_failure(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return problems.problem(
        status,
        code,
        title,
        detail,
        instance=request.url.path,
        headers=dict(headers) if headers else None,
    )


CONTROLLER: Final = Dialect(
    "/",
    _controller_error,
    _controller_failure,
    tuple(cls for cls, *_ in problems.ERROR_TABLE),
)
# Longest prefixes first; a request no prefix matches belongs to the controller dialect.
DIALECTS: Final[tuple[Dialect, ...]] = (
    Dialect(
        "/email-addresses",
        hosting.error_response,
        hosting.failure_response,
        tuple(cls for cls, *_ in hosting.ERROR_TABLE),
    ),
)


def dialect_for(path: str) -> Dialect:
    for dialect in DIALECTS:
        if path == dialect.prefix or path.startswith(dialect.prefix + "/"):
            return dialect
    return CONTROLLER


@dataclass(frozen=True)
class _Failure:
    status: int
    code: str
    title: str
    detail: str
    headers: Mapping[str, str] | None = None


def _failure(exc: Exception, request: Request) -> _Failure:
    if isinstance(exc, BodyTooLarge):
        return _Failure(413, "body-too-large", "Request body too large", str(exc))
    if isinstance(exc, HttpsRequired):
        return _Failure(
            403, "https-required", "HTTPS required", "this API is only served over HTTPS"
        )
    if isinstance(exc, OperationalError):
        # SQLite's busy timeout ran out or PostgreSQL is unreachable: retryable, not a bug.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return _Failure(
            503,
            "database-unavailable",
            "Database busy or unavailable",
            "the database could not serve the request in time; retry shortly",
            {"Retry-After": "1"},
        )
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = detail
        return _Failure(exc.status_code, code, title, detail, exc.headers)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _Failure(500, "internal", "Internal error", "the request could not be completed")


def render(exc: Exception, request: Request) -> Response:
    dialect = dialect_for(request.url.path)
    known = dialect.error_response(exc, request)
    if known is not None:
        return known
    failure = _failure(exc, request)
    return dialect.failure_response(
        request,
        status=failure.status,
        code=failure.code,
        title=failure.title,
        detail=failure.detail,
        headers=failure.headers,
    )


def install(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> Response:
        return render(exc, request)

    # Every class a table knows is registered by name: a handler for `Exception` alone
    # would make Starlette treat the error as a crash and re-raise it after answering.
    known: list[type[Exception]] = [
        DomainError,
        MalformedBody,
        UnsupportedMediaType,
        BodyTooLarge,
        HttpsRequired,
        HTTPException,
        RequestValidationError,
    ]
    for dialect in (CONTROLLER, *DIALECTS):
        known.extend(cls for cls in dialect.handles if cls not in known)
    for cls in (*known, Exception):
        app.add_exception_handler(cls, on_error)

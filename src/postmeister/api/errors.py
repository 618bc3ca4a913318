"""Route every error to the format of the dialect the request belongs to.

Each dialect owns one error table; this module only decides which one answers, and makes
sure that nothing — not even a bug — reaches a client as a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from postmeister.api.common import MalformedBody, UnsupportedMediaType
from postmeister.api.controller import problems
from postmeister.errors import DomainError, FieldProblem, InvalidInput

log = logging.getLogger(__name__)

# (path prefix, renderer) — a renderer returns None for exceptions it does not know.
ErrorRenderer = Callable[[Exception, Request], Response | None]
_DIALECTS: list[tuple[str, ErrorRenderer]] = []


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")


class HttpsRequired(Exception):
    pass


def register_dialect(prefix: str, renderer: ErrorRenderer) -> None:
    _DIALECTS.append((prefix, renderer))


def _controller(exc: Exception, request: Request) -> Response:
    instance = request.url.path
    answer = problems.problem_for(exc, instance=instance)
    if answer is not None:
        return answer
    if isinstance(exc, BodyTooLarge):
        return problems.problem(413, "body-too-large", "Request body too large", str(exc))
    if isinstance(exc, HttpsRequired):
        return problems.problem(
            403, "https-required", "HTTPS required", "this API is only served over HTTPS"
        )
    if isinstance(exc, OperationalError):
        # SQLite's busy timeout ran out or PostgreSQL is unreachable: retryable, not a bug.
        log.warning("database unavailable on %s %s: %s", request.method, instance, exc.orig)
        return problems.problem(
            503,
            "database-unavailable",
            "Database busy or unavailable",
            "the database could not serve the request in time; retry shortly",
            instance=instance,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problems.problem(
            exc.status_code,
            slug,
            detail,
            detail,
            instance=instance,
            headers=dict(exc.headers or {}) or None,
        )
    log.exception("unhandled error on %s %s", request.method, instance)
    return problems.problem(500, "internal", "Internal error", "the request could not be completed")


def render(exc: Exception, request: Request) -> Response:
    for prefix, renderer in _DIALECTS:
        if request.url.path.startswith(prefix):
            answer = renderer(exc, request)
            if answer is not None:
                return answer
    return _controller(exc, request)


def _validation_to_domain(exc: RequestValidationError) -> InvalidInput:
    return InvalidInput(
        [
            FieldProblem(".".join(str(p) for p in err["loc"][1:]) or "request", err["msg"])
            for err in exc.errors()
        ]
    )


def install(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            exc = _validation_to_domain(exc)
        return render(exc, request)

    for cls in (
        DomainError,
        MalformedBody,
        UnsupportedMediaType,
        BodyTooLarge,
        HttpsRequired,
        HTTPException,
        RequestValidationError,
        Exception,
    ):
        app.add_exception_handler(cls, on_error)

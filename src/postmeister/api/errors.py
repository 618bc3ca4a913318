"""The one table from every error to an HTTP status; each dialect only formats what it says.

`describe()` turns any exception into a `Failure`: status, a stable code, a title, a detail
a person can act on, the headers the status needs and, for broken rules, the field problems.
The controller dialect formats a `Failure` as an RFC 9457 problem document
(`controller/problems.py`), the hosting dialect as a JSON:API error document
(`hosting/errors.py`). Neither decides a status of its own for anything in the table.

The table knows three kinds of error:
- domain errors (`postmeister.errors`), raised by the services;
- request faults, raised by this package before a service runs (the body is not JSON, the
  media type is wrong, a query parameter is unknown, a page does not exist);
- transport and infrastructure: a body over the limit, plain HTTP, a busy database.
Anything else is a bug: logged with its traceback, answered as a bare 500 that shows
nothing of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from postmeister.errors import (
    AlreadyExists,
    Conflict,
    FieldProblem,
    InvalidInput,
    LimitReached,
    ManagedBySync,
    NotFound,
    PasswordPolicyViolation,
    PermissionDenied,
    Unauthenticated,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- request faults


class RequestFault(Exception):
    """The request itself is unusable, before any rule is asked (an HTTP-level fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedBody(RequestFault):
    """The body cannot be read as the declared media type: not UTF-8, not JSON, nested too
    deeply, a number too long to convert, text no database can store."""


class UnsupportedMediaType(RequestFault):
    """The body's Content-Type is not one the route reads."""


class NotAcceptable(RequestFault):
    """The Accept header allows nothing the route answers with."""


class InvalidQueryParameter(RequestFault):
    """A query parameter is unknown, malformed or contradicts another one."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class InvalidPage(RequestFault):
    """A numbered page (`?page=`) that is not a positive integer or lies past the last page:
    answered 404 with Django REST Framework's "Invalid page.", as the clients of the original
    controller expect."""

    def __init__(self) -> None:
        super().__init__("Invalid page.")


class DocumentMismatch(RequestFault):
    """The document's `type` or `id` does not match the endpoint (a JSON:API 409)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer


class BodyTooLarge(RequestFault):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")


class HttpsRequired(RequestFault):
    def __init__(self) -> None:
        super().__init__("this API is only served over HTTPS")


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Status:
    status: int
    code: str
    title: str
    headers: Mapping[str, str] = field(default_factory=dict)


_POLICY: Final = "Password does not meet the policy"
# Every scheme `common.token_from_authorization` reads, as RFC 9110 challenges.
WWW_AUTHENTICATE: Final = (
    'Bearer realm="postmeister", Basic realm="postmeister", charset="UTF-8", Token'
)

# Error class → what it means in HTTP. The first match wins, so subclasses come first.
STATUS_TABLE: Final[tuple[tuple[type[Exception], Status], ...]] = (
    (PasswordPolicyViolation, Status(422, "password-policy", _POLICY)),
    (InvalidInput, Status(422, "invalid-input", "Invalid input")),
    (NotFound, Status(404, "not-found", "Not found")),
    (AlreadyExists, Status(409, "already-exists", "Already exists")),
    (ManagedBySync, Status(409, "managed-by-sync", "Managed by a sync source")),
    (Conflict, Status(409, "conflict", "Conflict")),
    (PermissionDenied, Status(403, "forbidden", "Forbidden")),
    (
        Unauthenticated,
        Status(
            401,
            "unauthenticated",
            "Authentication required",
            {"WWW-Authenticate": WWW_AUTHENTICATE},
        ),
    ),
    (MalformedBody, Status(400, "malformed-body", "Malformed request body")),
    (InvalidQueryParameter, Status(400, "invalid-parameter", "Invalid query parameter")),
    (InvalidPage, Status(404, "invalid-page", "Invalid page")),
    (DocumentMismatch, Status(409, "document-mismatch", "Document does not match the endpoint")),
    (UnsupportedMediaType, Status(415, "unsupported-media-type", "Unsupported media type")),
    (NotAcceptable, Status(406, "not-acceptable", "Not acceptable")),
    (BodyTooLarge, Status(413, "body-too-large", "Request body too large")),
    (HttpsRequired, Status(403, "https-required", "HTTPS required")),
    # SQLite's busy timeout ran out or PostgreSQL is unreachable: retryable, not a bug.
    (
        OperationalError,
        Status(503, "database-unavailable", "Database busy or unavailable", {"Retry-After": "1"}),
    ),
)
_HTTP_CODES: Final = {404: "not-found", 405: "method-not-allowed"}
_BUG: Final = Status(500, "internal", "Internal error")


@dataclass(frozen=True)
class Failure:
    """What went wrong, in HTTP terms; `error` is the exception, for formatters that show
    more of it (a JSON:API error's `source`)."""

    status: int
    code: str
    title: str
    detail: str
    error: Exception
    headers: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[FieldProblem, ...] = ()


def validation_problems(exc: RequestValidationError) -> InvalidInput:
    """FastAPI's parameter validation as the field problems a service would have raised."""
    return InvalidInput(
        [
            FieldProblem(
                ".".join(str(part) for part in error["loc"][1:]) or "request", error["msg"]
            )
            for error in exc.errors()
        ]
    )


def _status_of(exc: Exception) -> Status | None:
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    return None


def describe(exc: Exception, request: Request) -> Failure:
    """The failure `exc` is, for either dialect to format."""
    if isinstance(exc, RequestValidationError):
        exc = validation_problems(exc)
    known = _status_of(exc)
    if known is not None:
        if isinstance(exc, OperationalError):
            log.warning(
                "database unavailable on %s %s: %s", request.method, request.url.path, exc.orig
            )
            detail = "the database could not serve the request in time; retry shortly"
        else:
            detail = getattr(exc, "message", None) or str(exc) or known.title
        problems = tuple(exc.problems) if isinstance(exc, InvalidInput | LimitReached) else ()
        return Failure(known.status, known.code, known.title, detail, exc, known.headers, problems)
    if isinstance(exc, HTTPException):
        # Starlette's own: unknown route, wrong method, an unreadable form.
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = detail
        code = _HTTP_CODES.get(exc.status_code, "http-error")
        return Failure(exc.status_code, code, title, detail, exc, exc.headers or {})
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Failure(_BUG.status, _BUG.code, _BUG.title, "the request could not be completed", exc)

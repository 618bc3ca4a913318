"""The controller dialect's one error table: domain errors → RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from postmeister.api.common import MalformedBody, UnsupportedMediaType
from postmeister.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    ManagedBySync,
    NotFound,
    PasswordPolicyViolation,
    PermissionDenied,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:postmeister:problem:"

# (exception class, HTTP status, problem type slug, title) — first match wins.
ERROR_TABLE: list[tuple[type[Exception], int, str, str]] = [
    (PasswordPolicyViolation, 422, "password-policy", "Password does not meet the policy"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (MalformedBody, 400, "malformed-body", "Malformed request body"),
    (UnsupportedMediaType, 415, "unsupported-media-type", "Unsupported media type"),
    (NotFound, 404, "not-found", "Not found"),
    (AlreadyExists, 409, "already-exists", "Already exists"),
    (ManagedBySync, 409, "managed-by-sync", "Managed by a sync source"),
    (Conflict, 409, "conflict", "Conflict"),
    (PermissionDenied, 403, "forbidden", "Forbidden"),
    (Unauthenticated, 401, "unauthenticated", "Authentication required"),
]


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: Exception, *, instance: str) -> JSONResponse | None:
    for cls, status, slug, title in ERROR_TABLE:
        if isinstance(exc, cls):
            errors = None
            if isinstance(exc, InvalidInput):
                errors = [
                    {"field": p.field, "message": p.message, **({"rule": p.rule} if p.rule else {})}
                    for p in exc.problems
                ]
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return problem(
                status, slug, title, str(exc), instance=instance, errors=errors, headers=headers
            )
    return None

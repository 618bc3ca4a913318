"""The controller dialect's error format: RFC 9457 problem details.

What each error means (status, code, title) is decided in `api/errors.py`; this module only
writes it down: `type` is `urn:postmeister:problem:` + the code, and a broken rule lists
every field problem under `errors`.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse

from postmeister.api.errors import Failure, describe

PROBLEM_JSON: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:postmeister:problem:"


def problem_document(failure: Failure, *, instance: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + failure.code,
        "title": failure.title,
        "status": failure.status,
        "detail": failure.detail,
        "instance": instance,
    }
    if failure.problems:
        body["errors"] = [
            {"field": p.field, "message": p.message, **({"rule": p.rule} if p.rule else {})}
            for p in failure.problems
        ]
    return body


def respond(exc: Exception, request: Request) -> JSONResponse:
    failure = describe(exc, request)
    return JSONResponse(
        problem_document(failure, instance=request.url.path),
        status_code=failure.status,
        media_type=PROBLEM_JSON,
        headers=dict(failure.headers) or None,
    )

"""The hosting dialect's one error table: every failure becomes a JSON:API error document.

Each error object has `status` (a string, as JSON:API asks), a stable `code` (for a broken
rule its name, such as `min_length`), a `title`, a `detail` a person can act on and, where
the fault lies in the request, a `source`: a JSON pointer into the document
(`/data/attributes/forward_to/1`) or the query `parameter`.

Two kinds of input fault are told apart:
- the document's *shape* (not JSON, no `data`, a wrong `type`, a string where a list
  belongs): reported by the pydantic models of `document.py` as FastAPI's
  `RequestValidationError`, translated by `_shape_error` below;
- its *values* (a taken address, a weak password): the services' `InvalidInput`, one error
  object per broken rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from postmeister.api.common import MalformedBody, UnsupportedMediaType
from postmeister.api.hosting.document import (
    DocumentMismatch,
    ErrorObject,
    ErrorSource,
    InvalidQueryParameter,
    error_document,
)
from postmeister.api.hosting.media import JsonApiResponse, NotAcceptable
from postmeister.errors import (
    AlreadyExists,
    Conflict,
    FieldProblem,
    InvalidInput,
    ManagedBySync,
    NotFound,
    PasswordPolicyViolation,
    PermissionDenied,
    Unauthenticated,
)

POLICY_TITLE: Final = "Password does not meet the policy"
# (exception class, HTTP status, code, title) — the first match wins, so subclasses first.
ERROR_TABLE: Final[tuple[tuple[type[Exception], int, str, str], ...]] = (
    (PasswordPolicyViolation, 422, "password-policy", POLICY_TITLE),
    (InvalidInput, 422, "invalid-attribute", "Invalid attribute value"),
    (InvalidQueryParameter, 400, "invalid-parameter", "Invalid query parameter"),
    (MalformedBody, 400, "malformed-body", "Malformed request body"),
    (DocumentMismatch, 409, "document-mismatch", "Document does not match the endpoint"),
    (UnsupportedMediaType, 415, "unsupported-media-type", "Unsupported media type"),
    (NotAcceptable, 406, "not-acceptable", "Not acceptable"),
    (NotFound, 404, "not-found", "Not found"),
    (AlreadyExists, 409, "already-exists", "Already exists"),
    (ManagedBySync, 409, "managed-by-sync", "Managed by a sync source"),
    (Conflict, 409, "conflict", "Conflict"),
    (PermissionDenied, 403, "forbidden", "Forbidden"),
    (Unauthenticated, 401, "unauthenticated", "Authentication required"),
)

# Attributes a response shows but no request may set.
READ_ONLY_ATTRIBUTES: Final = frozenset(
    {"address", "address_type", "domain", "package_id", "created_at", "updated_at"}
)
# Service field names that this dialect spells differently: the controller dialect's
# `name` and `domain` are parts of the hosting dialect's one `address`.
_ATTRIBUTE_FOR_FIELD: Final = {"name": "address", "domain": "address"}
_QUERY_FOR_FIELD: Final = {"domain": "filter[domain]", "address": "filter[address]"}
_FIELD_PARTS = re.compile(r"[^.\[\]]+")


def _pointer(parts: list[str] | tuple[Any, ...]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _takes_document(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and route.body_field is not None


def _problem_source(problem: FieldProblem, request: Request) -> tuple[str, ErrorSource | None]:
    """The name a client knows the field by, and where it was in the request."""
    parts = _FIELD_PARTS.findall(problem.field) or [problem.field]
    head = parts[0]
    if _takes_document(request):
        parts[0] = _ATTRIBUTE_FOR_FIELD.get(head, head)
        label = parts[0] + problem.field.removeprefix(head)
        return label, ErrorSource(pointer=_pointer(["data", "attributes", *parts]))
    if request.method == "GET" and head in _QUERY_FOR_FIELD:
        parameter = _QUERY_FOR_FIELD[head]
        return parameter, ErrorSource(parameter=parameter)
    # A value from the URL path, such as a forward target.
    return problem.field, None


def _objects(
    exc: Exception, status: int, code: str, title: str, request: Request
) -> list[ErrorObject]:
    if isinstance(exc, InvalidInput):
        objects = []
        for problem in exc.problems:
            label, source = _problem_source(problem, request)
            in_query = source is not None and source.parameter is not None
            objects.append(
                ErrorObject(
                    status="400" if in_query else str(status),
                    code=problem.rule or code,
                    title=(
                        "Invalid query parameter"
                        if in_query
                        else POLICY_TITLE
                        if problem.field == "password"
                        else title
                    ),
                    detail=f"{label}: {problem.message}",
                    **({"source": source} if source is not None else {}),
                )
            )
        return objects
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidQueryParameter):
        extra["source"] = ErrorSource(parameter=exc.parameter)
    elif isinstance(exc, DocumentMismatch):
        extra["source"] = ErrorSource(pointer=exc.pointer)
    detail = getattr(exc, "message", None) or str(exc) or title
    return [ErrorObject(status=str(status), code=code, title=title, detail=detail, **extra)]


def _shape_error(error: Mapping[str, Any]) -> ErrorObject:
    """One error of the document parser, classified the way JSON:API asks."""
    location = tuple(error["loc"])
    where, path = location[0], tuple(str(part) for part in location[1:])
    kind: str = error["type"]
    message: str = error["msg"]

    def made(status: int, code: str, title: str, detail: str, **source: str) -> ErrorObject:
        extra: dict[str, Any] = {"source": ErrorSource(**source)} if source else {}
        return ErrorObject(status=str(status), code=code, title=title, detail=detail, **extra)

    if where == "query":
        parameter = path[0] if path else "query"
        return made(
            400,
            "invalid-parameter",
            "Invalid query parameter",
            f"{parameter}: {message}",
            parameter=parameter,
        )
    if where != "body":
        return made(400, "bad-request", "Bad request", f"{'.'.join(path)}: {message}")
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", "invalid JSON")
        return made(
            400, "malformed-body", "Malformed request body", f"the body is not valid JSON: {reason}"
        )
    if not path:
        return made(
            400,
            "malformed-document",
            "Malformed request document",
            "this request needs a JSON:API document with a data member",
        )
    pointer = _pointer(path)
    if path[:2] == ("data", "attributes") and (len(path) > 2 or kind == "missing"):
        name = "/".join(path[2:]) or "attributes"
        if kind == "extra_forbidden":
            if len(path) == 3 and path[2] in READ_ONLY_ATTRIBUTES:
                return made(
                    422,
                    "read-only",
                    "Read-only attribute",
                    f"{name} cannot be changed",
                    pointer=pointer,
                )
            return made(
                422,
                "unknown-attribute",
                "Unknown attribute",
                f"{name} is not an attribute of this resource",
                pointer=pointer,
            )
        return made(422, kind, "Invalid attribute value", f"{name}: {message}", pointer=pointer)
    if path == ("data", "type") and kind != "missing":
        return made(
            409,
            "type-mismatch",
            "Resource type does not match the endpoint",
            f"type: {message}",
            pointer=pointer,
        )
    if path == ("data", "id") and kind == "extra_forbidden":
        return made(
            403,
            "client-generated-id",
            "Client-generated ids are not supported",
            "leave out data.id: the server assigns the id",
            pointer=pointer,
        )
    return made(
        400,
        "malformed-document",
        "Malformed request document",
        f"{'.'.join(path)}: {message}",
        pointer=pointer,
    )


def _overall_status(objects: list[ErrorObject]) -> int:
    # JSON:API: with several errors, the most generally applicable status.
    statuses = {int(item.status) for item in objects}
    return statuses.pop() if len(statuses) == 1 else 400


def _respond(
    objects: list[ErrorObject], headers: Mapping[str, str] | None = None
) -> JsonApiResponse:
    return JsonApiResponse(
        error_document(objects), status_code=_overall_status(objects), headers=headers
    )


def error_response(exc: Exception, request: Request) -> Response | None:
    """The response for an error this dialect knows, or None for the caller to describe."""
    if isinstance(exc, RequestValidationError):
        objects = [_shape_error(error) for error in exc.errors()]
        # A document that does not fit the endpoint at all (wrong type, client id, bad
        # shape) makes its attribute errors noise: report the misfit alone.
        misfits = [item for item in objects if item.status != "422"]
        return _respond(misfits or objects)
    for cls, status, code, title in ERROR_TABLE:
        if isinstance(exc, cls):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return _respond(_objects(exc, status, code, title, request), headers)
    return None


def failure_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A failure outside the table (transport, database, unknown route, a bug)."""
    return _respond(
        [ErrorObject(status=str(status), code=code, title=title, detail=detail)], headers
    )

"""The hosting dialect's error format: every failure becomes a JSON:API error document.

What an error means in HTTP (status, code, title) is decided once, in `api/errors.py`; this
module only writes it the way JSON:API asks. Each error object has `status` (a string), a
stable `code` (for a broken rule its name, such as `min_length`), a `title`, a `detail` a
person can act on and, where the fault lies in the request, a `source`: a JSON pointer into
the document (`/data/attributes/forward_to/1`) or the query `parameter`.

Two kinds of input fault are told apart:
- the document's *shape* (no `data`, a wrong `type`, a string where a list belongs):
  reported by the pydantic models of `requests.py` as FastAPI's `RequestValidationError`.
  JSON:API itself fixes the status of these (409 for a type that does not fit the
  endpoint, 403 for a client-generated id), so `_shape_error` classifies them here;
- its *values* (a taken address, a weak password): the services' `InvalidInput`, one error
  object per broken rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from postmeister.api.errors import DocumentMismatch, Failure, InvalidQueryParameter, describe
from postmeister.api.hosting.media import JsonApiResponse
from postmeister.api.hosting.render import BASE_PATH, VERSION, Body, JsonApiObject, dump
from postmeister.errors import FieldProblem

# Attributes a response shows but no request may set.
READ_ONLY_ATTRIBUTES: Final = frozenset(
    {"address", "address_type", "domain", "package_id", "created_at", "updated_at"}
)
# Service field names that this dialect spells differently: the controller dialect's
# `name` and `domain` are parts of the hosting dialect's one `address`.
_ATTRIBUTE_FOR_FIELD: Final = {"name": "address", "domain": "address"}
_QUERY_FOR_FIELD: Final = {"domain": "filter[domain]", "address": "filter[address]"}
_FIELD_PARTS = re.compile(r"[^.\[\]]+")
_ATTRIBUTE_TITLE: Final = "Invalid attribute value"
_QUERY_TITLE: Final = "Invalid query parameter"


class ErrorSource(BaseModel):
    pointer: str | None = Field(default=None, description="JSON pointer into the request")
    parameter: str | None = Field(default=None, description="the query parameter at fault")


class ErrorObject(BaseModel):
    status: str = Field(description="the HTTP status code, as a string")
    code: str = Field(description="stable name of the rule or fault, e.g. min_length")
    title: str
    detail: str
    source: ErrorSource | None = None


class ErrorDocument(BaseModel):
    jsonapi: JsonApiObject
    errors: list[ErrorObject]


def error_document(errors: list[ErrorObject]) -> Body:
    return dump(ErrorDocument(jsonapi=VERSION, errors=errors))


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
        if request.url.path.startswith(BASE_PATH):
            parts[0] = _ATTRIBUTE_FOR_FIELD.get(head, head)
        label = parts[0] + problem.field.removeprefix(head)
        return label, ErrorSource(pointer=_pointer(["data", "attributes", *parts]))
    if request.method == "GET" and head in _QUERY_FOR_FIELD:
        parameter = _QUERY_FOR_FIELD[head]
        return parameter, ErrorSource(parameter=parameter)
    # A value from the URL path, such as a forward target.
    return problem.field, None


def _problem_object(problem: FieldProblem, failure: Failure, request: Request) -> ErrorObject:
    label, source = _problem_source(problem, request)
    in_query = source is not None and source.parameter is not None
    if in_query:
        status, title = "400", _QUERY_TITLE
    elif problem.field == "password" or failure.code == "password-policy":
        status, title = str(failure.status), failure.title
    else:
        status, title = str(failure.status), _ATTRIBUTE_TITLE
    return ErrorObject(
        status=status,
        code=problem.rule or failure.code,
        title=title,
        detail=f"{label}: {problem.message}",
        **({"source": source} if source is not None else {}),
    )


def _objects(failure: Failure, request: Request) -> list[ErrorObject]:
    if failure.problems:
        return [_problem_object(problem, failure, request) for problem in failure.problems]
    extra: dict[str, Any] = {}
    if isinstance(failure.error, InvalidQueryParameter):
        extra["source"] = ErrorSource(parameter=failure.error.parameter)
    elif isinstance(failure.error, DocumentMismatch):
        extra["source"] = ErrorSource(pointer=failure.error.pointer)
    return [
        ErrorObject(
            status=str(failure.status),
            code=failure.code,
            title=failure.title,
            detail=failure.detail,
            **extra,
        )
    ]


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


def respond(exc: Exception, request: Request) -> JsonApiResponse:
    """The JSON:API error document for any exception."""
    if isinstance(exc, RequestValidationError):
        objects = [_shape_error(error) for error in exc.errors()]
        # A document that does not fit the endpoint at all (wrong type, client id, bad
        # shape) makes its attribute errors noise: report the misfit alone.
        misfits = [item for item in objects if item.status != "422"]
        return _respond(misfits or objects)
    failure = describe(exc, request)
    return _respond(_objects(failure, request), dict(failure.headers) or None)

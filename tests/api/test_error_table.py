"""One error → status table (issue 10, the redesign): both dialects answer every error in
it with the same status, code and headers; each only formats."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import Request
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from postmeister.api import errors
from postmeister.api.controller import problems
from postmeister.api.dialects import dialect_for
from postmeister.api.hosting import errors as hosting
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

EXAMPLES: dict[type[Exception], Exception] = {
    PasswordPolicyViolation: PasswordPolicyViolation([FieldProblem("password", "too short")]),
    InvalidInput: InvalidInput([FieldProblem("description", "too long", "max_length")]),
    NotFound: NotFound("address", "x@y.example"),
    AlreadyExists: AlreadyExists("address", "x@y.example"),
    ManagedBySync: ManagedBySync("y.example", 3),
    Conflict: Conflict("wrong kind"),
    PermissionDenied: PermissionDenied("read-only token"),
    Unauthenticated: Unauthenticated("no token"),
    errors.MalformedBody: errors.MalformedBody("the body is not UTF-8"),
    errors.InvalidQueryParameter: errors.InvalidQueryParameter("page[size]", "too large"),
    errors.InvalidPage: errors.InvalidPage(),
    errors.DocumentMismatch: errors.DocumentMismatch("/data/id", "differs"),
    errors.UnsupportedMediaType: errors.UnsupportedMediaType("send JSON"),
    errors.NotAcceptable: errors.NotAcceptable("accept JSON:API"),
    errors.BodyTooLarge: errors.BodyTooLarge(10),
    errors.HttpsRequired: errors.HttpsRequired(),
    OperationalError: OperationalError("SELECT 1", {}, Exception("database is locked")),
}


def _request(path: str, method: str = "POST") -> Request:
    return Request(
        {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    )


def test_every_entry_of_the_table_has_an_example() -> None:
    assert {cls for cls, _ in errors.STATUS_TABLE} == set(EXAMPLES)


@pytest.mark.parametrize(
    ("cls", "status"), errors.STATUS_TABLE, ids=lambda v: getattr(v, "__name__", "")
)
def test_both_dialects_answer_with_the_tables_status(
    cls: type[Exception], status: errors.Status
) -> None:
    exc = EXAMPLES[cls]
    controller = problems.respond(exc, _request("/mail/account/"))
    jsonapi = hosting.respond(exc, _request("/email-addresses/1/forward-to/x"))
    assert controller.status_code == jsonapi.status_code == status.status
    problem = json.loads(bytes(controller.body))
    assert problem["type"] == problems.TYPE_PREFIX + status.code
    assert problem["title"] == status.title
    codes = {error["code"] for error in json.loads(bytes(jsonapi.body))["errors"]}
    rules = {p.rule for p in getattr(exc, "problems", []) if p.rule}
    assert codes == (rules or {status.code})
    for name, value in status.headers.items():
        assert controller.headers[name] == jsonapi.headers[name] == value


def test_a_subclass_is_matched_before_its_base() -> None:
    seen: list[type[Exception]] = []
    for cls, _ in errors.STATUS_TABLE:
        assert not any(issubclass(cls, earlier) for earlier in seen), cls
        seen.append(cls)


def test_a_bug_is_a_bare_500_in_either_dialect(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    bug = RuntimeError("secret internal state")
    for path in ("/mail/account/", "/email-addresses"):
        response = dialect_for(path).respond(bug, _request(path))
        assert response.status_code == 500
        assert b"secret internal state" not in response.body
        assert b"Traceback" not in response.body
    assert "secret internal state" in caplog.text  # the operator's log has it


def test_starlettes_own_errors_keep_their_status() -> None:
    for exc, code in [
        (HTTPException(404), "not-found"),
        (HTTPException(405, headers={"Allow": "GET"}), "method-not-allowed"),
        (HTTPException(400, "There was an error parsing the body"), "http-error"),
    ]:
        failure = errors.describe(exc, _request("/mail/account/"))
        assert (failure.status, failure.code) == (exc.status_code, code)

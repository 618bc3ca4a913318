"""Request plumbing shared by both dialects: body decoding, auth, the unit of work.

Nothing here knows a business rule; it turns HTTP into arguments for the services.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from postmeister.api.errors import MalformedBody
from postmeister.config import Settings
from postmeister.db import single_read, unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.addresses.schemas import UNSET, Maybe
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.tokens.service import check_token, record_use
from postmeister.errors import FieldProblem, InvalidInput, Unauthenticated
from postmeister.ops import context

# No request of either dialect nests deeper than a few levels; 32 leaves room for `meta`.
MAX_JSON_DEPTH: Final = 32
_ACTOR_KEY: Final = "postmeister.actor"


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    passwords: Passwords


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.postmeister
    return state


@contextmanager
def transaction(request: Request) -> Iterator[Session]:
    """The request's unit of work; safe methods do not take SQLite's write lock."""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with unit_of_work(app_state(request).sessions, write=write) as session:
        yield session


def passwords_ahead(request: Request, plain: Maybe[str] | None) -> Passwords:
    """The passwords service for a request that sets `plain` (None: a generated password;
    UNSET: no password), with its hash made now: call it before `transaction`, so that the
    hash is never made while SQLite's write lock is held (see `Passwords.ahead`)."""
    passwords = app_state(request).passwords
    return passwords if plain is UNSET else passwords.ahead(plain)


async def current_actor(request: Request) -> Actor:
    """The caller, from the API token in `Authorization` (see `token_from_authorization`);
    every API route depends on this.

    Resolved once per request: `routing.AuthenticatedRoute` calls it before the body is read,
    so that nobody without a token reaches the body parser, and the route's own dependency
    then gets the same actor without a second lookup. A coroutine, so that the route's
    dependency on it costs no trip through the thread pool (FastAPI runs a plain function
    dependency there): only the lookup itself goes there."""
    cached = request.scope.get(_ACTOR_KEY)
    if isinstance(cached, Actor):
        return cached
    # A database lookup: in the thread pool, like every synchronous dependency.
    return await run_in_threadpool(_authenticate, request)


def _authenticate(request: Request) -> Actor:
    token = token_from_authorization(request.headers.get("authorization", ""))
    if token is None:
        raise Unauthenticated(
            "send an API token as 'Authorization: Bearer TOKEN', 'Authorization: Token TOKEN' "
            "or HTTP Basic with the token as the password"
        )
    sessions = app_state(request).sessions
    # One statement (no transaction needed); a domain-limited token's links are a second
    # one, which can only see fewer of them (a domain deleted in between), never more.
    with single_read(sessions) as session:
        checked = check_token(session, token)
    actor = checked.actor
    if checked.use_due and actor.token_id is not None:
        # At most once a minute per token: a read stays a read the rest of the time.
        # Bookkeeping only: a busy database does not fail the request for it.
        with suppress(OperationalError), unit_of_work(sessions) as session:
            record_use(session, actor.token_id)
    request.scope[_ACTOR_KEY] = actor
    # Every later log line of the request names the token (its id, never the secret).
    context.bind_actor(
        token_id=actor.token_id,
        customer_id=actor.customer_id,
        admin=actor.is_admin,
        label=checked.label,
    )
    return actor


def token_from_authorization(header: str) -> str | None:
    """The API token an `Authorization` header carries, or None when it carries none.

    Three ways, because clients of the original products send all three:
    `Bearer TOKEN`; `Token TOKEN` (Django REST Framework's TokenAuthentication, the hosting
    provider's API); HTTP Basic with the token as the password and any user name (RFC 7617;
    so `https://token:pm_...@host/` in a client's base URL works). Which of them carried the
    token changes nothing: the token's own rules decide, and anything wrong is the same 401.
    """
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    kind = scheme.lower()
    if kind in ("bearer", "token"):
        return credentials
    if kind != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon and password else None


def decode_json(raw: bytes) -> Any:
    """A JSON body as Python values, or `MalformedBody` — never another exception.

    Refused as malformed: anything not UTF-8 (RFC 8259 allows no other encoding), invalid
    JSON, nesting deeper than `MAX_JSON_DEPTH`, a number with more digits than Python
    converts (4,300), and unpaired surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise MalformedBody(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:
        # Python's limit on integer-string conversion (a number of thousands of digits).
        raise MalformedBody("the body contains a number too long to read") from exc
    check_json_value(value)
    return value


def check_json_value(value: Any) -> None:
    """Refuse nesting deeper than `MAX_JSON_DEPTH` and unpaired surrogates (iteratively:
    the check itself must not recurse)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise MalformedBody(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((member, depth + 1) for member in item.values())
            else:
                pending.extend((member, depth + 1) for member in item)


def check_text(text: str) -> None:
    """Refuse text that is no Unicode at all: an unpaired surrogate (`"\\ud800"` is valid
    JSON) cannot be encoded as UTF-8, so no database could store it. (NUL is Unicode; the
    services refuse it, naming the field.)"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedBody("text in the body must not contain unpaired surrogates") from exc


def decode_json_object(raw: bytes) -> dict[str, Any]:
    value = decode_json(raw)
    if not isinstance(value, dict):
        raise MalformedBody("the body must be a JSON object")
    return value


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@contextmanager
def fields_renamed(mapping: dict[str, str]) -> Iterator[None]:
    """Report service field names under the names this dialect's clients sent."""
    try:
        yield
    except InvalidInput as exc:
        for index, item in enumerate(exc.problems):
            head, dot, rest = item.field.partition("[")
            if head in mapping:
                exc.problems[index] = FieldProblem(
                    mapping[head] + dot + rest, item.message, item.rule
                )
        raise

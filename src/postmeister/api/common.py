"""Request plumbing shared by both dialects: body reading, auth, the unit of work.

Nothing here knows a business rule; it turns HTTP into arguments for the services.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.tokens.service import authenticate
from postmeister.errors import FieldProblem, InvalidInput, Unauthenticated


class MalformedBody(Exception):
    """The body could not be read as the declared media type (an HTTP-level fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedMediaType(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def current_actor(request: Request) -> Actor:
    """Resolve the bearer token; every API route depends on this."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send an API token as 'Authorization: Bearer TOKEN'")
    with unit_of_work(app_state(request).sessions, write=False) as session:
        return authenticate(session, secret.strip())


def decode_json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise MalformedBody("the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
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

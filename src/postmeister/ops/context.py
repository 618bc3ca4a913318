"""The request a piece of code runs for: its id and its actor, in a context variable.

Set by the HTTP middleware (`postmeister.api.observe`) for the whole request, including the
route's work in the thread pool (Starlette copies the context into it). The log formatter
puts both on every line; the audit trail (`postmeister.domain.audit`) stores the request id
and the client's address with each event, so an operator can go from an audit event to the
request's log lines.

Work that no API token does has an origin instead: the CLI, a sync source, a scheduler job
(`acting`); the audit trail names it as the actor.

The actor is resolved after the request started (authentication runs inside the route), so
`RequestContext` is a mutable holder shared by everything that copied the context:
`bind_actor` fills it in for the lines that follow, wherever they are logged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Final, Literal

# Accepted from a client or proxy as its `X-Request-ID`: bounded, and only characters that
# cannot break a log line, a header or a JSON string (UUIDs, ULIDs, "Root=1-abc;Parent=2").
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:;=+/-]{1,128}")


# "web": a person logged in to the web interface (`postmeister.web`).
Origin = Literal["cli", "sync", "scheduler", "web"]


@dataclass
class RequestContext:
    request_id: str
    token_id: int | None = None
    token_label: str | None = None
    customer_id: int | None = None
    admin: bool = False
    client_address: str | None = None
    # Set by `acting`: who changes things when it is not (only) a token's request.
    origin: Origin | None = None
    origin_id: str | None = None
    origin_label: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("postmeister_request", default=None)


def request_id_from(header: str | None) -> str:
    """The client's request id when it is acceptable, otherwise a new one (never refused:
    a bad id is no reason to fail the request)."""
    if header is not None and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    return _current.get()


def begin(
    request_id: str, *, client_address: str | None = None
) -> tuple[RequestContext, Token[RequestContext | None]]:
    context = RequestContext(request_id=request_id, client_address=client_address)
    return context, _current.set(context)


@contextmanager
def acting(
    origin: Origin, *, origin_id: str | None = None, label: str | None = None
) -> Iterator[RequestContext]:
    """Run the block as `origin` (the CLI, a sync source, a scheduler job).

    Inside a request (a token asked for a sync run), the request's id, client and token are
    kept and the origin is added; outside one, a new request id is made, so the block's log
    lines and audit events share one id all the same."""
    outer = _current.get()
    base = outer if outer is not None else RequestContext(request_id=uuid.uuid4().hex)
    inner = replace(base, origin=origin, origin_id=origin_id, origin_label=label)
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


def end(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def bind_actor(
    *, token_id: int | None, customer_id: int | None, admin: bool, label: str | None = None
) -> None:
    """Record who the request acts for (the token's id and label, never its secret)."""
    context = _current.get()
    if context is not None:
        context.token_id, context.customer_id, context.admin = token_id, customer_id, admin
        context.token_label = label

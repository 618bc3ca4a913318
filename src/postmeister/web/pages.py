"""What the page modules share: today's date, ids from URLs, errors shown on a form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import Request

from postmeister.api.hosting.requests import parse_id
from postmeister.errors import AlreadyExists, Conflict, DomainError, InvalidInput, LimitReached
from postmeister.scheduler.clock import Calendar

# The form errors a page shows next to the form (with this status) instead of an error page.
SHOWN_ON_FORM: tuple[type[DomainError], ...] = (InvalidInput, LimitReached, AlreadyExists, Conflict)


@dataclass(frozen=True)
class Problem:
    """One line of a form's error list: the field, the service's message, the rule's name
    (the page translates the password rules' names)."""

    field: str
    message: str
    rule: str | None


def today(request: Request) -> dt.date:
    calendar: Calendar = request.app.state.calendar
    return calendar.today()


def key(text: str) -> int:
    """An id from a URL; anything malformed is "not found", like a missing object."""
    return parse_id(text)


def problems_of(exc: DomainError) -> list[Problem]:
    found = getattr(exc, "problems", None)
    if found:
        return [Problem(p.field, p.message, p.rule) for p in found]
    # An error without field problems may still carry its rule (`AddressExists.rule`).
    return [Problem("", exc.message, getattr(exc, "rule", None))]


def status_of(exc: DomainError) -> int:
    return 422 if isinstance(exc, InvalidInput) else 409


def number(value: str | None) -> int | None:
    """A page cursor or filter from the query string; anything else is no value."""
    return int(value) if value and value.isdigit() and len(value) <= 10 else None

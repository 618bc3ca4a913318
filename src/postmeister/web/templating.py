"""Rendering pages: one Jinja2 environment (autoescaped), the visitor's language, and the
response headers a page needs. Templates only display; every decision was made before."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from postmeister.web import messages, security
from postmeister.web.auth import Visitor
from postmeister.web.i18n import translate
from postmeister.web.pages import Problem

TEMPLATES: Final = Path(__file__).parent / "templates"
STATIC: Final = Path(__file__).parent / "static"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _mib(value: int | None) -> str:
    return "" if value is None else str(value // 2**20)


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _messages(value: str | None) -> str:
    """A run's error list (stored as a JSON list of messages) as one line."""
    if not value:
        return ""
    try:
        found = json.loads(value)
    except ValueError:
        return value
    return "; ".join(str(item) for item in found) if isinstance(found, list) else str(found)


_environment.filters["mib"] = _mib
_environment.filters["messages"] = _messages
_environment.filters["when"] = _when


@dataclass(frozen=True)
class Texts:
    """`t` in the templates: `t("key")` is a catalogue text; `t.problem(p)` and
    `t.field(name)` put a service's problem in the page's language (`web.messages`)."""

    locale: str

    def __call__(self, key: str) -> str:
        return translate(self.locale, key)

    def problem(self, problem: Problem) -> str:
        return messages.problem_message(self.locale, problem.field, problem.rule,
                                        problem.message)  # fmt: skip

    def field(self, name: str) -> str:
        return messages.field_name(self.locale, name)


def page(
    request: Request,
    who: Visitor,
    template: str,
    *,
    status: int = 200,
    secret: bool = False,
    **values: Any,
) -> HTMLResponse:
    """The page `template` for `who`. `secret`: it shows a one-time secret, which no cache
    may keep (`no-store`, also sent by the transport layer on every response anyway)."""
    locale = who.locale
    t = Texts(locale)
    body = _environment.get_template(template).render(
        t=t, who=who, locale=locale, csrf=who.csrf, csrf_field=security.CSRF_FIELD,
        prefix=security.PREFIX, path=request.url.path, **values,
    )  # fmt: skip
    headers = {"Cache-Control": "no-store"} if secret else {}
    headers["Content-Language"] = locale
    response = HTMLResponse(body, status_code=status, headers=headers)
    if who.set_form_cookie:
        security.set_form_cookie(response, who.csrf)
    return response


def redirect(path: str) -> RedirectResponse:
    """After a successful POST: see the result with a GET (a reload does not resend)."""
    return RedirectResponse(path, status_code=303)

"""How the web interface answers errors: an HTML page with the status of the shared table
(`api.errors`), a redirect to the login page when no session fits, 403 for a refused form.
Another customer's object is the same "not found" page as a missing one."""

from __future__ import annotations

from fastapi import Request, Response

from postmeister.api import errors
from postmeister.web import messages
from postmeister.web.auth import visitor
from postmeister.web.security import CsrfRejected, LoginRequired
from postmeister.web.templating import page, redirect


def respond(exc: Exception, request: Request) -> Response:
    if isinstance(exc, LoginRequired):
        return redirect(exc.login_path)
    who = visitor(request)
    if isinstance(exc, CsrfRejected):
        return page(
            request, who, "error.html", status=403, message_key="error.forbidden", detail=None
        )
    failure = errors.describe(exc, request)
    key = "error.not_found" if failure.status == 404 else None
    return page(
        request, who, "error.html", status=failure.status, message_key=key,
        detail=messages.failure_detail(who.locale, failure.code, failure.detail)
        if key is None and failure.status < 500 else None,
    )  # fmt: skip

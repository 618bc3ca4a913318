"""The structural guarantees of the web interface's routes, checked on the app itself:
every POST checks the CSRF token, every page but the login pages needs a session, and no
page is in the API's OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from postmeister.api.app import create_app
from postmeister.config import Settings
from postmeister.web import auth

PUBLIC = {"/ui", "/ui/", "/ui/login", "/ui/mailbox/login", "/ui/logout", "/ui/login/totp"}
# A session of some kind: a full one, or one waiting for its second factor.
SESSIONS = {auth.customer_user, auth.admin_user, auth.mailbox_owner, auth.web_user,
            auth.second_factor_pending}  # fmt: skip


def _calls(dependant: Dependant) -> set[Any]:
    found: set[Any] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        found.add(current.call)
        pending.extend(current.dependencies)
    return found


def _web_routes(settings: Settings) -> list[APIRoute]:
    found: list[APIRoute] = []
    pending: list[Any] = list(create_app(settings).routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # an included router
        if included is not None:
            pending.extend(included.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/ui"):
            found.append(route)
    return found


def test_every_post_checks_csrf_and_every_page_needs_a_session(settings: Settings) -> None:
    routes = _web_routes(settings)
    assert len(routes) >= 25
    for route in routes:
        calls = _calls(route.dependant)
        if "POST" in (route.methods or set()):
            assert auth.posted_form in calls, route.path
        if route.path not in PUBLIC:
            assert calls & SESSIONS, route.path
        assert not route.include_in_schema, route.path


def test_the_api_document_has_no_web_page(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]

"""A web user's own account: the language of the pages and the password (a change ends the
user's other sessions)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postmeister.api.common import app_state, transaction
from postmeister.domain.web_users import service as web_users
from postmeister.models import WebUser
from postmeister.web import forms, security
from postmeister.web.auth import Form, User, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/account", include_in_schema=False)
BASE = security.PREFIX + "/account"


def _page(request: Request, who: Visitor, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    with transaction(request) as session:
        user = session.get_one(WebUser, who.user_id)
        notice = next((k for k in ("saved", "changed") if k in request.query_params), None)
        return page(request, who, "account.html", status=status, user=user,
                    problems=problems or [], notice=notice)  # fmt: skip


@router.get("")
def account(request: Request, who: User) -> Response:
    return _page(request, who)


@router.post("/locale")
def set_locale(request: Request, who: User, form: Form) -> Response:
    try:
        with who.writing(request) as session:
            user = session.get_one(WebUser, who.user_id)
            web_users.set_locale(session, user, forms.text(form, "locale") or None)
    except SHOWN_ON_FORM as exc:
        return _page(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?saved=1")


@router.post("/password")
def change_password(request: Request, who: User, form: Form) -> Response:
    state = app_state(request)
    try:
        with who.writing(request) as session:
            user = session.get_one(WebUser, who.user_id)
            web_users.change_user_password(
                session, user, current=forms.text(form, "current_password"),
                new=forms.text(form, "password"), passwords=state.passwords,
                keep_session_id=who.session_id,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _page(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?changed=1")

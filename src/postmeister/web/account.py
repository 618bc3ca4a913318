"""A web user's own account: the language of the pages, the password (a change ends the
user's other sessions) and the user's WebAuthn keys (add through the browser's WebAuthn
ceremony, rename, remove with the current password)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from postmeister.api.common import app_state, transaction
from postmeister.db import unit_of_work
from postmeister.domain.web_users import service as web_users
from postmeister.domain.web_users import webauthn
from postmeister.models import WebUser
from postmeister.web import forms, security
from postmeister.web.auth import Form, User, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/account", include_in_schema=False)
BASE = security.PREFIX + "/account"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _page(
    request: Request,
    who: Visitor,
    *,
    status: int = 200,
    problems: list[Problem] | None = None,
    key_error: str | None = None,
) -> Response:
    with transaction(request) as session:
        user = session.get_one(WebUser, who.user_id)
        notice = next((k for k in ("saved", "changed", "deleted") if k in request.query_params),
                      None)  # fmt: skip
        return page(request, who, "account.html", status=status, user=user,
                    problems=problems or [], notice=notice, key_error=key_error,
                    keys=webauthn.list_credentials(session, user))  # fmt: skip


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


@router.post("/webauthn/options")
def webauthn_options(request: Request, who: User, form: Form) -> Response:
    """The `navigator.credentials.create()` options (the page's script asks for them),
    with a new challenge kept on the server for this session."""
    with who.writing(request) as session:
        user = session.get_one(WebUser, who.user_id)
        options = webauthn.registration_options(
            session, user, session_id=who.session_id or 0,
            rp=webauthn.relying_party(app_state(request).settings), now=_now(),
        )  # fmt: skip
    return Response(options, media_type="application/json")


@router.post("/webauthn")
def add_key(request: Request, who: User, form: Form) -> Response:
    """The new key's answer (in the `credential` field, posted by the page's script): the
    challenge is spent first, in its own transaction, whether or not the answer verifies."""
    state = app_state(request)
    with unit_of_work(state.sessions) as session:
        challenge = webauthn.take_challenge(
            session, session_id=who.session_id or 0, purpose=webauthn.REGISTER, now=_now()
        )
    try:
        with who.writing(request) as session:
            user = session.get_one(WebUser, who.user_id)
            webauthn.register(
                session, user, challenge=challenge, response=forms.text(form, "credential"),
                name=forms.text(form, "name"), rp=webauthn.relying_party(state.settings),
            )  # fmt: skip
    except webauthn.KeyRefused:
        return _page(request, who, status=422, key_error="webauthn.register_refused")
    except SHOWN_ON_FORM as exc:
        return _page(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?saved=1#keys")


@router.post("/webauthn/{credential}/name")
def rename_key(request: Request, who: User, form: Form, credential: str) -> Response:
    try:
        with who.writing(request) as session:
            user = session.get_one(WebUser, who.user_id)
            webauthn.rename_credential(session, user, key(credential),
                                       name=forms.text(form, "name"))  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _page(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?saved=1#keys")


@router.post("/webauthn/{credential}/remove")
def remove_key(request: Request, who: User, form: Form, credential: str) -> Response:
    state = app_state(request)
    try:
        with who.writing(request) as session:
            user = session.get_one(WebUser, who.user_id)
            webauthn.remove_credential(
                session, user, key(credential), password=forms.text(form, "current_password"),
                passwords=state.passwords,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _page(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?deleted=1#keys")

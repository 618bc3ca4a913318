"""Logging in and out: customer users and admins (password, then a second factor when due:
a TOTP code or a WebAuthn key, whichever the user has), mailbox owners (the mailbox
password). Failed attempts are counted per account and per client address in the database
(`domain.web_users`), so every worker throttles alike."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from postmeister.api.common import app_state
from postmeister.db import unit_of_work
from postmeister.domain.web_users import rules, webauthn
from postmeister.domain.web_users import service as web_users
from postmeister.domain.web_users.rules import LoginRefused, LoginThrottled, SecondFactorRefused
from postmeister.models import Address, WebUser
from postmeister.ops import context
from postmeister.web import security
from postmeister.web.auth import Anyone, Form, Pending, Visitor, second_factor_pending, visitor
from postmeister.web.forms import text
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX, include_in_schema=False)
HOME = {"customer": "/customer", "admin": "/admin", "mailbox": "/mailbox"}


def _client(request: Request) -> str:
    current = context.current()
    if current is not None and current.client_address:
        return current.client_address
    return request.client.host if request.client else "unknown"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("")
@router.get("/")
def home(who: Anyone) -> Response:
    kind = who.kind
    return redirect(security.PREFIX + (HOME[kind] if kind else "/login"))


@router.get("/login")
def login_form(request: Request, who: Anyone) -> Response:
    return page(request, who, "login.html", mailbox=False, error=None, email="")


@router.get("/mailbox/login")
def mailbox_login_form(request: Request, who: Anyone) -> Response:
    return page(request, who, "login.html", mailbox=True, error=None, email="")


def _refused(request: Request, exc: Exception, *, email: str, account: str, mailbox: bool
             ) -> Response:  # fmt: skip
    who = visitor(request)
    if isinstance(exc, LoginThrottled):
        return page(request, who, "login.html", status=429, mailbox=mailbox,
                    error="login.throttled", email=email)  # fmt: skip
    with unit_of_work(app_state(request).sessions) as session:
        web_users.record_failure(session, account=account, client=_client(request), now=_now())
    return page(request, who, "login.html", status=401, mailbox=mailbox,
                error="login.refused", email=email)  # fmt: skip


def _logged_in(token: str, target: str) -> Response:
    response = redirect(security.PREFIX + target)
    security.set_session_cookie(response, token)
    return response


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    email, password = text(form, "email"), text(form, "password")
    state = app_state(request)
    client = _client(request)
    try:
        # The hash check in a reading transaction: it never holds SQLite's write lock.
        with unit_of_work(state.sessions, write=False) as session:
            user_id = web_users.authenticate_user(
                session, email=email, password=password, client=client,
                passwords=state.passwords, now=_now(),
            ).id  # fmt: skip
    except (LoginRefused, LoginThrottled) as exc:
        account = web_users.login_account(email, mailbox=False)
        return _refused(request, exc, email=email, account=account, mailbox=False)
    with unit_of_work(state.sessions) as session:
        user = session.get_one(WebUser, user_id)
        web_users.record_login(session, account=user.email, user_id=user.id, now=_now())
        due = web_users.second_factor_due(session, user)
        issued = web_users.start_session(
            session, user=user, stage=web_users.SECOND_FACTOR if due else web_users.FULL,
            client=client,
        )  # fmt: skip
        kind = "admin" if user.is_admin else "customer"
    return _logged_in(issued.token, "/login/totp" if due else HOME[kind])


@router.post("/mailbox/login")
def mailbox_login(request: Request, form: Form) -> Response:
    address, password = text(form, "email"), text(form, "password")
    state = app_state(request)
    client = _client(request)
    try:
        with unit_of_work(state.sessions, write=False) as session:
            mailbox_id = web_users.authenticate_mailbox(
                session, address=address, password=password, client=client,
                passwords=state.passwords, now=_now(),
            ).id  # fmt: skip
    except (LoginRefused, LoginThrottled) as exc:
        account = web_users.login_account(address, mailbox=True)
        return _refused(request, exc, email=address, account=account, mailbox=True)
    with unit_of_work(state.sessions) as session:
        mailbox = session.get_one(Address, mailbox_id)
        web_users.record_login(session, account=mailbox.address, now=_now())
        issued = web_users.start_session(session, address=mailbox, client=client)
    return _logged_in(issued.token, HOME["mailbox"])


def _factors(request: Request, who: Visitor) -> tuple[bool, bool]:
    """Which second factors the user has: (TOTP, WebAuthn keys)."""
    with unit_of_work(app_state(request).sessions, write=False) as session:
        user = session.get_one(WebUser, who.user_id)
        return user.totp_secret is not None, webauthn.has_credentials(session, user.id)


def _second_factor_page(
    request: Request,
    who: Visitor,
    *,
    status: int = 200,
    error: str | None = None,
    offered: str | None = None,
) -> Response:
    """The second-factor page: the code form when the user has TOTP, the key button when
    the user has a key, TOTP enrolment (with `offered` or a new key) when neither."""
    totp, keys = _factors(request, who)
    secret = None if totp or keys else offered or rules.new_totp_secret()
    uri = None if secret is None else rules.totp_uri(secret, account=who.email or "")
    return page(request, who, "totp.html", status=status, totp_key=secret, uri=uri,
                error=error, secret=secret is not None, code_form=totp or not keys,
                keys=keys)  # fmt: skip


@router.get("/login/totp")
def totp_form(request: Request) -> Response:
    return _second_factor_page(request, second_factor_pending(request))


@router.post("/login/totp")
def totp(request: Request, form: Form) -> Response:
    who = second_factor_pending(request)
    state = app_state(request)
    code, offered = text(form, "code"), text(form, "secret") or None
    try:
        with unit_of_work(state.sessions) as session:
            web_users.check_throttle(session, who.email or "", _client(request), _now())
            user = session.get_one(WebUser, who.user_id)
            if user.totp_secret is None:
                if offered is None:
                    raise SecondFactorRefused()
                web_users.enrol_totp(session, user, secret=offered, code=code, now=_now())
            else:
                web_users.check_totp(session, user, code, now=_now())
            response = _second_factor_passed(session, who, user)
    except LoginThrottled:
        return _second_factor_page(request, who, status=429, error="login.throttled")
    except SecondFactorRefused:
        _second_factor_failed(request, who)
        return _second_factor_page(request, who, status=401, error="totp.refused",
                                   offered=offered)  # fmt: skip
    return response


def _second_factor_passed(session: Session, who: Visitor, user: WebUser) -> Response:
    """The full session that replaces the waiting one, as the response that sets it."""
    row = web_users.find_session(session, who.token or "")
    if row is None:
        raise security.LoginRequired()
    issued = web_users.complete_second_factor(session, row)
    return _logged_in(issued.token, HOME["admin" if user.is_admin else "customer"])


def _second_factor_failed(request: Request, who: Visitor) -> None:
    with unit_of_work(app_state(request).sessions) as session:
        web_users.record_failure(session, account=who.email or "", client=_client(request),
                                 now=_now())  # fmt: skip


@router.post("/login/webauthn/options")
def webauthn_options(request: Request, who: Pending, form: Form) -> Response:
    """The `navigator.credentials.get()` options for this session's user (the page's
    script asks for them), with a new challenge kept on the server."""
    state = app_state(request)
    try:
        with unit_of_work(state.sessions) as session:
            web_users.check_throttle(session, who.email or "", _client(request), _now())
            user = session.get_one(WebUser, who.user_id)
            options = webauthn.authentication_options(
                session, user, session_id=who.session_id or 0,
                rp=webauthn.relying_party(state.settings), now=_now(),
            )  # fmt: skip
    except LoginThrottled:
        return JSONResponse({"error": "throttled"}, status_code=429)
    except webauthn.KeyRefused:
        return JSONResponse({"error": "no_key"}, status_code=409)
    return Response(options, media_type="application/json")


@router.post("/login/webauthn")
def webauthn_login(request: Request, who: Pending, form: Form) -> Response:
    """The key's answer (posted by the page's script in the `credential` field): checked
    against the challenge this session was given, which is spent either way."""
    state = app_state(request)
    try:
        with unit_of_work(state.sessions) as session:
            web_users.check_throttle(session, who.email or "", _client(request), _now())
            challenge = webauthn.take_challenge(
                session, session_id=who.session_id or 0, purpose=webauthn.AUTHENTICATE,
                now=_now(),
            )  # fmt: skip
        with unit_of_work(state.sessions) as session:
            user = session.get_one(WebUser, who.user_id)
            webauthn.authenticate(
                session, user, challenge=challenge, response=text(form, "credential"),
                rp=webauthn.relying_party(state.settings), now=_now(),
            )  # fmt: skip
            response = _second_factor_passed(session, who, user)
    except LoginThrottled:
        return _second_factor_page(request, who, status=429, error="login.throttled")
    except webauthn.KeyRefused:
        _second_factor_failed(request, who)
        return _second_factor_page(request, who, status=401, error="webauthn.refused")
    return response


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    who = visitor(request)
    if who.token is not None:
        with unit_of_work(app_state(request).sessions) as session:
            row = web_users.find_session(session, who.token)
            if row is not None:
                web_users.end_session(session, row)
    response = redirect(security.PREFIX + "/login")
    security.clear_session_cookie(response)
    return response

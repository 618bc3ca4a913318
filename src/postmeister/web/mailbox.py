"""Mailbox self-service: the owner, logged in with the mailbox's own password, changes the
password (ending the mailbox's other sessions), the autoresponder, the spam handling, the
forwarding when the package allows it (`domain.packages.self_service`), and manages
application passwords. Only the session's own address is ever loaded."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from postmeister.api.common import app_state, passwords_ahead, transaction
from postmeister.domain.addresses import service as addresses
from postmeister.domain.app_passwords import service as app_passwords
from postmeister.domain.packages import self_service
from postmeister.domain.web_users import service as web_users
from postmeister.models import Address
from postmeister.web import forms, security
from postmeister.web.auth import Form, Mailbox, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, problems_of, status_of, today
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/mailbox", include_in_schema=False)
BASE = security.PREFIX + "/mailbox"


def _own(session: Session, who: Visitor) -> Address:
    assert who.address_id is not None
    return addresses.get_address(session, who.actor, who.address_id)


def _page(request: Request, who: Visitor, session: Session, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    address = _own(session, who)
    notice = next((k for k in ("saved", "revoked", "changed") if k in request.query_params), None)
    return page(request, who, "mailbox/home.html", status=status, address=address,
                app_passwords=app_passwords.list_app_passwords(session, address),
                may_forward=self_service.may_change_own_forwarding(session, address),
                problems=problems or [], notice=notice, base=BASE)  # fmt: skip


@router.get("")
def home(request: Request, who: Mailbox) -> Response:
    with transaction(request) as session:
        return _page(request, who, session)


def _refused(request: Request, who: Visitor, exc: Exception) -> Response:
    assert isinstance(exc, SHOWN_ON_FORM)
    with transaction(request) as session:
        return _page(request, who, session, status=status_of(exc), problems=problems_of(exc))


@router.post("/settings")
def settings(request: Request, who: Mailbox, form: Form) -> Response:
    try:
        with who.writing(request) as session:
            address = _own(session, who)
            addresses.update_address(
                session, who.actor, address, forms.mailbox_settings(form, address),
                passwords=app_state(request).passwords, today=today(request),
                max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _refused(request, who, exc)
    return redirect(f"{BASE}?saved=1")


@router.post("/forwarding")
def forwarding(request: Request, who: Mailbox, form: Form) -> Response:
    """The mailbox's forward targets, one per line; empty keeps all mail in the mailbox.
    A package that does not allow it answers 403 (the form is not shown then either)."""
    try:
        with who.writing(request) as session:
            self_service.change_own_forwarding(
                session, who.actor, _own(session, who), forms.lines(form, "forward_to"),
                passwords=app_state(request).passwords,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _refused(request, who, exc)
    return redirect(f"{BASE}?saved=1")


@router.post("/password")
def change_password(request: Request, who: Mailbox, form: Form) -> Response:
    new = forms.text(form, "password")
    try:
        passwords = passwords_ahead(request, new)
        with who.writing(request) as session:
            web_users.change_mailbox_password(
                session, _own(session, who), current=forms.text(form, "current_password"),
                new=new, passwords=passwords, keep_session_id=who.session_id,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _refused(request, who, exc)
    return redirect(f"{BASE}?changed=1")


@router.post("/app-passwords")
def create_app_password(request: Request, who: Mailbox, form: Form) -> Response:
    try:
        with who.writing(request) as session:
            address = _own(session, who)
            issued = app_passwords.create_app_password(
                session, who.actor, address, device=forms.text(form, "device"),
                application=forms.text(form, "application"),
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _refused(request, who, exc)
    return page(request, who, "secret.html", secret=True, title_key="app_password.new",
                subject=who.email, value=issued.secret, back=BASE)  # fmt: skip


@router.post("/app-passwords/{app_password_id}/revoke")
def revoke_app_password(
    request: Request, app_password_id: str, who: Mailbox, form: Form
) -> Response:
    with who.writing(request) as session:
        app_passwords.delete_app_password(session, who.actor, _own(session, who),
                                          key(app_password_id))  # fmt: skip
    return redirect(f"{BASE}?revoked=1")

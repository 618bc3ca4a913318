"""Who is logged in: the session behind the cookie, as request dependencies.

Each page depends on one of `customer_user`, `admin_user`, `mailbox_owner` (or
`second_factor_pending` for the TOTP step); anything else is the login page. POST handlers
take the form through `posted_form`, which checks the CSRF token and the Origin first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from postmeister.api.common import app_state, transaction
from postmeister.db import unit_of_work
from postmeister.domain.access import Actor
from postmeister.domain.web_users import service as web_users
from postmeister.domain.web_users.rules import choose_locale
from postmeister.models import Address, WebUser
from postmeister.models import Customer as CustomerRow
from postmeister.ops import context
from postmeister.web import security
from postmeister.web.security import LoginRequired


@dataclass(frozen=True)
class Visitor:
    """A request's view of its session (None fields: not logged in that way)."""

    token: str | None
    session_id: int | None
    stage: str | None
    user_id: int | None
    email: str | None
    is_admin: bool
    customer_id: int | None
    address_id: int | None
    locale: str
    csrf: str
    set_form_cookie: bool = False

    @property
    def actor(self) -> Actor:
        if self.is_admin:
            return Actor(customer_id=None, is_admin=True)
        assert self.customer_id is not None
        return Actor.for_customer(self.customer_id)

    @property
    def kind(self) -> str | None:
        if self.stage != web_users.FULL:
            return None
        if self.address_id is not None:
            return "mailbox"
        return "admin" if self.is_admin else "customer"

    @contextmanager
    def writing(self, request: Request) -> Iterator[Session]:
        """A writing transaction in which the audit trail names this visitor as the actor."""
        who = f"address:{self.address_id}" if self.address_id else f"user:{self.user_id}"
        with context.acting("web", origin_id=who, label=self.email), transaction(request) as s:
            yield s


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def visitor(request: Request) -> Visitor:
    """The visitor of this request, resolved once (cached on the request)."""
    cached = request.scope.get("postmeister.visitor")
    if isinstance(cached, Visitor):
        return cached
    accept = request.headers.get("accept-language")
    token = request.cookies.get(security.SESSION_COOKIE)
    found: Visitor | None = None
    if token and len(token) <= 128:
        with unit_of_work(app_state(request).sessions, write=False) as session:
            found = _resolve(session, token, accept)
    if found is None:
        value, fresh = security.form_token(request)
        found = Visitor(
            token=None, session_id=None, stage=None, user_id=None, email=None, is_admin=False,
            customer_id=None, address_id=None, locale=choose_locale(None, accept), csrf=value,
            set_form_cookie=fresh,
        )  # fmt: skip
    request.scope["postmeister.visitor"] = found
    return found


def _resolve(session: Session, token: str, accept: str | None) -> Visitor | None:
    row = web_users.find_session(session, token, now=_now())
    if row is None:
        return None
    csrf = security.session_csrf(token)
    if row.user_id is not None:
        user = session.get(WebUser, row.user_id)
        if user is None or _suspended(session, user.customer_id):
            return None
        return Visitor(
            token=token, session_id=row.id, stage=row.stage, user_id=user.id, email=user.email,
            is_admin=user.is_admin, customer_id=user.customer_id, address_id=None,
            locale=choose_locale(user.locale, accept), csrf=csrf,
        )  # fmt: skip
    address = session.get(Address, row.address_id) if row.address_id is not None else None
    if address is None or _suspended(session, address.domain.customer_id):
        return None
    return Visitor(
        token=token, session_id=row.id, stage=row.stage, user_id=None, email=address.address,
        is_admin=False, customer_id=address.domain.customer_id, address_id=address.id,
        locale=choose_locale(None, accept), csrf=csrf,
    )  # fmt: skip


def _suspended(session: Session, customer_id: int | None) -> bool:
    """A suspended customer's sessions stop counting at once (they resume with it)."""
    if customer_id is None:
        return False
    customer = session.get(CustomerRow, customer_id)
    return customer is None or customer.suspended_at is not None


def _require(request: Request, kind: str) -> Visitor:
    found = visitor(request)
    if found.kind != kind:
        raise LoginRequired(f"{security.PREFIX}/mailbox/login" if kind == "mailbox" else
                            f"{security.PREFIX}/login")  # fmt: skip
    return found


def customer_user(request: Request) -> Visitor:
    return _require(request, "customer")


def admin_user(request: Request) -> Visitor:
    return _require(request, "admin")


def web_user(request: Request) -> Visitor:
    """A customer user or an admin (their own account page)."""
    found = visitor(request)
    if found.kind not in ("customer", "admin"):
        raise LoginRequired()
    return found


def mailbox_owner(request: Request) -> Visitor:
    return _require(request, "mailbox")


def second_factor_pending(request: Request) -> Visitor:
    found = visitor(request)
    if found.stage != web_users.SECOND_FACTOR or found.user_id is None:
        raise LoginRequired()
    return found


async def posted_form(request: Request) -> FormData:
    """The POSTed form, after its CSRF token and Origin passed."""
    form = await request.form()
    sent = form.get(security.CSRF_FIELD)
    security.check_csrf(request, sent if isinstance(sent, str) else None, visitor(request).csrf)
    return form


Customer = Annotated[Visitor, Depends(customer_user)]
Admin = Annotated[Visitor, Depends(admin_user)]
Mailbox = Annotated[Visitor, Depends(mailbox_owner)]
User = Annotated[Visitor, Depends(web_user)]
Anyone = Annotated[Visitor, Depends(visitor)]
Pending = Annotated[Visitor, Depends(second_factor_pending)]
Form = Annotated[FormData, Depends(posted_form)]

"""API tokens in the customer menu and in the administration: list, create (the secret is
shown once, `no-store`), revoke.

Both call the API's own service (`domain.tokens.service`) with the visitor's actor, so the
rules are the API's: a customer's tokens are its own and never admin tokens, another
customer's token id in the URL is "not found", a revoked token stays listed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from postmeister.api.common import transaction
from postmeister.domain.domains.service import list_domain_page
from postmeister.domain.tokens import service as tokens
from postmeister.web import forms, security
from postmeister.web.auth import Admin, Customer, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, number, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX, include_in_schema=False)
CUSTOMER_BASE = security.PREFIX + "/customer/tokens"
ADMIN_BASE = security.PREFIX + "/admin/tokens"
PAGE_SIZE = 50


# Up to this many domains the form offers a checkbox each; a customer with more types the
# names instead (a page of thousands of checkboxes is neither quick nor usable).
CHECKBOXES = 200


def _domain_names(session: Session, who: Visitor) -> list[str] | None:
    """The domains a customer may tick to limit a token to; None: too many to tick, the
    form has a field to type them in. An admin's form names the customer instead."""
    if who.is_admin:
        return []
    found = list_domain_page(session, who.actor, size=CHECKBOXES)
    return None if found.more_after else [d.display_name for d in found.domains]


def _list(request: Request, who: Visitor, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    base = ADMIN_BASE if who.is_admin else CUSTOMER_BASE
    customer = number(request.query_params.get("customer")) if who.is_admin else None
    with transaction(request) as session:
        found = tokens.list_token_page(
            session, who.actor, size=PAGE_SIZE, customer_id=customer,
            after=number(request.query_params.get("after")),
            before=number(request.query_params.get("before")),
        )  # fmt: skip
        return page(
            request, who, "tokens.html", status=status, found=found, base=base,
            names=tokens.domain_names(session, found.items), domains=_domain_names(session, who),
            customer=customer, problems=problems or [],
            notice="revoked" if "revoked" in request.query_params else None,
        )  # fmt: skip


def _create(request: Request, who: Visitor, form: Form) -> Response:
    base = ADMIN_BASE if who.is_admin else CUSTOMER_BASE
    try:
        wanted = forms.token_request(form, admin=who.is_admin)
        with who.writing(request) as session:
            issued = tokens.issue_token(session, who.actor, wanted)
    except SHOWN_ON_FORM as exc:
        return _list(request, who, status=status_of(exc), problems=problems_of(exc))
    return page(request, who, "secret.html", secret=True, title_key="token.new",
                subject=wanted.label or "", value=issued.secret, back=base,
                back_key="nav.tokens")  # fmt: skip


def _revoke(request: Request, who: Visitor, token_id: str) -> Response:
    base = ADMIN_BASE if who.is_admin else CUSTOMER_BASE
    with who.writing(request) as session:
        tokens.revoke_token(session, who.actor, tokens.get_token(session, who.actor, key(token_id)))
    return redirect(f"{base}?revoked=1")


@router.get("/customer/tokens")
def customer_tokens(request: Request, who: Customer) -> Response:
    return _list(request, who)


@router.post("/customer/tokens")
def customer_create_token(request: Request, who: Customer, form: Form) -> Response:
    return _create(request, who, form)


@router.post("/customer/tokens/{token_id}/revoke")
def customer_revoke_token(request: Request, token_id: str, who: Customer, form: Form) -> Response:
    return _revoke(request, who, token_id)


@router.get("/admin/tokens")
def admin_tokens(request: Request, who: Admin) -> Response:
    return _list(request, who)


@router.post("/admin/tokens")
def admin_create_token(request: Request, who: Admin, form: Form) -> Response:
    return _create(request, who, form)


@router.post("/admin/tokens/{token_id}/revoke")
def admin_revoke_token(request: Request, token_id: str, who: Admin, form: Form) -> Response:
    return _revoke(request, who, token_id)

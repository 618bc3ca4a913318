"""Administration: customers (list, create, suspend / resume, require TOTP), through the
customer service with an admin's actor."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postmeister.api.common import transaction
from postmeister.domain.customers import service as customers
from postmeister.domain.customers.service import CustomerChanges
from postmeister.web import forms, security
from postmeister.web.auth import Admin, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/admin", include_in_schema=False)
BASE = security.PREFIX + "/admin"
PAGE_SIZE = 50
ACTIONS = {
    "suspend": CustomerChanges(suspended=True),
    "unsuspend": CustomerChanges(suspended=False),
    "require_totp": CustomerChanges(totp_required=True),
    "allow_without_totp": CustomerChanges(totp_required=False),
}


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 10 else None


def _list(request: Request, who: Visitor, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    with transaction(request) as session:
        found = customers.list_customer_page(
            session, who.actor, size=PAGE_SIZE,
            after=_number(request.query_params.get("after")),
            before=_number(request.query_params.get("before")),
        )  # fmt: skip
        return page(request, who, "admin/customers.html", status=status, found=found,
                    problems=problems or [],
                    notice="saved" if "saved" in request.query_params else None)  # fmt: skip


@router.get("")
def customer_list(request: Request, who: Admin) -> Response:
    return _list(request, who)


@router.post("/customers")
def create_customer(request: Request, who: Admin, form: Form) -> Response:
    try:
        with who.writing(request) as session:
            customers.register_customer(session, who.actor, name=forms.text(form, "name"))
    except SHOWN_ON_FORM as exc:
        return _list(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}?saved=1")


@router.post("/customers/{customer_id}")
def change_customer(request: Request, customer_id: str, who: Admin, form: Form) -> Response:
    changes = ACTIONS.get(forms.text(form, "action"))
    if changes is None:
        return _list(request, who, status=422, problems=[Problem("action", "unknown", None)])
    with who.writing(request) as session:
        customer = customers.find_customer(session, who.actor, key(customer_id))
        customers.update_customer(session, who.actor, customer, changes)
    return redirect(f"{BASE}?saved=1")

"""Domains: the customer's list, and each domain's DNS records checked live (the check of
`GET /domains/{id}/dns`, `domain.dns.service`, with the resolver of `settings.dns`); an
admin's list of every domain, and adding a domain to a customer.

The live check runs after the reading transaction has ended, as in the API, so a slow
resolver never holds the database. Another customer's domain id is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from postmeister.api.common import app_state, transaction
from postmeister.domain.dns import service as dns
from postmeister.domain.dns.rules import shown_name
from postmeister.domain.domains import service as domains
from postmeister.errors import FieldProblem, InvalidInput
from postmeister.web import forms, messages, security
from postmeister.web.auth import Admin, Customer, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, number, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX, include_in_schema=False)
CUSTOMER_BASE = security.PREFIX + "/customer/domains"
ADMIN_BASE = security.PREFIX + "/admin/domains"
PAGE_SIZE = 50


@dataclass(frozen=True)
class RecordRow:
    """One record as the page shows it: its name as entered, what to publish, the state
    the check returned, what the resolver found and why the state is not ok."""

    name: str
    type: str
    purpose: str
    expected: str
    state: str
    found: tuple[str, ...]
    note: str


def _base(who: Visitor) -> str:
    return ADMIN_BASE if who.is_admin else CUSTOMER_BASE


def _list(request: Request, who: Visitor, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    customer = number(request.query_params.get("customer")) if who.is_admin else None
    with transaction(request) as session:
        found = domains.list_domain_page(
            session, who.actor, size=PAGE_SIZE, customer_id=customer,
            after_id=number(request.query_params.get("after")),
            before_id=number(request.query_params.get("before")),
        )  # fmt: skip
        return page(request, who, "domains.html", status=status, found=found, base=_base(who),
                    customer=customer, problems=problems or [],
                    notice="saved" if "saved" in request.query_params else None)  # fmt: skip


def _dns(request: Request, who: Visitor, domain_id: str) -> Response:
    settings = app_state(request).settings
    with transaction(request) as session:
        records = dns.domain_records(session, who.actor, key(domain_id), settings=settings)
    checks = dns.check(records, settings.dns)
    rows = [
        RecordRow(
            name=shown_name(
                c.record.name, ascii_domain=records.ascii_name, shown_domain=records.shown_name
            ),
            type=c.record.type,
            purpose=c.record.purpose,
            expected=c.record.value,
            state=c.verdict.state,
            found=c.verdict.found,
            note=messages.dns_note(who.locale, c.verdict.notes or (c.record.about,)),
        )
        for c in checks
    ]
    return page(request, who, "domain_dns.html", domain=records.shown_name, rows=rows,
                ok=all(r.state == "ok" for r in rows), zone=records.zone(),
                base=_base(who))  # fmt: skip


@router.get("/customer/domains")
def customer_domains(request: Request, who: Customer) -> Response:
    return _list(request, who)


@router.get("/customer/domains/{domain_id}")
def customer_domain_dns(request: Request, domain_id: str, who: Customer) -> Response:
    return _dns(request, who, domain_id)


@router.get("/admin/domains")
def admin_domains(request: Request, who: Admin) -> Response:
    return _list(request, who)


@router.get("/admin/domains/{domain_id}")
def admin_domain_dns(request: Request, domain_id: str, who: Admin) -> Response:
    return _dns(request, who, domain_id)


@router.post("/admin/domains")
def admin_add_domain(request: Request, who: Admin, form: Form) -> Response:
    problems: list[FieldProblem] = []
    customer_id = forms.optional_number(form, "customer_id", problems)
    package_id = forms.optional_number(form, "package_id", problems)
    try:
        if problems or customer_id is None:
            raise InvalidInput(problems or [FieldProblem(
                "customer_id", "the customer's id is required", "required")])  # fmt: skip
        with who.writing(request) as session:
            domains.create_domain(
                session, who.actor, name=forms.text(form, "name").strip(),
                customer_id=customer_id, package_id=package_id,
                dkim=app_state(request).settings.dkim,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _list(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{ADMIN_BASE}?saved=1&customer={customer_id}")

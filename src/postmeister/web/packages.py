"""Packages: the customer sees each of its packages with the usage against every limit;
an admin lists every package, creates one for a customer and changes its limits.

The figures are the service's (`packages.usage_of`, the same query the limits are judged
by); which figure stands against which limit is the API's mapping (`api.hosting.packages`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from postmeister.api.common import transaction
from postmeister.domain.packages import service as packages
from postmeister.domain.packages.service import LIMITS, PackageUsage
from postmeister.domain.sending_limits.rules import PACKAGE_DEFAULTS
from postmeister.errors import FieldProblem, InvalidInput
from postmeister.models import Package
from postmeister.web import forms, security
from postmeister.web.auth import Admin, Customer, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, number, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX, include_in_schema=False)
ADMIN_BASE = security.PREFIX + "/admin/packages"
PAGE_SIZE = 50


@dataclass(frozen=True)
class LimitRow:
    """One line of a package's table: the limit, its value, what is used (None: the
    figure is not kept per package, e.g. what was sent), and whether it is a size."""

    name: str
    limit: int | None
    used: int | None
    size: bool


def _rows(package: Package, usage: PackageUsage) -> list[LimitRow]:
    used = {
        "max_addresses": usage.addresses,
        "max_mailboxes": usage.mailboxes,
        "max_storage_bytes": usage.storage_bytes,
        "max_quota_bytes": usage.largest_quota_bytes,
        "max_app_passwords": usage.most_app_passwords,
    }
    return [
        LimitRow(name, getattr(package, name), used.get(name), name.endswith("_bytes"))
        for name in LIMITS
    ]


@router.get("/customer/packages")
def customer_packages(request: Request, who: Customer) -> Response:
    with transaction(request) as session:
        found = packages.list_package_page(session, who.actor, size=100).items
        usage = packages.usage_of(session, [p.id for p in found])
        return page(request, who, "packages.html",
                    shown=[(p, _rows(p, usage[p.id]), usage[p.id]) for p in found])  # fmt: skip


def _admin_list(request: Request, who: Visitor, *, status: int = 200,
                problems: list[Problem] | None = None) -> Response:  # fmt: skip
    customer = number(request.query_params.get("customer"))
    with transaction(request) as session:
        found = packages.list_package_page(
            session, who.actor, size=PAGE_SIZE, customer_id=customer,
            after=number(request.query_params.get("after")),
            before=number(request.query_params.get("before")),
        )  # fmt: skip
        usage = packages.usage_of(session, [p.id for p in found.items])
        return page(request, who, "admin/packages.html", status=status, found=found,
                    usage=usage, customer=customer, problems=problems or [],
                    defaults=PACKAGE_DEFAULTS, limits=list(LIMITS),
                    notice="saved" if "saved" in request.query_params else None)  # fmt: skip


@router.get("/admin/packages")
def admin_packages(request: Request, who: Admin) -> Response:
    return _admin_list(request, who)


@router.post("/admin/packages")
def admin_create_package(request: Request, who: Admin, form: Form) -> Response:
    problems: list[FieldProblem] = []
    customer_id = forms.optional_number(form, "customer_id", problems)
    try:
        if problems or customer_id is None:
            raise InvalidInput(problems or [FieldProblem(
                "customer_id", "the customer's id is required", "required")])  # fmt: skip
        new = packages.NewPackage(
            customer_id=customer_id, name=forms.text(form, "name"),
            limits=forms.package_limits(form),
            allow_self_service_forwarding=forms.checked(form, "allow_self_service_forwarding"),
        )  # fmt: skip
        with who.writing(request) as session:
            created = packages.create_package(session, who.actor, new).id
    except SHOWN_ON_FORM as exc:
        return _admin_list(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{ADMIN_BASE}/{created}?saved=1")


def _edit(request: Request, who: Visitor, package_id: int, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    with transaction(request) as session:
        package = packages.get_package(session, who.actor, package_id)
        usage = packages.usage_of(session, [package.id])[package.id]
        return page(request, who, "admin/package.html", status=status, package=package,
                    rows=_rows(package, usage), usage=usage, problems=problems or [],
                    limits=list(LIMITS), values={n: getattr(package, n) for n in LIMITS},
                    notice="saved" if "saved" in request.query_params else None)  # fmt: skip


@router.get("/admin/packages/{package_id}")
def admin_package(request: Request, package_id: str, who: Admin) -> Response:
    return _edit(request, who, key(package_id))


@router.post("/admin/packages/{package_id}")
def admin_update_package(request: Request, package_id: str, who: Admin, form: Form) -> Response:
    ident = key(package_id)
    try:
        # The form shows the checkbox, so an unchecked one (absent) means "not allowed".
        changes = packages.PackageChanges(
            name=forms.optional_text(form, "name"), limits=forms.package_limits(form),
            allow_self_service_forwarding=forms.checked(form, "allow_self_service_forwarding"),
        )  # fmt: skip
        with who.writing(request) as session:
            package = packages.get_package(session, who.actor, ident)
            packages.update_package(session, who.actor, package, changes)
    except SHOWN_ON_FORM as exc:
        return _edit(request, who, ident, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{ADMIN_BASE}/{ident}?saved=1")

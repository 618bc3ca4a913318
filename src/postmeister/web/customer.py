"""The customer menu: packages with usage, domains, addresses (search, keyset pages),
create / edit / delete, passwords, application passwords.

Every read and write is the hosting API's own service call with the customer's actor
(`Actor.for_customer`), so the tenancy statement is the same: another customer's address
id in the URL is "not found".
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from postmeister.api.common import app_state, passwords_ahead, transaction
from postmeister.domain.addresses import service as addresses
from postmeister.domain.addresses.schemas import UNSET, AddressChanges
from postmeister.domain.app_passwords import service as app_passwords
from postmeister.domain.audit import service as audit
from postmeister.domain.audit.schemas import EventFilter
from postmeister.domain.domains.service import list_domain_page
from postmeister.domain.packages import service as packages
from postmeister.models import Address
from postmeister.web import forms, security
from postmeister.web.auth import Customer, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, key, problems_of, status_of, today
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/customer", include_in_schema=False)
PAGE_SIZE = 50
BASE = security.PREFIX + "/customer"


def _domains(session: Session, who: Visitor) -> list[str]:
    found = list_domain_page(session, who.actor, size=500).domains
    return [d.display_name for d in found if d.alias_of_id is None]


@router.get("")
def dashboard(request: Request, who: Customer) -> Response:
    with transaction(request) as session:
        found = packages.list_package_page(session, who.actor, size=100).items
        usage = packages.usage_of(session, [p.id for p in found])
        domains = list_domain_page(session, who.actor, size=100).domains
        return page(request, who, "customer/dashboard.html", packages=found, usage=usage,
                    domains=domains)  # fmt: skip


def _kept(form: Form) -> dict[str, str]:
    """What a refused form shows again: never the password typed."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k not in ("password", "csrf")}


def _page_number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 10 else None


@router.get("/addresses")
def address_list(request: Request, who: Customer) -> Response:
    """Keyset pages of 50 of every address, or of a search (`addresses.search_address_page`
    says what a search means): index range scans, as fast with 100,000 addresses as with
    ten. `after`/`before` are the cursors the page links carry."""
    query = request.query_params.get("q", "").strip()[:320]
    with transaction(request) as session:
        found = addresses.search_address_page(
            session,
            who.actor,
            query,
            size=PAGE_SIZE,
            after=request.query_params.get("after"),
            before=request.query_params.get("before"),
        )
        return page(request, who, "customer/addresses.html", found=found, query=query)


@router.get("/addresses/new")
def new_address_form(request: Request, who: Customer) -> Response:
    kind = "forward" if request.query_params.get("kind") == "forward" else "mailbox"
    with transaction(request) as session:
        return page(request, who, "customer/new.html", kind=kind, domains=_domains(session, who),
                    problems=[], values={})  # fmt: skip


@router.post("/addresses")
def create_address(request: Request, who: Customer, form: Form) -> Response:
    domain = forms.text(form, "domain")
    try:
        new = forms.new_address(form, domain=domain)
        passwords = passwords_ahead(request, new.password if new.kind == "mailbox" else UNSET)
        with who.writing(request) as session:
            created = addresses.create_address(
                session, who.actor, new, passwords=passwords,
                max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
            )  # fmt: skip
            address_id = created.address.id
            shown = created.address.address
    except SHOWN_ON_FORM as exc:
        kind = "forward" if forms.text(form, "kind") == "forward" else "mailbox"
        with transaction(request) as session:
            return page(request, who, "customer/new.html", status=status_of(exc), kind=kind,
                        domains=_domains(session, who), problems=problems_of(exc),
                        values=_kept(form))  # fmt: skip
    if created.generated_password is not None:
        return page(request, who, "secret.html", secret=True, title_key="secret.generated",
                    subject=shown, value=created.generated_password,
                    back=f"{BASE}/addresses/{address_id}")  # fmt: skip
    return redirect(f"{BASE}/addresses/{address_id}?saved=1")


def _edit_page(
    request: Request,
    who: Visitor,
    session: Session,
    address: Address,
    *,
    status: int = 200,
    problems: list[object] | None = None,
) -> Response:
    listed = app_passwords.list_app_passwords(session, address)
    notice = next((k for k in ("saved", "revoked") if k in request.query_params), None)
    return page(request, who, "customer/edit.html", status=status, address=address,
                app_passwords=listed, problems=problems or [], notice=notice,
                base=f"{BASE}/addresses/{address.id}")  # fmt: skip


@router.get("/addresses/{address_id}")
def edit_form(request: Request, address_id: str, who: Customer) -> Response:
    with transaction(request) as session:
        address = addresses.get_address(session, who.actor, key(address_id))
        return _edit_page(request, who, session, address)


@router.post("/addresses/{address_id}")
def update_address(request: Request, address_id: str, who: Customer, form: Form) -> Response:
    ident = key(address_id)
    try:
        with who.writing(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            addresses.update_address(
                session, who.actor, address, forms.address_changes(form, address),
                passwords=app_state(request).passwords, today=today(request),
                max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
            )  # fmt: skip
    except SHOWN_ON_FORM as exc:
        with transaction(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            return _edit_page(request, who, session, address, status=status_of(exc),
                              problems=list(problems_of(exc)))  # fmt: skip
    return redirect(f"{BASE}/addresses/{ident}?saved=1")


@router.post("/addresses/{address_id}/delete")
def delete_address(request: Request, address_id: str, who: Customer, form: Form) -> Response:
    with who.writing(request) as session:
        address = addresses.get_address(session, who.actor, key(address_id))
        addresses.delete_address(session, who.actor, address)
    return redirect(f"{BASE}/addresses?deleted=1")


@router.post("/addresses/{address_id}/password")
def set_password(request: Request, address_id: str, who: Customer, form: Form) -> Response:
    """Set the typed password (every failed rule shown by name) or generate one (shown
    once)."""
    ident = key(address_id)
    generate = "generate" in form
    plain = forms.text(form, "password")
    try:
        passwords = passwords_ahead(request, None if generate else plain)
        with who.writing(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            shown = address.address
            if generate:
                secret = addresses.reset_password(session, who.actor, address,
                                                  passwords=passwords)  # fmt: skip
            else:
                addresses.update_address(
                    session, who.actor, address, AddressChanges(password=plain), passwords=passwords
                )
                secret = None
    except SHOWN_ON_FORM as exc:
        with transaction(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            return _edit_page(request, who, session, address, status=status_of(exc),
                              problems=list(problems_of(exc)))  # fmt: skip
    if secret is not None:
        return page(
            request,
            who,
            "secret.html",
            secret=True,
            title_key="secret.generated",
            subject=shown,
            value=secret,
            back=f"{BASE}/addresses/{ident}",
        )
    return redirect(f"{BASE}/addresses/{ident}?saved=1")


@router.post("/addresses/{address_id}/password-check")
def password_check(request: Request, address_id: str, who: Customer, form: Form) -> Response:
    """The policy's verdict on a password being typed (for the page's script): the names
    of the rules it breaks. POSTed, so the password never appears in a URL."""
    with transaction(request) as session:
        address = addresses.get_address(session, who.actor, key(address_id))
        found = app_state(request).passwords.problems(
            forms.text(form, "password"), local_part=address.local_part,
            domain=address.domain.name,
        )  # fmt: skip
    return JSONResponse({"failed": [p.rule for p in found]}, headers={"Cache-Control": "no-store"})


@router.post("/addresses/{address_id}/app-passwords")
def create_app_password(request: Request, address_id: str, who: Customer, form: Form) -> Response:
    ident = key(address_id)
    try:
        with who.writing(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            issued = app_passwords.create_app_password(
                session, who.actor, address, device=forms.text(form, "device"),
                application=forms.text(form, "application"),
            )  # fmt: skip
            shown = address.address
    except SHOWN_ON_FORM as exc:
        with transaction(request) as session:
            address = addresses.get_address(session, who.actor, ident)
            return _edit_page(request, who, session, address, status=status_of(exc),
                              problems=list(problems_of(exc)))  # fmt: skip
    return page(
        request,
        who,
        "secret.html",
        secret=True,
        title_key="app_password.new",
        subject=shown,
        value=issued.secret,
        back=f"{BASE}/addresses/{ident}",
    )


@router.post("/addresses/{address_id}/app-passwords/{app_password_id}/revoke")
def revoke_app_password(
    request: Request, address_id: str, app_password_id: str, who: Customer, form: Form
) -> Response:
    ident = key(address_id)
    with who.writing(request) as session:
        address = addresses.get_address(session, who.actor, ident)
        app_passwords.delete_app_password(session, who.actor, address, key(app_password_id))
    return redirect(f"{BASE}/addresses/{ident}?revoked=1")


@router.get("/audit")
def audit_trail(request: Request, who: Customer) -> Response:
    """The customer's audit trail, newest page last like the API (`visible_audit_events`)."""
    after = _page_number(request.query_params.get("after"))
    before = _page_number(request.query_params.get("before"))
    with transaction(request) as session:
        found = audit.list_event_page(
            session, who.actor, EventFilter(), size=PAGE_SIZE, after=after, before=before
        )
        return page(request, who, "customer/audit.html", found=found, customer=None,
                    base=f"{BASE}/audit")  # fmt: skip

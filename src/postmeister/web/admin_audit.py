"""The administration's audit trail: every customer's events (and the system's), keyset
pages, optionally one customer's; the service and its paging are the API's
(`audit.list_event_page` with an admin's actor)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postmeister.api.common import transaction
from postmeister.domain.audit import service as audit
from postmeister.domain.audit.schemas import EventFilter
from postmeister.web import security
from postmeister.web.auth import Admin
from postmeister.web.pages import number
from postmeister.web.templating import page

router = APIRouter(prefix=security.PREFIX + "/admin", include_in_schema=False)
PAGE_SIZE = 50


@router.get("/audit")
def audit_trail(request: Request, who: Admin) -> Response:
    customer = number(request.query_params.get("customer"))
    with transaction(request) as session:
        found = audit.list_event_page(
            session, who.actor, EventFilter(customer_id=customer), size=PAGE_SIZE,
            after=number(request.query_params.get("after")),
            before=number(request.query_params.get("before")),
        )  # fmt: skip
        return page(request, who, "customer/audit.html", found=found, customer=customer,
                    base=security.PREFIX + "/admin/audit")  # fmt: skip

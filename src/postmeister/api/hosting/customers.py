"""`/customers` (admins only): create, list, get, rename, suspend/unsuspend, delete.

To a customer's token every route here answers 404, exactly as for a missing customer.
Suspension is the attribute `suspended` (PATCH `true` / `false`); `suspended_at` says since
when. Delete is refused (409) while the customer has domains, unless `?cascade=true`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from fastapi import Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictStr

from postmeister.api.common import current_actor, transaction
from postmeister.api.hosting import requests
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse
from postmeister.api.hosting.render import SelfLink
from postmeister.api.hosting.resources import (
    CollectionDocument,
    Members,
    PageAfter,
    PageBefore,
    PageSize,
    ResourceDocument,
    Strict,
    collection,
    created,
    document,
    id_path,
    page_links,
    page_query,
    router,
    self_link,
)
from postmeister.domain.access import Actor
from postmeister.domain.customers import service
from postmeister.models import Customer

BASE: Final = "/customers"
TYPE: Final = "customer"
routes = router(BASE, "customers (JSON:API, admins)")
CustomerId = Annotated[str, id_path("the customer's id")]


class CustomerAttributes(BaseModel):
    name: str
    suspended: bool = Field(
        description="its mailboxes cannot log in or send, its API tokens are refused; "
        "mail for it is still accepted"
    )
    suspended_at: dt.datetime | None
    created_at: dt.datetime


class CustomerResource(BaseModel):
    type: Literal["customer"]
    id: str
    attributes: CustomerAttributes
    links: SelfLink


class CustomerCreateAttributes(Strict):
    name: StrictStr = Field(description="unique, 1 to 200 characters", examples=["Beispiel GmbH"])


class CustomerCreateResource(Strict):
    type: Literal["customer"]
    attributes: CustomerCreateAttributes
    meta: Members | None = None


class CustomerCreateDocument(Strict):
    data: CustomerCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


class CustomerPatchAttributes(Strict):
    name: StrictStr = Field(default=None, description="a new unique name")  # type: ignore[assignment]
    suspended: StrictBool = Field(default=None, description="true suspends, false resumes")  # type: ignore[assignment]


class CustomerPatchResource(Strict):
    type: Literal["customer"]
    id: StrictStr
    attributes: CustomerPatchAttributes
    meta: Members | None = None


class CustomerPatchDocument(Strict):
    data: CustomerPatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


def path_of(customer_id: int) -> str:
    return f"{BASE}/{customer_id}"


def resource(customer: Customer) -> CustomerResource:
    return CustomerResource(
        type="customer",
        id=str(customer.id),
        attributes=CustomerAttributes(
            name=customer.name,
            suspended=customer.suspended_at is not None,
            suspended_at=customer.suspended_at,
            created_at=customer.created_at,
        ),
        links=self_link(path_of(customer.id)),
    )


@routes.get("", response_model=CollectionDocument[CustomerResource], summary="List customers")
def list_customers(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
    filter_suspended: Annotated[bool | None, Query(alias="filter[suspended]")] = None,
) -> Response:
    """Customers in id order, one keyset page at a time (`links.next`, `links.prev`)."""
    query = page_query(
        size=page_size,
        after=page_after,
        before=page_before,
        filters={"suspended": (filter_suspended, None)},
    )
    with transaction(request) as session:
        page = service.list_customer_page(
            session,
            actor,
            size=query.size,
            after=query.after,
            before=query.before,
            suspended=query.filter("suspended"),
        )
        links = page_links(BASE, query, page, lambda item: item.id)
        return JsonApiResponse(collection([resource(item) for item in page.items], links))


@routes.post(
    "",
    status_code=201,
    response_model=ResourceDocument[CustomerResource],
    summary="Create a customer",
)
def create_customer(
    request: Request,
    body: Annotated[CustomerCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """A new customer, with an empty package named `default`."""
    with transaction(request) as session:
        customer = service.register_customer(session, actor, name=body.data.attributes.name)
        answer = document(resource(customer), path_of(customer.id))
    return created(answer, path_of(customer.id))


@routes.get(
    "/{customer_id}", response_model=ResourceDocument[CustomerResource], summary="Get a customer"
)
def get_customer(
    request: Request, customer_id: CustomerId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(customer_id, TYPE)
    with transaction(request) as session:
        customer = service.find_customer(session, actor, key)
        return JsonApiResponse(document(resource(customer), path_of(key)))


@routes.patch(
    "/{customer_id}",
    response_model=ResourceDocument[CustomerResource],
    summary="Rename, suspend or unsuspend a customer",
)
def update_customer(
    request: Request,
    customer_id: CustomerId,
    body: Annotated[CustomerPatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """`suspended: true`: its mailboxes can no longer log in (IMAP, POP3, SMTP AUTH) or send,
    and its API tokens are refused from the next request on; mail for it is still accepted
    and delivered. `suspended: false` undoes all of it."""
    key = requests.parse_id(customer_id, TYPE)
    requests.check_id(body.data.id, customer_id)
    given = body.data.attributes.model_fields_set
    changes = service.CustomerChanges(
        name=body.data.attributes.name if "name" in given else None,
        suspended=body.data.attributes.suspended if "suspended" in given else None,
    )
    with transaction(request) as session:
        customer = service.find_customer(session, actor, key)
        service.update_customer(session, actor, customer, changes)
        return JsonApiResponse(document(resource(customer), path_of(key)))


@routes.delete("/{customer_id}", status_code=204, summary="Delete a customer")
def delete_customer(
    request: Request,
    customer_id: CustomerId,
    actor: Annotated[Actor, Depends(current_actor)],
    cascade: Annotated[
        bool, Query(description="also delete its domains and every address on them")
    ] = False,
) -> Response:
    """Refused (409) while the customer has domains, unless `cascade=true`."""
    key = requests.parse_id(customer_id, TYPE)
    with transaction(request) as session:
        customer = service.find_customer(session, actor, key)
        service.delete_customer(session, actor, customer, cascade=cascade)
    return Response(status_code=204)

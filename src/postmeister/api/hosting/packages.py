"""`/packages`: admins create, change and delete any customer's packages; a customer reads
its own (another customer's package is 404, like a missing one; a write is 403).

Limits are attributes (`max_addresses`, `max_mailboxes`, `max_storage_bytes`,
`max_quota_bytes`, `max_app_passwords`, and the sending limits `mailbox_*_per_*` and
`domain_*_per_*`; null: no limit); `usage` shows the figure each address limit is judged
against (what was sent: `/email-addresses/{id}/sending-limits`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from fastapi import Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

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
from postmeister.domain.packages import service
from postmeister.domain.packages.service import LIMITS, PackageUsage
from postmeister.models import Package

BASE: Final = "/packages"
TYPE: Final = "package"
routes = router(BASE, "packages (JSON:API)")
PackageId = Annotated[str, id_path("the package's id")]
_NO_LIMIT = "null: no limit"
_SENT = "sent by each mailbox (UTC hours and days), unless the mailbox has its own"
_SENT_DOMAIN = "sent by all mailboxes of each domain together"
_FORWARDING = (
    "whether the owner of a mailbox in the package may change its forwarding in the web"
    " self-service"
)
_DEFAULTS = (
    "null: no limit; left out on create: 200 messages and 500 recipients an hour, 1000"
    " messages and 2500 recipients a day"
)


class Usage(BaseModel):
    addresses: int = Field(description="against max_addresses")
    mailboxes: int = Field(description="against max_mailboxes")
    storage_bytes: int = Field(description="sum of the mailbox quotas, against max_storage_bytes")
    mailboxes_without_quota: int = Field(description="mailboxes without a quota of their own")
    largest_quota_bytes: int | None = Field(
        description="the largest mailbox quota, against max_quota_bytes; null: none has one"
    )
    most_app_passwords: int = Field(
        description="application passwords of the mailbox with most, against max_app_passwords"
    )


class PackageAttributes(BaseModel):
    name: str
    customer_id: int
    max_addresses: int | None = Field(description=_NO_LIMIT)
    max_mailboxes: int | None = Field(description=_NO_LIMIT)
    max_storage_bytes: int | None = Field(description=f"all mailbox quotas together; {_NO_LIMIT}")
    max_quota_bytes: int | None = Field(description=f"quota of one mailbox; {_NO_LIMIT}")
    max_app_passwords: int | None = Field(description=f"per mailbox; {_NO_LIMIT}")
    mailbox_messages_per_hour: int | None = Field(description=f"{_SENT}; {_NO_LIMIT}")
    mailbox_messages_per_day: int | None = Field(description=f"{_SENT}; {_NO_LIMIT}")
    mailbox_recipients_per_hour: int | None = Field(description=f"{_SENT}; {_NO_LIMIT}")
    mailbox_recipients_per_day: int | None = Field(description=f"{_SENT}; {_NO_LIMIT}")
    domain_messages_per_hour: int | None = Field(description=f"{_SENT_DOMAIN}; {_NO_LIMIT}")
    domain_messages_per_day: int | None = Field(description=f"{_SENT_DOMAIN}; {_NO_LIMIT}")
    domain_recipients_per_hour: int | None = Field(description=f"{_SENT_DOMAIN}; {_NO_LIMIT}")
    domain_recipients_per_day: int | None = Field(description=f"{_SENT_DOMAIN}; {_NO_LIMIT}")
    allow_self_service_forwarding: bool = Field(description=_FORWARDING)
    usage: Usage
    created_at: dt.datetime


class PackageResource(BaseModel):
    type: Literal["package"]
    id: str
    attributes: PackageAttributes
    links: SelfLink


class _Limits(Strict):
    max_addresses: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    max_mailboxes: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    max_storage_bytes: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    max_quota_bytes: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    max_app_passwords: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    mailbox_messages_per_hour: StrictInt | None = Field(default=None, description=_DEFAULTS)
    mailbox_messages_per_day: StrictInt | None = Field(default=None, description=_DEFAULTS)
    mailbox_recipients_per_hour: StrictInt | None = Field(default=None, description=_DEFAULTS)
    mailbox_recipients_per_day: StrictInt | None = Field(default=None, description=_DEFAULTS)
    domain_messages_per_hour: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    domain_messages_per_day: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    domain_recipients_per_hour: StrictInt | None = Field(default=None, description=_NO_LIMIT)
    domain_recipients_per_day: StrictInt | None = Field(default=None, description=_NO_LIMIT)


class PackageCreateAttributes(_Limits):
    name: StrictStr = Field(description="unique per customer, 1 to 200 characters")
    customer_id: StrictInt = Field(description="the customer the package is for")
    allow_self_service_forwarding: StrictBool = Field(
        default=False, description=f"{_FORWARDING}; left out: false"
    )


class PackageCreateResource(Strict):
    type: Literal["package"]
    attributes: PackageCreateAttributes
    meta: Members | None = None


class PackageCreateDocument(Strict):
    data: PackageCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


class PackagePatchAttributes(_Limits):
    """Only what is given changes; a limit set to null is lifted."""

    name: StrictStr = Field(default=None, description="a new name")  # type: ignore[assignment]
    allow_self_service_forwarding: StrictBool = Field(  # type: ignore[assignment]
        default=None, description=_FORWARDING
    )


class PackagePatchResource(Strict):
    type: Literal["package"]
    id: StrictStr
    attributes: PackagePatchAttributes
    meta: Members | None = None


class PackagePatchDocument(Strict):
    data: PackagePatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


def path_of(package_id: int) -> str:
    return f"{BASE}/{package_id}"


def resource(package: Package, usage: PackageUsage) -> PackageResource:
    limits: dict[str, Any] = {name: getattr(package, name) for name in LIMITS}
    return PackageResource(
        type="package",
        id=str(package.id),
        attributes=PackageAttributes(
            name=package.name,
            customer_id=package.customer_id,
            usage=Usage(
                addresses=usage.addresses,
                mailboxes=usage.mailboxes,
                storage_bytes=usage.storage_bytes,
                mailboxes_without_quota=usage.mailboxes_without_quota,
                largest_quota_bytes=usage.largest_quota_bytes,
                most_app_passwords=usage.most_app_passwords,
            ),
            created_at=package.created_at,
            allow_self_service_forwarding=package.allow_self_service_forwarding,
            **limits,
        ),
        links=self_link(path_of(package.id)),
    )


def _given_limits(attributes: _Limits) -> dict[str, int | None]:
    given = attributes.model_fields_set
    return {name: getattr(attributes, name) for name in LIMITS if name in given}


@routes.get("", response_model=CollectionDocument[PackageResource], summary="List packages")
def list_packages(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
    filter_customer_id: Annotated[
        int | None, Query(alias="filter[customer_id]", ge=1, le=requests.MAX_ID)
    ] = None,
) -> Response:
    """The packages the caller may see (a customer: its own), in id order, with usage."""
    query = page_query(
        size=page_size,
        after=page_after,
        before=page_before,
        filters={"customer_id": (filter_customer_id, None)},
    )
    with transaction(request) as session:
        page = service.list_package_page(
            session,
            actor,
            size=query.size,
            after=query.after,
            before=query.before,
            customer_id=query.filter("customer_id"),
        )
        usage = service.usage_of(session, [item.id for item in page.items])
        links = page_links(BASE, query, page, lambda item: item.id)
        return JsonApiResponse(
            collection([resource(item, usage[item.id]) for item in page.items], links)
        )


@routes.post(
    "",
    status_code=201,
    response_model=ResourceDocument[PackageResource],
    summary="Create a package",
)
def create_package(
    request: Request,
    body: Annotated[PackageCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Admins only. Limits left out are null (no limit), but for the mailbox sending limits,
    which get their defaults."""
    attributes = body.data.attributes
    new = service.NewPackage(
        customer_id=attributes.customer_id,
        name=attributes.name,
        limits=_given_limits(attributes),
        allow_self_service_forwarding=attributes.allow_self_service_forwarding,
    )
    with transaction(request) as session:
        package = service.create_package(session, actor, new)
        usage = service.usage_of(session, [package.id])
        answer = document(resource(package, usage[package.id]), path_of(package.id))
    return created(answer, path_of(package.id))


@routes.get(
    "/{package_id}", response_model=ResourceDocument[PackageResource], summary="Get a package"
)
def get_package(
    request: Request, package_id: PackageId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(package_id, TYPE)
    with transaction(request) as session:
        package = service.get_package(session, actor, key)
        usage = service.usage_of(session, [key])
        return JsonApiResponse(document(resource(package, usage[key]), path_of(key)))


@routes.patch(
    "/{package_id}",
    response_model=ResourceDocument[PackageResource],
    summary="Rename a package or change its limits",
)
def update_package(
    request: Request,
    package_id: PackageId,
    body: Annotated[PackagePatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Admins only. A limit below the current usage only stops further growth."""
    key = requests.parse_id(package_id, TYPE)
    requests.check_id(body.data.id, package_id)
    attributes = body.data.attributes
    changes = service.PackageChanges(
        name=attributes.name if "name" in attributes.model_fields_set else None,
        limits=_given_limits(attributes),
        allow_self_service_forwarding=attributes.allow_self_service_forwarding,
    )
    with transaction(request) as session:
        package = service.get_package(session, actor, key)
        service.update_package(session, actor, package, changes)
        usage = service.usage_of(session, [key])
        return JsonApiResponse(document(resource(package, usage[key]), path_of(key)))


@routes.delete("/{package_id}", status_code=204, summary="Delete a package")
def delete_package(
    request: Request, package_id: PackageId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    """Admins only; refused (409) while domains are in the package."""
    key = requests.parse_id(package_id, TYPE)
    with transaction(request) as session:
        package = service.get_package(session, actor, key)
        service.delete_package(session, actor, package)
    return Response(status_code=204)

"""`/domains` in the hosting dialect: JSON:API documents for mail domains (issue 12).

Admins add, move and delete domains and set alias relations; a customer reads its own
domains and sets their catch-all. Another customer's domain is a 404 like a missing one.
Same conventions as `/email-addresses` (`routes.py`): media types, error objects, keyset
pages with `page[size]`/`page[after]`/`page[before]` and links that carry the filters.
Each route parses, calls one service, renders; the rules are in `domain.domains`.

The keyset links (`_page_links`) are the only generic piece here, kept apart so that it can
move to a shared module with the other resources' helpers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from postmeister.api.common import app_state, current_actor, transaction
from postmeister.api.errors import InvalidQueryParameter
from postmeister.api.hosting import requests
from postmeister.api.hosting.errors import ErrorDocument
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse
from postmeister.api.hosting.render import VERSION, JsonApiObject, PageLinks, SelfLink, dump
from postmeister.api.hosting.requests import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE_SIZE
from postmeister.api.hosting.routes import JsonApiRoute
from postmeister.domain.access import Actor
from postmeister.domain.domains import service
from postmeister.domain.domains.service import DomainChanges, DomainPage
from postmeister.models import Domain

BASE_PATH: Final = "/domains"
DOMAIN: Final = "domain"
_FILTER_LENGTH: Final = 320
Members = dict[str, Any]

# ---------------------------------------------------------------------------- documents


class DomainAttributes(BaseModel):
    name: str = Field(description="the domain as entered (Unicode)")
    ascii_name: str = Field(description="the IDNA A-label, lowercase")
    customer_id: int
    package_id: int
    catchall: list[str] = Field(
        description="where mail to unknown local parts goes; empty: refused with 550"
    )
    alias_of: str | None = Field(
        description="the main domain, if this is an alias domain: x@this goes where x@main goes"
    )
    aliases: list[str] = Field(description="the alias domains of this domain")
    sync_source_id: int | None = Field(description="the sync source managing its addresses")
    created_at: dt.datetime


class DomainResource(BaseModel):
    type: Literal["domain"]
    id: str
    attributes: DomainAttributes
    links: SelfLink


class DomainDocument(BaseModel):
    jsonapi: JsonApiObject
    data: DomainResource
    links: SelfLink


class DomainCollectionDocument(BaseModel):
    jsonapi: JsonApiObject
    data: list[DomainResource]
    links: PageLinks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_CATCHALL = "addresses that receive mail for unknown local parts (the forward-target rules)"
_ALIAS = "make it an alias domain of this domain of the same customer; null: none"


class DomainCreateAttributes(_Strict):
    name: StrictStr = Field(description="the domain, Unicode or A-label", examples=["müller.de"])
    customer_id: StrictInt
    package_id: StrictInt | None = Field(
        default=None, description="a package of that customer; default: its default package"
    )
    catchall: list[StrictStr] = Field(default_factory=list, description=_CATCHALL)
    alias_of: StrictStr | None = Field(default=None, description=_ALIAS)


class DomainCreateResource(_Strict):
    type: Literal["domain"]
    attributes: DomainCreateAttributes
    meta: Members | None = None


class DomainCreateDocument(_Strict):
    data: DomainCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


def _optional(description: str) -> Any:
    """An attribute that may be left out (then it stays unchanged); no default in the schema."""
    return Field(default=None, description=description, json_schema_extra=_drop_default)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class DomainPatchAttributes(_Strict):
    customer_id: StrictInt = _optional("move to this customer (admins; addresses move along)")
    package_id: StrictInt = _optional("move to this package, which must be the customer's (admins)")
    catchall: list[StrictStr] = _optional(_CATCHALL + "; [] switches off")
    alias_of: StrictStr | None = _optional(_ALIAS + " (admins)")


class DomainPatchResource(_Strict):
    type: Literal["domain"]
    id: StrictStr
    attributes: DomainPatchAttributes = Field(default_factory=DomainPatchAttributes)
    meta: Members | None = None


class DomainPatchDocument(_Strict):
    data: DomainPatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


def changes_of(attributes: DomainPatchAttributes) -> DomainChanges:
    """Only the attributes present in the document; the others stay as they are."""
    given = attributes.model_fields_set
    values: dict[str, Any] = {
        name: getattr(attributes, name)
        for name in ("customer_id", "package_id", "catchall", "alias_of")
        if name in given
    }
    return DomainChanges(**values)


# ---------------------------------------------------------------------------- renderers


def domain_path(domain_id: int) -> str:
    return f"{BASE_PATH}/{domain_id}"


def _link(path: str) -> SelfLink:
    return SelfLink.model_validate({"self": path})


def _resource(domain: Domain) -> DomainResource:
    return DomainResource(
        type="domain",
        id=str(domain.id),
        attributes=DomainAttributes(
            name=domain.display_name,
            ascii_name=domain.name,
            customer_id=domain.customer_id,
            package_id=domain.package_id,
            catchall=[t.target for t in domain.catchall_targets],
            alias_of=domain.alias_of.display_name if domain.alias_of else None,
            aliases=[alias.display_name for alias in domain.aliases],
            sync_source_id=domain.sync_source_id,
            created_at=domain.created_at,
        ),
        links=_link(domain_path(domain.id)),
    )


def domain_document(domain: Domain) -> dict[str, Any]:
    return dump(
        DomainDocument(jsonapi=VERSION, data=_resource(domain), links=_link(domain_path(domain.id)))
    )


def _page_links(
    base: str,
    filters: dict[str, object | None],
    *,
    size: int,
    after: int | None,
    before: int | None,
    first_id: int | None,
    last_id: int | None,
    more_before: bool,
    more_after: bool,
) -> PageLinks:
    """Keyset links of one page: `filter[name]` for every filter given, the page size, and
    `prev`/`next` only when the service saw rows on that side."""

    def link(*, after_id: int | None = None, before_id: int | None = None) -> str:
        parameters = [(f"filter[{k}]", str(v)) for k, v in filters.items() if v is not None]
        parameters.append(("page[size]", str(size)))
        if after_id is not None:
            parameters.append(("page[after]", str(after_id)))
        if before_id is not None:
            parameters.append(("page[before]", str(before_id)))
        return f"{base}?{urlencode(parameters, quote_via=quote, safe='@')}"

    return PageLinks.model_validate(
        {
            "self": link(after_id=after, before_id=before),
            "first": link(),
            "prev": link(before_id=first_id) if first_id is not None and more_before else None,
            "next": link(after_id=last_id) if last_id is not None and more_after else None,
        }
    )


def domain_collection(page: DomainPage, query: DomainListQuery) -> dict[str, Any]:
    items = page.domains
    links = _page_links(
        BASE_PATH,
        {"customer_id": query.customer_id, "package_id": query.package_id, "name": query.name},
        size=query.size,
        after=query.after,
        before=query.before,
        first_id=items[0].id if items else None,
        last_id=items[-1].id if items else None,
        more_before=page.more_before,
        more_after=page.more_after,
    )
    return dump(
        DomainCollectionDocument(
            jsonapi=VERSION, data=[_resource(item) for item in items], links=links
        )
    )


class DomainListQuery(BaseModel):
    size: int = DEFAULT_PAGE_SIZE
    after: int | None = None
    before: int | None = None
    customer_id: int | None = None
    package_id: int | None = None
    name: str | None = None


# ---------------------------------------------------------------------------- routes

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorDocument, "description": description}
    for status, description in (
        (400, "malformed document or query parameter"),
        (401, "missing, unknown or expired API token"),
        (403, "read-only token, or a change only administrators may make"),
        (404, "no such domain, or not yours"),
        (406, "the Accept header does not allow application/vnd.api+json"),
        (409, "conflict with the current state (addresses left, alias relation, type/id)"),
        (415, "the body is not sent as application/vnd.api+json"),
        (422, "an attribute breaks a rule; each error names it in source.pointer and code"),
        (503, "database busy or unavailable; retry"),
    )
}

router = APIRouter(
    prefix=BASE_PATH,
    tags=["hosting (JSON:API): domains"],
    route_class=JsonApiRoute,
    default_response_class=JsonApiResponse,
    responses=_ERRORS,
    dependencies=[Security(HTTPBearer(auto_error=False))],
)

DomainId = Annotated[
    str,
    Path(description="the domain's id", json_schema_extra={"pattern": "^[1-9][0-9]{0,9}$"}),
]
CurrentActor = Annotated[Actor, Depends(current_actor)]


@router.get("", response_model=DomainCollectionDocument, summary="List domains")
def list_domains(
    request: Request,
    actor: CurrentActor,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=MAX_PAGE_SIZE)] = (
        DEFAULT_PAGE_SIZE
    ),
    page_after: Annotated[int | None, Query(alias="page[after]", ge=0, le=MAX_ID)] = None,
    page_before: Annotated[int | None, Query(alias="page[before]", ge=0, le=MAX_ID)] = None,
    filter_customer_id: Annotated[
        int | None, Query(alias="filter[customer_id]", ge=1, le=MAX_ID)
    ] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    filter_package_id: Annotated[
        int | None, Query(alias="filter[package_id]", ge=1, le=MAX_ID)
    ] = None,
    package_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    filter_name: Annotated[
        str | None, Query(alias="filter[name]", max_length=_FILTER_LENGTH)
    ] = None,
    name: Annotated[str | None, Query(max_length=_FILTER_LENGTH)] = None,
) -> Response:
    """The caller's domains (an admin's: all) in id order, one keyset page at a time."""
    if page_after is not None and page_before is not None:
        raise InvalidQueryParameter("page[before]", "use page[after] or page[before], not both")
    query = DomainListQuery(
        size=page_size,
        after=page_after,
        before=page_before,
        customer_id=_chosen("customer_id", filter_customer_id, customer_id),
        package_id=_chosen("package_id", filter_package_id, package_id),
        name=_chosen("name", filter_name, name),
    )
    with transaction(request) as session:
        page = service.list_domain_page(
            session,
            actor,
            size=query.size,
            after_id=query.after,
            before_id=query.before,
            customer_id=query.customer_id,
            package_id=query.package_id,
            name=query.name,
        )
        return JsonApiResponse(domain_collection(page, query))


def _chosen(name: str, bracketed: Any, bare: Any) -> Any:
    """A filter given as `filter[name]` or as the bare name (both: they must agree)."""
    if bracketed is not None and bare is not None and bracketed != bare:
        raise InvalidQueryParameter(name, f"differs from filter[{name}]; give one of them")
    return bracketed if bracketed is not None else bare


@router.post("", status_code=201, response_model=DomainDocument, summary="Add a domain")
def create_domain(
    request: Request,
    document: Annotated[DomainCreateDocument, Body(media_type=JSONAPI)],
    actor: CurrentActor,
) -> Response:
    """Admins: add a domain to a customer and one of its packages."""
    attributes = document.data.attributes
    with transaction(request) as session:
        created = service.create_domain(
            session,
            actor,
            name=attributes.name,
            customer_id=attributes.customer_id,
            package_id=attributes.package_id,
            catchall=attributes.catchall,
            alias_of=attributes.alias_of,
            dkim=app_state(request).settings.dkim,
        )
        body = domain_document(created)
        location = domain_path(created.id)
    return JsonApiResponse(body, status_code=201, headers={"Location": location})


@router.get("/{domain_id}", response_model=DomainDocument, summary="Get a domain")
def get_domain(request: Request, domain_id: DomainId, actor: CurrentActor) -> Response:
    key = requests.parse_id(domain_id, DOMAIN)
    with transaction(request) as session:
        return JsonApiResponse(domain_document(service.get_domain_by_id(session, actor, key)))


@router.patch("/{domain_id}", response_model=DomainDocument, summary="Change a domain")
def update_domain(
    request: Request,
    domain_id: DomainId,
    document: Annotated[DomainPatchDocument, Body(media_type=JSONAPI)],
    actor: CurrentActor,
) -> Response:
    """Move it to another package or customer, set its catch-all or alias relation: all
    given attributes at once, or none if one breaks a rule."""
    requests.check_id(document.data.id, domain_id)
    key = requests.parse_id(domain_id, DOMAIN)
    changes = changes_of(document.data.attributes)
    with transaction(request) as session:
        domain = service.get_domain_by_id(session, actor, key)
        service.update_domain(session, actor, domain, changes)
        return JsonApiResponse(domain_document(domain))


@router.delete("/{domain_id}", status_code=204, summary="Delete a domain")
def delete_domain(
    request: Request,
    domain_id: DomainId,
    actor: CurrentActor,
    cascade: Annotated[
        bool, Query(description="also delete its addresses and alias domains")
    ] = False,
) -> Response:
    """Admins. Refused (409) while the domain has addresses or alias domains, unless
    `cascade=true`."""
    key = requests.parse_id(domain_id, DOMAIN)
    with transaction(request) as session:
        domain = service.get_domain_by_id(session, actor, key)
        service.delete_domain(session, actor, domain, cascade=cascade)
    return Response(status_code=204)

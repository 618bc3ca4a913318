"""What every JSON:API resource of the hosting dialect shares besides `/email-addresses`:
the routers, the paging query parameters, keyset links, and the document shapes.

`/customers`, `/packages` and `/api-tokens` (and later `/domains`) are built from these, so
they page, link and fail exactly like `/email-addresses`: `page[size]` (1-500, default 50),
`page[after]` / `page[before]` (an id; one of them), links `self`, `first`, `prev`, `next`
carrying the filters and the page size, relative references, media type
`application/vnd.api+json`, error documents from `api/hosting/errors.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Generic, TypeVar

from fastapi import APIRouter, Path, Query, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict

from postmeister.api.errors import InvalidQueryParameter
from postmeister.api.hosting.media import JsonApiResponse
from postmeister.api.hosting.render import (
    VERSION,
    Body,
    JsonApiObject,
    PageLinks,
    SelfLink,
    dump,
    page_link,
)
from postmeister.api.hosting.requests import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE_SIZE
from postmeister.api.hosting.routes import ERRORS, JsonApiRoute
from postmeister.domain.paging import Page

R = TypeVar("R", bound=BaseModel)
Members = dict[str, Any]


class Strict(BaseModel):
    """A request document part: unknown members are refused (JSON:API asks for that)."""

    model_config = ConfigDict(extra="forbid")


def router(prefix: str, tag: str) -> APIRouter:
    """A router of the hosting dialect: authentication, media types and unknown query
    parameters are checked first (`JsonApiRoute`); answers are JSON:API documents."""
    return APIRouter(
        prefix=prefix,
        tags=[tag],
        route_class=JsonApiRoute,
        default_response_class=JsonApiResponse,
        responses=ERRORS,
        dependencies=[Security(HTTPBearer(auto_error=False))],
    )


_ID_SCHEMA: Final = {"pattern": "^[1-9][0-9]{0,9}$"}


def id_path(description: str) -> Any:
    """A path id, checked by `requests.parse_id` so that a malformed id is a 404."""
    return Path(description=description, json_schema_extra=_ID_SCHEMA)


PageSize = Annotated[
    int, Query(alias="page[size]", ge=1, le=MAX_PAGE_SIZE, description="at most 500")
]
PageAfter = Annotated[
    int | None, Query(alias="page[after]", ge=0, le=MAX_ID, description="the page after this id")
]
PageBefore = Annotated[
    int | None,
    Query(alias="page[before]", ge=0, le=MAX_ID, description="the page before this id"),
]
DEFAULT_SIZE: Final = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class PageQuery:
    """A list request, canonical: at most one cursor, each filter once (None: not given)."""

    size: int = DEFAULT_PAGE_SIZE
    after: int | None = None
    before: int | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)

    def filter(self, name: str) -> Any:
        return self.filters.get(name)


def page_query(
    *,
    size: int,
    after: int | None,
    before: int | None,
    filters: Mapping[str, tuple[Any, Any]] | None = None,
) -> PageQuery:
    """`filters` maps each filter name to (its `filter[name]` value, its bare-name value),
    as `/email-addresses` accepts both spellings."""
    if after is not None and before is not None:
        raise InvalidQueryParameter("page[before]", "use page[after] or page[before], not both")
    chosen: dict[str, Any] = {}
    for name, (bracketed, bare) in (filters or {}).items():
        if bracketed is not None and bare is not None and bracketed != bare:
            raise InvalidQueryParameter(name, f"differs from filter[{name}]; give one of them")
        chosen[name] = bracketed if bracketed is not None else bare
    return PageQuery(size=size, after=after, before=before, filters=chosen)


def list_link(
    base: str, query: PageQuery, *, after: int | None = None, before: int | None = None
) -> str:
    return page_link(base, query.filters, size=query.size, after=after, before=before)


def page_links(
    base: str, query: PageQuery, page: Page[Any], key: Callable[[Any], int]
) -> PageLinks:
    items = page.items
    return PageLinks.model_validate(
        {
            "self": list_link(base, query, after=query.after, before=query.before),
            "first": list_link(base, query),
            "prev": list_link(base, query, before=key(items[0]))
            if items and page.more_before
            else None,
            "next": list_link(base, query, after=key(items[-1]))
            if items and page.more_after
            else None,
        }
    )


def self_link(path: str) -> SelfLink:
    return SelfLink.model_validate({"self": path})


class ResourceDocument(BaseModel, Generic[R]):
    jsonapi: JsonApiObject
    data: R
    links: SelfLink


class CollectionDocument(BaseModel, Generic[R]):
    jsonapi: JsonApiObject
    data: list[R]
    links: PageLinks


def document(resource: BaseModel, path: str) -> Body:
    """One resource (the response model `ResourceDocument[...]` documents the shape)."""
    return {"jsonapi": dump(VERSION), "data": dump(resource), "links": dump(self_link(path))}


def collection(resources: list[Any], links: PageLinks) -> Body:
    return {
        "jsonapi": dump(VERSION),
        "data": [dump(resource) for resource in resources],
        "links": dump(links),
    }


def created(body: Body, location: str) -> JsonApiResponse:
    return JsonApiResponse(body, status_code=201, headers={"Location": location})

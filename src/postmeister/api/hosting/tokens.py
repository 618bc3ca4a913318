"""`/api-tokens`: create (the secret is shown once), list, get, revoke (DELETE).

Admins manage every token. A customer's token manages its customer's tokens that are no
wider than itself and creates only such tokens (`domain.tokens.service`); a read-only token
reads but never creates or revokes. A revoked token is refused (401) on its next request;
it stays listed, with `revoked_at`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

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
from postmeister.domain.tokens import service
from postmeister.models import ApiToken

BASE: Final = "/api-tokens"
TYPE: Final = "api-token"
routes = router(BASE, "API tokens (JSON:API)")
TokenId = Annotated[str, id_path("the API token's id")]


class TokenAttributes(BaseModel):
    label: str | None
    admin: bool
    customer_id: int | None = Field(description="null for admin tokens")
    read_only: bool
    domains: list[str] | None = Field(description="the domains it is limited to; null: all")
    expires_at: dt.datetime | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(description="to the minute")
    revoked_at: dt.datetime | None
    token: str | None = Field(
        default=None, description="the secret: only in the response that created it"
    )


class TokenResource(BaseModel):
    type: Literal["api-token"]
    id: str
    attributes: TokenAttributes
    links: SelfLink


class TokenCreateAttributes(Strict):
    label: StrictStr | None = Field(default=None, description="a note for people, at most 200")
    admin: StrictBool = Field(default=False, description="admins only: a token for everything")
    customer_id: StrictInt | None = Field(
        default=None, description="admins: whose token; customers: their own (may be left out)"
    )
    read_only: StrictBool = Field(default=False, description="refuse every write")
    domains: list[StrictStr] = Field(
        default_factory=list, description="limit to these domains of the customer"
    )
    expires_at: dt.datetime | None = Field(default=None, description="ISO 8601 with a zone")


class TokenCreateResource(Strict):
    type: Literal["api-token"]
    attributes: TokenCreateAttributes
    meta: Members | None = None


class TokenCreateDocument(Strict):
    data: TokenCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


def path_of(token_id: int) -> str:
    return f"{BASE}/{token_id}"


def resource(token: ApiToken, domains: list[str], secret: str | None = None) -> TokenResource:
    values = {
        "label": token.label,
        "admin": token.is_admin,
        "customer_id": token.customer_id,
        "read_only": token.read_only,
        "domains": domains if token.domain_limited else None,
        "expires_at": token.expires_at,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }
    if secret is not None:
        values["token"] = secret
    return TokenResource(
        type="api-token",
        id=str(token.id),
        attributes=TokenAttributes.model_validate(values),
        links=self_link(path_of(token.id)),
    )


@routes.get("", response_model=CollectionDocument[TokenResource], summary="List API tokens")
def list_tokens(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: PageSize = requests.DEFAULT_PAGE_SIZE,
    page_after: PageAfter = None,
    page_before: PageBefore = None,
    filter_customer_id: Annotated[
        int | None, Query(alias="filter[customer_id]", ge=1, le=requests.MAX_ID)
    ] = None,
) -> Response:
    """The tokens the caller may manage, in id order, without their secrets."""
    query = page_query(
        size=page_size,
        after=page_after,
        before=page_before,
        filters={"customer_id": (filter_customer_id, None)},
    )
    with transaction(request) as session:
        page = service.list_token_page(
            session,
            actor,
            size=query.size,
            after=query.after,
            before=query.before,
            customer_id=query.filter("customer_id"),
        )
        names = service.domain_names(session, page.items)
        links = page_links(BASE, query, page, lambda item: item.id)
        return JsonApiResponse(
            collection([resource(item, names[item.id]) for item in page.items], links)
        )


@routes.post(
    "",
    status_code=201,
    response_model=ResourceDocument[TokenResource],
    summary="Create an API token",
    response_description="created; the secret is in data.attributes.token, shown this once",
)
def create_token(
    request: Request,
    body: Annotated[TokenCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Never wider than the caller's own token: customers cannot create admin tokens or
    tokens of other customers; a domain-limited token only tokens limited to some of its
    domains; a token with an expiry only tokens that expire no later."""
    attributes = body.data.attributes
    wanted = service.TokenRequest(
        admin=attributes.admin,
        customer_id=attributes.customer_id,
        read_only=attributes.read_only,
        domains=tuple(attributes.domains),
        expires_at=attributes.expires_at,
        label=attributes.label,
    )
    with transaction(request) as session:
        issued = service.issue_token(session, actor, wanted)
        token = issued.token
        names = service.domain_names(session, [token])
        answer = document(resource(token, names[token.id], issued.secret), path_of(token.id))
    return created(answer, path_of(token.id))


@routes.get("/{token_id}", response_model=ResourceDocument[TokenResource], summary="Get a token")
def get_token(
    request: Request, token_id: TokenId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(token_id, TYPE)
    with transaction(request) as session:
        token = service.get_token(session, actor, key)
        names = service.domain_names(session, [token])
        return JsonApiResponse(document(resource(token, names[key]), path_of(key)))


@routes.delete("/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(
    request: Request, token_id: TokenId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    """Refused from the very next request on; revoking again changes nothing."""
    key = requests.parse_id(token_id, TYPE)
    with transaction(request) as session:
        token = service.get_token(session, actor, key)
        service.revoke_token(session, actor, token)
    return Response(status_code=204)

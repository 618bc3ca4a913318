"""`/domains/{id}/dkim-keys` in the hosting dialect: a domain's DKIM keys as JSON:API.

The list shows each published key (the signing one and any still in its overlap) with the
TXT record to publish; never a private key. A rotation (admins, and the domain's customer
with a write token) makes new keys sign at once. Another customer's domain: 404. The rules
live in `domain.dkim`; the domain is looked up through `domain.domains.service`, the one
tenancy statement.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from fastapi import APIRouter, Request, Response, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from postmeister.api.common import app_state, transaction
from postmeister.api.hosting import requests
from postmeister.api.hosting.domains import DOMAIN, CurrentActor, DomainId, domain_path
from postmeister.api.hosting.errors import ErrorDocument
from postmeister.api.hosting.media import JsonApiResponse
from postmeister.api.hosting.render import VERSION, JsonApiObject, SelfLink, dump
from postmeister.api.hosting.routes import JsonApiRoute
from postmeister.domain.dkim import service
from postmeister.domain.dkim.service import KeyView
from postmeister.domain.domains.service import get_domain_by_id


class DkimKeyAttributes(BaseModel):
    selector: str
    algorithm: Literal["rsa", "ed25519"]
    state: Literal["active", "overlap"] = Field(
        description="active: signs new mail; overlap: retired, published until published_until"
    )
    record_name: str = Field(description="where to publish the TXT record (A-label)")
    record_value: str = Field(description="the TXT record's value")
    created_at: dt.datetime
    retired_at: dt.datetime | None
    published_until: dt.datetime | None


class DkimKeyResource(BaseModel):
    type: Literal["dkim-key"]
    id: str
    attributes: DkimKeyAttributes


class DkimKeyCollectionDocument(BaseModel):
    jsonapi: JsonApiObject
    data: list[DkimKeyResource]
    links: SelfLink


def keys_path(domain_id: int) -> str:
    return f"{domain_path(domain_id)}/dkim-keys"


def _resource(key: KeyView) -> DkimKeyResource:
    return DkimKeyResource(
        type="dkim-key",
        id=str(key.id),
        attributes=DkimKeyAttributes.model_validate(
            {
                "selector": key.selector,
                "algorithm": key.algorithm,
                "state": key.state,
                "record_name": key.record.name,
                "record_value": key.record.value,
                "created_at": key.created_at,
                "retired_at": key.retired_at,
                "published_until": key.published_until,
            }
        ),
    )


def keys_document(domain_id: int, keys: list[KeyView]) -> dict[str, Any]:
    return dump(
        DkimKeyCollectionDocument(
            jsonapi=VERSION,
            data=[_resource(key) for key in keys],
            links=SelfLink.model_validate({"self": keys_path(domain_id)}),
        )
    )


_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorDocument, "description": description}
    for status, description in (
        (400, "malformed query parameter"),
        (401, "missing, unknown or expired API token"),
        (403, "read-only token"),
        (404, "no such domain, or not yours"),
        (406, "the Accept header does not allow application/vnd.api+json"),
        (503, "database busy or unavailable; retry"),
    )
}

router = APIRouter(
    prefix="/domains",
    tags=["hosting (JSON:API): domains"],
    route_class=JsonApiRoute,
    default_response_class=JsonApiResponse,
    responses=_ERRORS,
    dependencies=[Security(HTTPBearer(auto_error=False))],
)



@router.get(
    "/{domain_id}/dkim-keys",
    response_model=DkimKeyCollectionDocument,
    summary="List a domain's DKIM keys",
)
def list_dkim_keys(request: Request, domain_id: DomainId, actor: CurrentActor) -> Response:
    """The published keys: the signing ones and those in their overlap, each with the TXT
    record to publish. Private keys are never shown."""
    key = requests.parse_id(domain_id, DOMAIN)
    with transaction(request) as session:
        domain = get_domain_by_id(session, actor, key)
        return JsonApiResponse(keys_document(domain.id, service.list_keys(session, domain)))


@router.post(
    "/{domain_id}/dkim-keys/rotate",
    response_model=DkimKeyCollectionDocument,
    summary="Rotate a domain's DKIM keys",
)
def rotate_dkim_keys(request: Request, domain_id: DomainId, actor: CurrentActor) -> Response:
    """New keys sign from now on; the previous ones stay published for the configured
    overlap (`POSTMEISTER_DKIM__OVERLAP_DAYS`). Publish the new TXT records first if the
    DNS is not served from these records. Answers with the published keys."""
    key = requests.parse_id(domain_id, DOMAIN)
    settings = app_state(request).settings.dkim
    with transaction(request) as session:
        domain = get_domain_by_id(session, actor, key)
        service.rotate(session, actor, domain, settings)
        return JsonApiResponse(keys_document(domain.id, service.list_keys(session, domain)))

"""The hosting dialect: JSON:API documents under /email-addresses (email-addresses-api.de.txt).

Each route: parse the request (`requests.py`), call the services, render the document
(`render.py`). Ids are the addresses' integer ids, as strings. Every route authenticates
first, then checks the JSON:API media types and refuses unknown query parameters, all before
the body is parsed (`JsonApiRoute`).
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPBearer

from postmeister.api.common import app_state, current_actor, passwords_ahead, transaction
from postmeister.api.errors import InvalidQueryParameter
from postmeister.api.hosting import render, requests
from postmeister.api.hosting.errors import ErrorDocument
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse, check_accept, check_content_type
from postmeister.api.hosting.render import (
    ApplicationPasswordCollectionDocument,
    ApplicationPasswordDocument,
    EmailAddressCollectionDocument,
    EmailAddressDocument,
)
from postmeister.api.hosting.requests import (
    DEFAULT_PAGE_SIZE,
    MAX_ID,
    MAX_PAGE_SIZE,
    ApplicationPasswordCreateDocument,
    EmailAddressCreateDocument,
    EmailAddressPatchDocument,
)
from postmeister.api.routing import AuthenticatedRoute
from postmeister.domain.access import Actor
from postmeister.domain.addresses import service
from postmeister.domain.addresses.schemas import UNSET
from postmeister.domain.app_passwords import service as app_passwords
from postmeister.scheduler.clock import Calendar


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


class JsonApiRoute(AuthenticatedRoute):
    """After authentication and before FastAPI reads the body, checks what every JSON:API
    request must satisfy: an acceptable `Accept`, the JSON:API `Content-Type` on any body,
    and no query parameter the route does not declare (JSON:API asks for 400 there, not
    silence)."""

    @cached_property
    def declared_query(self) -> frozenset[str]:
        return _query_names(self.dependant)

    async def check_request(self, request: Request) -> None:
        check_accept(request.headers.get("accept"))
        for name in request.query_params:
            if name not in self.declared_query:
                raise InvalidQueryParameter(name, "this endpoint has no such query parameter")
        if await request.body():
            check_content_type(request.headers.get("content-type"))


ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorDocument, "description": description}
    for status, description in (
        (400, "malformed document or query parameter"),
        (401, "missing, unknown or expired API token"),
        (403, "read-only token, or a client-generated id"),
        (404, "no such resource, or not yours"),
        (406, "the Accept header does not allow application/vnd.api+json"),
        (409, "conflict with the current state, or type/id not matching the endpoint"),
        (413, "request body too large"),
        (415, "the body is not sent as application/vnd.api+json"),
        (422, "an attribute breaks a rule; each error names it in source.pointer and code"),
        (503, "database busy or unavailable; retry"),
    )
}

router = APIRouter(
    prefix=render.BASE_PATH,
    tags=["hosting (JSON:API)"],
    route_class=JsonApiRoute,
    default_response_class=JsonApiResponse,
    responses=ERRORS,
    # Documents the bearer scheme in OpenAPI; `current_actor` does the checking.
    dependencies=[Security(HTTPBearer(auto_error=False))],
)

# Ids are checked by `parse_id`, so that any malformed id is a 404 like a missing one;
# the pattern only documents them.
_ID_SCHEMA: Final = {"pattern": "^[1-9][0-9]{0,9}$"}
AddressId = Annotated[
    str, Path(description="the address's id", examples=["42"], json_schema_extra=_ID_SCHEMA)
]
AppPasswordId = Annotated[
    str, Path(description="the application password's id", json_schema_extra=_ID_SCHEMA)
]
_FILTER_LENGTH: Final = 320


def _calendar(request: Request) -> Calendar:
    calendar: Calendar = request.app.state.calendar
    return calendar


def _today(request: Request) -> dt.date:
    return _calendar(request).today()


def _created(body: render.Body, location: str) -> JsonApiResponse:
    return JsonApiResponse(body, status_code=201, headers={"Location": location})


# ---------------------------------------------------------------------------- email addresses


@router.get("", response_model=EmailAddressCollectionDocument, summary="List email addresses")
def list_email_addresses(
    request: Request,
    actor: Annotated[Actor, Depends(current_actor)],
    page_size: Annotated[
        int, Query(alias="page[size]", ge=1, le=MAX_PAGE_SIZE, description="at most 500")
    ] = DEFAULT_PAGE_SIZE,
    page_after: Annotated[
        int | None,
        Query(alias="page[after]", ge=0, le=MAX_ID, description="the page after this id"),
    ] = None,
    page_before: Annotated[
        int | None,
        Query(alias="page[before]", ge=0, le=MAX_ID, description="the page before this id"),
    ] = None,
    filter_package_id: Annotated[
        int | None, Query(alias="filter[package_id]", ge=1, le=MAX_ID)
    ] = None,
    package_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    filter_address: Annotated[
        str | None, Query(alias="filter[address]", max_length=_FILTER_LENGTH)
    ] = None,
    address: Annotated[str | None, Query(max_length=_FILTER_LENGTH)] = None,
    filter_domain: Annotated[
        str | None,
        Query(alias="filter[domain]", max_length=_FILTER_LENGTH, description="no subdomains"),
    ] = None,
    domain: Annotated[str | None, Query(max_length=_FILTER_LENGTH)] = None,
) -> Response:
    """The caller's addresses in id order, one keyset page at a time: follow `links.next`
    and `links.prev`. Filters may be given as `filter[name]` or as the bare name."""
    query = requests.list_query(
        size=page_size,
        after=page_after,
        before=page_before,
        filters={
            "package_id": (filter_package_id, package_id),
            "address": (filter_address, address),
            "domain": (filter_domain, domain),
        },
    )
    today = _today(request)
    with transaction(request) as session:
        page = service.list_address_page(
            session,
            actor,
            size=query.size,
            after_id=query.after,
            before_id=query.before,
            package_id=query.package_id,
            address=query.address,
            domain=query.domain,
        )
        return JsonApiResponse(render.email_address_collection(page, query, today=today))


@router.post(
    "",
    status_code=201,
    response_model=EmailAddressDocument,
    summary="Create an email address",
    response_description="created; a generated password is in data.attributes.password",
)
def create_email_address(
    request: Request,
    document: Annotated[EmailAddressCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Create a mailbox or a forward. A mailbox created without a password gets a strong
    generated one, returned once as `data.attributes.password`."""
    new = requests.new_address(document.data.attributes)
    today = _today(request)
    passwords = passwords_ahead(request, new.password if new.kind == "mailbox" else UNSET)
    with transaction(request) as session:
        created = service.create_address(
            session,
            actor,
            new,
            passwords=passwords,
            max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
        )
        body = render.email_address_document(
            created.address, today=today, password=created.generated_password
        )
    return _created(body, render.email_address_path(created.address.id))


@router.get("/{address_id}", response_model=EmailAddressDocument, summary="Get an email address")
def get_email_address(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    today = _today(request)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        return JsonApiResponse(render.email_address_document(address, today=today))


@router.patch(
    "/{address_id}", response_model=EmailAddressDocument, summary="Change an email address"
)
def update_email_address(
    request: Request,
    address_id: AddressId,
    document: Annotated[EmailAddressPatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Change any number of attributes at once: all of them or, if one breaks a rule, none.
    Attributes left out stay as they are. `data.id` must equal the id in the URL."""
    requests.check_id(document.data.id, address_id)
    key = requests.parse_id(address_id)
    changes = requests.address_changes(document.data.attributes)
    today = _today(request)
    passwords = passwords_ahead(request, changes.password)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        service.update_address(
            session,
            actor,
            address,
            changes,
            passwords=passwords,
            today=today,
            max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
        )
        return JsonApiResponse(render.email_address_document(address, today=today))


@router.delete(
    "/{address_id}",
    status_code=204,
    summary="Delete an email address",
)
def delete_email_address(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        service.delete_address(session, actor, address)
    return Response(status_code=204)


@router.post(
    "/{address_id}/password",
    response_model=EmailAddressDocument,
    summary="Give a mailbox a new generated password",
    response_description="the new password is in data.attributes.password, shown this once",
)
def reset_password(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    today = _today(request)
    passwords = passwords_ahead(request, None)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        generated = service.reset_password(session, actor, address, passwords=passwords)
        return JsonApiResponse(
            render.email_address_document(address, today=today, password=generated)
        )


# ---------------------------------------------------------------------------- forward targets


@router.post(
    "/{address_id}/forward-to/{target}",
    response_model=EmailAddressDocument,
    summary="Add one forward target",
)
def add_forward_target(
    request: Request,
    address_id: AddressId,
    target: Annotated[str, Path(description="the address to forward to")],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Adds `target` to `forward_to` (adding one already there changes nothing)."""
    key = requests.parse_id(address_id)
    today = _today(request)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        service.add_forward_target(
            session, actor, address, target, passwords=app_state(request).passwords
        )
        return JsonApiResponse(render.email_address_document(address, today=today))


@router.delete(
    "/{address_id}/forward-to/{target}",
    response_model=EmailAddressDocument,
    summary="Remove one forward target",
)
def remove_forward_target(
    request: Request,
    address_id: AddressId,
    target: Annotated[str, Path(description="the forward target to remove")],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Removes `target` from `forward_to`; a forward keeps at least one target."""
    key = requests.parse_id(address_id)
    today = _today(request)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        service.remove_forward_target(
            session, actor, address, target, passwords=app_state(request).passwords
        )
        return JsonApiResponse(render.email_address_document(address, today=today))


# ---------------------------------------------------------------------------- app passwords


@router.get(
    "/{address_id}/application-passwords",
    response_model=ApplicationPasswordCollectionDocument,
    summary="List a mailbox's application passwords (without secrets)",
)
def list_application_passwords(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        found = app_passwords.list_app_passwords(session, address)
        return JsonApiResponse(render.app_password_collection(address.id, found))


@router.post(
    "/{address_id}/application-passwords",
    status_code=201,
    response_model=ApplicationPasswordDocument,
    summary="Create an application password",
    response_description="created; the secret is in data.attributes.password, shown this once",
)
def create_application_password(
    request: Request,
    address_id: AddressId,
    document: Annotated[ApplicationPasswordCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    key = requests.parse_id(address_id)
    attributes = document.data.attributes
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        issued = app_passwords.create_app_password(
            session,
            actor,
            address,
            device=attributes.device,
            application=attributes.application,
        )
        created = issued.app_password
        body = render.app_password_document(created, secret=issued.secret)
    return _created(body, render.app_password_path(created.address_id, created.id))


@router.get(
    "/{address_id}/application-passwords/{app_password_id}",
    response_model=ApplicationPasswordDocument,
    summary="Get an application password (without its secret)",
)
def get_application_password(
    request: Request,
    address_id: AddressId,
    app_password_id: AppPasswordId,
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    key = requests.parse_id(address_id)
    app_key = requests.parse_id(app_password_id, requests.APPLICATION_PASSWORD)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        found = app_passwords.get_app_password(session, address, app_key)
        return JsonApiResponse(render.app_password_document(found))


@router.delete(
    "/{address_id}/application-passwords/{app_password_id}",
    status_code=204,
    summary="Revoke an application password",
)
def delete_application_password(
    request: Request,
    address_id: AddressId,
    app_password_id: AppPasswordId,
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    key = requests.parse_id(address_id)
    app_key = requests.parse_id(app_password_id, requests.APPLICATION_PASSWORD)
    with transaction(request) as session:
        address = service.get_address(session, actor, key)
        app_passwords.delete_app_password(session, actor, address, app_key)
    return Response(status_code=204)

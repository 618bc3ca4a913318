"""The controller dialect: /mail/account/ and /mail/alias/ (controller-api.txt).

Each route: parse parameters, call one service, render. Ids are full addresses.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from postmeister.api.common import (
    app_state,
    current_actor,
    fields_renamed,
    passwords_ahead,
    transaction,
)
from postmeister.api.controller import render
from postmeister.api.controller.lists import MAX_PAGE_SIZE, address_list
from postmeister.api.controller.params import (
    AccountCreate,
    AliasCreate,
    AliasUpdate,
    NoParams,
    PasswordParams,
    SpoofingWhitelistParams,
    parse,
    read_params,
)
from postmeister.api.routing import AuthenticatedRoute
from postmeister.domain.access import Actor
from postmeister.domain.addresses import service
from postmeister.domain.addresses.service import AddressChanges, NewAddress
from postmeister.domain.addresses.syntax import split_comma_list

router = APIRouter(prefix="/mail", tags=["controller"], route_class=AuthenticatedRoute)
Params = dict[str, Any]
ALIAS_FIELDS = {"forward_to": "to"}

_FORM_AND_JSON: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        }
    }
}


def _change_account(
    request: Request, actor: Actor, account_id: str, changes: AddressChanges
) -> dict[str, Any]:
    passwords = passwords_ahead(request, changes.password)
    with transaction(request) as session:
        address = service.get_address(session, actor, account_id, kind="mailbox")
        service.update_address(session, actor, address, changes, passwords=passwords)
        return render.account(address)


@router.post("/account/", status_code=201, openapi_extra=_FORM_AND_JSON)
def create_account(
    request: Request, params: Params = Depends(read_params), actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    body = parse(AccountCreate, params)
    new = NewAddress(
        local_part=body.name,
        domain=body.domain,
        kind="mailbox",
        password=body.password,
        submission_disabled=body.submission_disabled,
        spoofing_whitelist=split_comma_list(body.spoofing_whitelist),
        subaddress_extension=body.subaddress_extension,
    )
    passwords = passwords_ahead(request, body.password)
    with transaction(request) as session:
        created = service.create_address(
            session,
            actor,
            new,
            passwords=passwords,
            max_quota_bytes=app_state(request).settings.addresses.max_quota_bytes,
        )
        return render.account(created.address)


_LIST: dict[str, Any] = {
    "parameters": [
        {"name": "page", "in": "query", "schema": {"type": "string"}},
        {
            "name": "page_size",
            "in": "query",
            "schema": {"type": "integer", "maximum": MAX_PAGE_SIZE},
        },
    ]
}


@router.get("/account/", response_model=None, openapi_extra=_LIST)
def list_accounts(
    request: Request, domain: str | None = None, actor: Actor = Depends(current_actor)
) -> Response:
    """A plain array of every account (streamed); DRF's page envelope with `page` or
    `page_size` (`controller/lists.py`)."""
    return address_list(request, actor, kind="mailbox", domain=domain, render=render.account)


@router.get("/account/{account_id}/")
def get_account(
    request: Request, account_id: str, actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    with transaction(request) as session:
        return render.account(service.get_address(session, actor, account_id, kind="mailbox"))


@router.delete("/account/{account_id}/", status_code=204)
def delete_account(
    request: Request, account_id: str, actor: Actor = Depends(current_actor)
) -> Response:
    with transaction(request) as session:
        address = service.get_address(session, actor, account_id, kind="mailbox")
        service.delete_address(session, actor, address)
    return Response(status_code=204)


@router.post("/account/{account_id}/set_password/", openapi_extra=_FORM_AND_JSON)
def set_password(
    request: Request,
    account_id: str,
    params: Params = Depends(read_params),
    actor: Actor = Depends(current_actor),
) -> dict[str, Any]:
    body = parse(PasswordParams, params)
    return _change_account(request, actor, account_id, AddressChanges(password=body.password))


def _add_switch(action: str, changes: AddressChanges, summary: str) -> None:
    """`POST /mail/account/{id}/<action>/`: an endpoint without parameters that sets one flag."""

    def switch(
        request: Request,
        account_id: str,
        params: Params = Depends(read_params),
        actor: Actor = Depends(current_actor),
    ) -> dict[str, Any]:
        parse(NoParams, params)
        return _change_account(request, actor, account_id, changes)

    router.add_api_route(
        f"/account/{{account_id}}/{action}/",
        switch,
        methods=["POST"],
        name=action,
        summary=summary,
    )


for _action, _changes, _summary in (
    ("disable_submission", AddressChanges(submission_disabled=True), "Disable Submission"),
    ("enable_submission", AddressChanges(submission_disabled=False), "Enable Submission"),
    # Beyond the spec, as the original product had it: local+anything@domain reaches the
    # account (dataplane contract `SUBADDRESS_LOOKUP`).
    ("enable_subaddress", AddressChanges(subaddress_extension=True), "Enable Subaddress"),
    ("disable_subaddress", AddressChanges(subaddress_extension=False), "Disable Subaddress"),
):
    _add_switch(_action, _changes, _summary)


@router.post("/account/{account_id}/set_spoofing_whitelist/", openapi_extra=_FORM_AND_JSON)
def set_spoofing_whitelist(
    request: Request,
    account_id: str,
    params: Params = Depends(read_params),
    actor: Actor = Depends(current_actor),
) -> dict[str, Any]:
    body = parse(SpoofingWhitelistParams, params)
    changes = AddressChanges(spoofing_whitelist=split_comma_list(body.spoofing_whitelist))
    return _change_account(request, actor, account_id, changes)


@router.post("/alias/", status_code=201, openapi_extra=_FORM_AND_JSON)
def create_alias(
    request: Request, params: Params = Depends(read_params), actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    body = parse(AliasCreate, params)
    new = NewAddress(
        local_part=body.name,
        domain=body.domain,
        kind="forward",
        forward_to=split_comma_list(body.to),
    )
    with transaction(request) as session, fields_renamed(ALIAS_FIELDS):
        created = service.create_address(
            session, actor, new, passwords=app_state(request).passwords
        )
        return render.alias(created.address)


@router.get("/alias/", response_model=None, openapi_extra=_LIST)
def list_aliases(
    request: Request, domain: str | None = None, actor: Actor = Depends(current_actor)
) -> Response:
    """As `list_accounts`, for aliases."""
    return address_list(request, actor, kind="forward", domain=domain, render=render.alias)


@router.get("/alias/{alias_id}/")
def get_alias(
    request: Request, alias_id: str, actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    with transaction(request) as session:
        return render.alias(service.get_address(session, actor, alias_id, kind="forward"))


@router.put("/alias/{alias_id}/", openapi_extra=_FORM_AND_JSON)
def update_alias(
    request: Request,
    alias_id: str,
    params: Params = Depends(read_params),
    actor: Actor = Depends(current_actor),
) -> dict[str, Any]:
    body = parse(AliasUpdate, params)
    with transaction(request) as session, fields_renamed(ALIAS_FIELDS):
        address = service.get_address(session, actor, alias_id, kind="forward")
        service.update_address(
            session,
            actor,
            address,
            AddressChanges(forward_to=split_comma_list(body.to)),
            passwords=app_state(request).passwords,
        )
        return render.alias(address)


@router.delete("/alias/{alias_id}/", status_code=204)
def delete_alias(
    request: Request, alias_id: str, actor: Actor = Depends(current_actor)
) -> Response:
    with transaction(request) as session:
        address = service.get_address(session, actor, alias_id, kind="forward")
        service.delete_address(session, actor, address)
    return Response(status_code=204)

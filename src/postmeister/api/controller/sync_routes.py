"""Sync sources of the Basic JSON API: /sync/sources/ (controller dialect, problem details)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from postmeister.api.common import app_state, current_actor, transaction
from postmeister.api.controller import render
from postmeister.api.controller.params import SyncSourceCreate, parse, read_params
from postmeister.api.routing import AuthenticatedRoute
from postmeister.domain.access import Actor
from postmeister.domain.sync_sources import service
from postmeister.models import SyncSource

router = APIRouter(prefix="/sync/sources", tags=["sync"], route_class=AuthenticatedRoute)


def _show(session: Session, source: SyncSource) -> dict[str, Any]:
    return render.sync_source(
        source, service.managed_domains(session, source), service.recent_runs(session, source)
    )


_SOURCE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            kind: {
                "schema": {
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string"},
                        "interval_seconds": {"type": "integer"},
                        "customer_id": {"type": "integer", "description": "admin tokens only"},
                    },
                }
            }
            for kind in ("application/json", "application/x-www-form-urlencoded")
        }
    }
}


@router.post("/", status_code=201, openapi_extra=_SOURCE_BODY)
def create_source(
    request: Request,
    params: dict[str, Any] = Depends(read_params),
    actor: Actor = Depends(current_actor),
) -> dict[str, Any]:
    body = parse(SyncSourceCreate, params)
    with transaction(request) as session:
        created = service.create_source(
            session,
            actor,
            url=body.url,
            interval_seconds=body.interval_seconds,
            customer_id=body.customer_id,
            settings=app_state(request).settings.sync,
        )
        return _show(session, created)


@router.get("/")
def list_sources(request: Request, actor: Actor = Depends(current_actor)) -> list[dict[str, Any]]:
    with transaction(request) as session:
        return [_show(session, source) for source in service.list_sources(session, actor)]


@router.get("/{source_id}/")
def get_source(
    request: Request, source_id: int, actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    with transaction(request) as session:
        return _show(session, service.get_source(session, actor, source_id))


@router.delete("/{source_id}/", status_code=204)
def delete_source(
    request: Request, source_id: int, actor: Actor = Depends(current_actor)
) -> Response:
    with transaction(request) as session:
        service.delete_source(session, actor, service.get_source(session, actor, source_id))
    return Response(status_code=204)


@router.post("/{source_id}/confirm/")
def confirm_source(
    request: Request, source_id: int, actor: Actor = Depends(current_actor)
) -> dict[str, Any]:
    """Allow the held document (it deletes many addresses) to be applied, now."""
    with transaction(request) as session:
        source = service.get_source(session, actor, source_id)
        return _show(session, service.confirm_held_document(session, actor, source))

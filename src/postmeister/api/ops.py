"""The operator's endpoints: `/healthz`, `/readyz` (no authentication) and `/metrics`.

- `GET /healthz`: 200 while the process serves HTTP; touches nothing else.
- `GET /readyz`: 200 when every readiness check passes (`postmeister.ops.health`), 503
  naming the failing checks otherwise; the body lists each check with its detail.
- `GET /metrics`: the Prometheus text format, for an **admin** API token only (401 without
  a token, 403 with a customer's): the metrics describe every tenant's traffic.

The health endpoints answer on plain HTTP too (see `transport.Transport`): a load balancer's
check carries no secret and often cannot speak to a self-signed backend.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from postmeister.api.common import current_actor
from postmeister.api.routing import AuthenticatedRoute
from postmeister.domain.access import Actor
from postmeister.errors import PermissionDenied
from postmeister.ops import health, metrics

probes = APIRouter(include_in_schema=False)
scrape = APIRouter(include_in_schema=False, route_class=AuthenticatedRoute)


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    scheduler = request.app.state.scheduler
    result = await run_in_threadpool(
        health.readiness,
        request.app.state.engine,
        scheduler_enabled=request.app.state.postmeister.settings.scheduler.enabled,
        scheduler_problem=scheduler.problem,
    )
    body: dict[str, Any] = {
        "status": "ready" if result.ready else "not ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in result.checks},
    }
    if not result.ready:
        body["failing"] = result.failing
    return JSONResponse(body, status_code=200 if result.ready else 503)


@scrape.get("/metrics")
def metrics_endpoint(actor: Actor = Depends(current_actor)) -> Response:
    if not actor.is_admin:
        raise PermissionDenied("the metrics need an admin API token")
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

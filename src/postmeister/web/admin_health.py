"""The administration's health page: is the database reachable (at the schema this code
expects) and the scheduler running — the checks of `/readyz` (`ops.health`); does each
data-plane daemon answer and read the contract — the checks of `postmeister dataplane
status` (`dataplane.status`); and which sync sources failed on their latest run.

The daemons are probed on the installed system's addresses, unless the application was
given other targets (`app.state.dataplane_targets`, e.g. a private stack's).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postmeister.api.common import app_state, transaction
from postmeister.dataplane import status
from postmeister.domain.sync_sources import service as sync_sources
from postmeister.ops import health
from postmeister.web import security
from postmeister.web.auth import Admin
from postmeister.web.templating import page

router = APIRouter(prefix=security.PREFIX + "/admin", include_in_schema=False)


def _targets(request: Request) -> status.Targets:
    given = getattr(request.app.state, "dataplane_targets", None)
    if isinstance(given, status.Targets):
        return given
    return status.system_targets(app_state(request).settings)


@router.get("/health")
def health_page(request: Request, who: Admin) -> Response:
    readiness = health.readiness(
        request.app.state.engine,
        scheduler_enabled=app_state(request).settings.scheduler.enabled,
        scheduler_problem=request.app.state.scheduler.problem,
    )
    daemons = status.status(_targets(request))
    with transaction(request) as session:
        failing = sync_sources.failing_sources(session, who.actor)
        return page(request, who, "admin/health.html", checks=readiness.checks,
                    daemons=daemons["daemons"], daemons_ok=daemons["ok"],
                    failing=failing)  # fmt: skip

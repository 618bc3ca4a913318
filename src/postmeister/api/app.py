"""create_app(): the ASGI application serving both API dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from postmeister.api import clientconfig, dialects, docs, ops, placement
from postmeister.api.common import AppState
from postmeister.api.controller.routes import router as controller_router
from postmeister.api.controller.sync_routes import router as sync_router
from postmeister.api.hosting import (
    audit,
    customers,
    dns,
    packages,
    sending_limits,
    tokens,
    webhooks,
)
from postmeister.api.hosting.dkim import router as dkim_router
from postmeister.api.hosting.domains import router as domains_router
from postmeister.api.hosting.routes import router as hosting_router
from postmeister.api.observe import Observe
from postmeister.api.transport import Transport
from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory
from postmeister.domain.passwords.service import Passwords
from postmeister.domain.webhooks.dispatch import dispatching
from postmeister.ops import metrics
from postmeister.scheduler.clock import Calendar, Clock, system_clock
from postmeister.scheduler.runner import Scheduler, running
from postmeister.web.routes import install as install_web


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """The application. `clock` (aware instants) is what "now" means for the local day the
    hosting dialect shows and for the scheduler; tests pass a controlled one."""
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
    metrics.instrument_engine(engine)
    state = AppState(
        settings=settings,
        sessions=make_session_factory(engine),
        passwords=Passwords(settings.passwords),
    )
    calendar = Calendar.named(settings.scheduler.timezone, clock)
    scheduler = Scheduler(state.sessions, calendar, settings=settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            async with AsyncExitStack() as background:
                if settings.scheduler.enabled:
                    # Catches up first (every job once), so that switches missed while the
                    # controller was down are applied before the first request is served.
                    await background.enter_async_context(
                        running(scheduler, tick_seconds=settings.scheduler.tick_seconds)
                    )
                if settings.scheduler.enabled and settings.webhooks.enabled:
                    # Background work, like the scheduler's (off with it): sends at once what
                    # a previous run left queued, then every poll_seconds.
                    await background.enter_async_context(
                        dispatching(state.sessions, settings.webhooks)
                    )
                yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Postmeister",
        version="1",
        summary="Mail hosting control plane: controller and hosting API dialects",
        lifespan=lifespan,
        # Served by `docs.install` from local assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.postmeister = state
    app.state.calendar = calendar
    app.state.scheduler = scheduler
    app.state.engine = engine
    dialects.install(app)
    docs.install(app)

    app.include_router(controller_router)
    app.include_router(hosting_router)
    app.include_router(sending_limits.routes)
    app.include_router(customers.routes)
    app.include_router(packages.routes)
    app.include_router(tokens.routes)
    app.include_router(domains_router)
    app.include_router(dns.routes)
    app.include_router(dkim_router)
    app.include_router(webhooks.routes)
    app.include_router(sync_router)
    app.include_router(audit.routes)
    app.include_router(ops.probes)
    app.include_router(ops.scrape)
    app.include_router(clientconfig.router)
    app.include_router(placement.routes)
    # The web interface (customer menu, self-service, admin): HTML pages under /ui.
    install_web(app)
    app.add_middleware(
        Transport,
        max_body=settings.http.max_body_bytes,
        behind_tls_proxy=settings.http.behind_tls_proxy,
    )
    # Added last, so outermost: request id, access line and metrics for every answer.
    app.add_middleware(Observe)
    return app

"""create_app(): the ASGI application serving both API dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmeister.api import errors
from postmeister.api.common import AppState
from postmeister.api.controller.routes import router as controller_router
from postmeister.api.controller.sync_routes import router as sync_router
from postmeister.api.hosting.routes import router as hosting_router
from postmeister.config import Settings
from postmeister.db import make_engine, make_session_factory
from postmeister.domain.passwords.service import Passwords
from postmeister.scheduler.clock import Calendar, Clock, system_clock
from postmeister.scheduler.runner import Scheduler, running


class LimitsAndTransport:
    """Refuse plain HTTP and oversized bodies before any route runs.

    Plain HTTP is accepted only with `behind_tls_proxy`, and then only for requests the
    proxy marks with `X-Forwarded-Proto: https`.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, behind_tls_proxy: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.behind_tls_proxy = behind_tls_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal: Exception | None = None
        length = headers.get("content-length", "")
        if not self._is_https(scope, headers):
            refusal = errors.HttpsRequired()
        elif length.isdigit() and int(length) > self.max_body:
            refusal = errors.BodyTooLarge(self.max_body)
        if refusal is not None:
            response = errors.render(refusal, Request(scope))
            await response(scope, receive, send)
            return
        received = 0
        limit = self.max_body

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise errors.BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)

    def _is_https(self, scope: Scope, headers: dict[str, str]) -> bool:
        if scope.get("scheme") == "https":
            return True
        if self.behind_tls_proxy:
            return headers.get("x-forwarded-proto", "").lower() == "https"
        return False


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """The application. `clock` (aware instants) is what "now" means for the local day the
    hosting dialect shows and for the scheduler; tests pass a controlled one."""
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
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
            if settings.scheduler.enabled:
                # Catches up first (every job once), so that switches missed while the
                # controller was down are applied before the first request is served.
                async with running(scheduler, tick_seconds=settings.scheduler.tick_seconds):
                    yield
            else:
                yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Postmeister",
        version="1",
        summary="Mail hosting control plane: controller and hosting API dialects",
        lifespan=lifespan,
    )
    app.state.postmeister = state
    app.state.calendar = calendar
    app.state.scheduler = scheduler
    errors.install(app)

    app.include_router(controller_router)
    app.include_router(hosting_router)
    app.include_router(sync_router)
    app.add_middleware(
        LimitsAndTransport,
        max_body=settings.http.max_body_bytes,
        behind_tls_proxy=settings.http.behind_tls_proxy,
    )
    return app

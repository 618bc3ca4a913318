"""The route class of every API route: authenticate first, then look at the request.

FastAPI reads and parses a route's body before it solves any dependency, and it solves
dependencies in the order they are declared, so `Depends(current_actor)` alone would let
anyone without a token reach the body parser. `AuthenticatedRoute` runs, in this order and
before FastAPI touches the body:

1. authentication (`current_actor`; no token: 401, whatever the body holds);
2. the dialect's own request checks (`check_request`: media types, query parameters);
3. for routes whose body FastAPI parses as JSON, the body decoded by `decode_json`, so that
   a malformed body is a 400 (`MalformedBody`) and never reaches FastAPI's parser.

Any error of the route, a bug included, is answered here in the route's dialect, so that the
response still passes `transport.Transport` and gets its headers (Starlette would answer a
bug outside every middleware).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from postmeister.api import dialects
from postmeister.api.common import current_actor, decode_json, media_type


class AuthenticatedRoute(APIRoute):
    async def check_request(self, request: Request) -> None:
        """Checks a dialect makes after authentication and before the body is parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        parses_body = self.body_field is not None

        async def authenticated(request: Request) -> Response:
            try:
                # A database lookup: in the thread pool, like every synchronous dependency.
                await run_in_threadpool(current_actor, request)
                await self.check_request(request)
                if parses_body:
                    raw = await request.body()
                    kind = media_type(request)
                    if raw and (kind == "application/json" or kind.endswith("+json")):
                        decode_json(raw)
                return await handler(request)
            except Exception as exc:
                return dialects.render(exc, request)

        return authenticated

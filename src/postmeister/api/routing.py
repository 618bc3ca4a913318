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

A route function that returns its document as a dict has it checked against the route's
response model and turned into JSON bytes in the thread the function ran in
(`_answered_in_place`), with the same calls and the same bytes as FastAPI. FastAPI itself
would hand the check back to the thread pool for a second trip per request (it runs a plain
function's response check there); one trip costs about as much CPU as the check.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute

from postmeister.api import dialects
from postmeister.api.common import current_actor, decode_json, media_type


class AuthenticatedRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # `functools.wraps` keeps what FastAPI reads of the function (its signature through
        # `__wrapped__`, return annotation, name, docstring), so the parameters, the
        # response model and the OpenAPI document are those of `endpoint`.
        super().__init__(path, _answered_in_place(endpoint, self), **kwargs)

    async def check_request(self, request: Request) -> None:
        """Checks a dialect makes after authentication and before the body is parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        parses_body = self.body_field is not None

        async def authenticated(request: Request) -> Response:
            try:
                await current_actor(request)
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


def _answered_in_place(endpoint: Callable[..., Any], route: APIRoute) -> Callable[..., Any]:
    """`endpoint`, returning a ready `Response` where FastAPI would make one from its result
    with the route's response model: the same validation, the same JSON bytes
    (`serialize_json`, FastAPI's own path for the default response class), the same status.

    Only for plain functions (FastAPI checks a coroutine's result without the thread pool)
    whose route takes no `Response` or `BackgroundTasks` parameter (FastAPI would merge
    those into the response it makes); anything else is returned as it came."""
    if not inspect.isfunction(endpoint) or inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    def answered(*args: Any, **kwargs: Any) -> Any:
        content = endpoint(*args, **kwargs)
        field = route.response_field
        if (
            field is None
            or isinstance(content, Response)
            or not isinstance(route.response_class, DefaultPlaceholder)
            or route.dependant.response_param_name is not None
            or route.dependant.background_tasks_param_name is not None
        ):
            return content
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=content)
        body = field.serialize_json(
            value,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
        )
        return Response(body, status_code=route.status_code or 200, media_type="application/json")

    return answered

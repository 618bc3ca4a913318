"""The two shapes of the controller dialect's lists (`GET /mail/account/`, `/mail/alias/`).

- Without `page` or `page_size`: the spec's plain JSON array of every visible address, in id
  order, streamed. The addresses are read in keyset chunks of `STREAM_CHUNK` in one read
  transaction and written out chunk by chunk, so the process holds one chunk, not the list:
  an admin listing a million accounts costs the memory of a thousand.
- With either: Django REST Framework's `PageNumberPagination` envelope, which the original
  controller's clients read: `{"count", "next", "previous", "results"}`. `page` is 1-based
  (default 1, `last` is the last page), `page_size` defaults to `PAGE_SIZE` and is clamped to
  `MAX_PAGE_SIZE` as DRF clamps to its `max_page_size`. `next`/`previous` are absolute
  `https` URLs (the API is served over HTTPS only) with the request's other parameters kept.

Errors, in the controller's problem format:
- a `page` that is not a positive integer, or past the last page: 404 "Invalid page.", as
  DRF answers (page 1 of an empty list is an empty page, not an error);
- a `page_size` that is not a positive integer: 400 `invalid-parameter`. DRF silently falls
  back to its default there; a client that sends `page_size=abc` has a bug it should see;
- an unknown `domain` filter: the usual 404, in both shapes, before any byte is streamed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from postmeister.api.common import transaction
from postmeister.api.errors import InvalidPage, InvalidQueryParameter
from postmeister.domain.access import Actor
from postmeister.domain.addresses import service
from postmeister.domain.addresses.schemas import Kind
from postmeister.models import Address

PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 10_000
STREAM_CHUNK: Final = 1000
# Longer than this cannot be a page that exists (nor a size below the maximum); keeps int()
# away from numbers of thousands of digits.
_MAX_DIGITS: Final = 18
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)

Renderer = Callable[[Address], dict[str, Any]]


def _json(value: Any) -> bytes:
    """The bytes FastAPI's JSONResponse would send for `value`."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _page_size(raw: str | None) -> int:
    if raw is None:
        return PAGE_SIZE
    if not _DIGITS.fullmatch(raw) or int(raw[: _MAX_DIGITS + 1]) == 0:
        raise InvalidQueryParameter("page_size", "must be a positive integer")
    return MAX_PAGE_SIZE if len(raw) > _MAX_DIGITS else min(int(raw), MAX_PAGE_SIZE)


def _page_number(raw: str | None, last: int) -> int:
    if raw is None:
        return 1
    if raw == "last":
        return last
    if not _DIGITS.fullmatch(raw) or len(raw) > _MAX_DIGITS or not 1 <= int(raw) <= last:
        raise InvalidPage()
    return int(raw)


def _link(request: Request, page: int) -> str:
    url = request.url.replace(scheme="https")
    if page == 1:
        # DRF's link to the first page has no `page` at all.
        return str(url.remove_query_params("page"))
    return str(url.include_query_params(page=page))


def _envelope(
    request: Request, actor: Actor, *, kind: Kind, domain: str | None, render: Renderer
) -> Response:
    size = _page_size(request.query_params.get("page_size"))
    with transaction(request) as session:
        count = service.count_addresses(session, actor, kind=kind, domain=domain)
        last = max(1, -(-count // size))
        page = _page_number(request.query_params.get("page"), last)
        found = service.list_address_slice(
            session, actor, kind=kind, domain=domain, offset=(page - 1) * size, limit=size
        )
        results = [render(address) for address in found]
    return JSONResponse(
        {
            "count": count,
            "next": _link(request, page + 1) if page < last else None,
            "previous": _link(request, page - 1) if page > 1 else None,
            "results": results,
        }
    )


def _array(
    request: Request, actor: Actor, *, kind: Kind, domain: str | None, render: Renderer
) -> Iterator[bytes]:
    """The JSON array, one piece per chunk; the first piece comes after the first chunk is
    read, so that a bad filter fails before the response starts."""
    with transaction(request) as session:
        opening = b"["
        chunks = service.stream_addresses(
            session, actor, kind=kind, domain=domain, chunk=STREAM_CHUNK
        )
        for chunk in chunks:
            yield opening + b",".join(_json(render(address)) for address in chunk)
            opening = b","
        yield b"[]" if opening == b"[" else b"]"


def address_list(
    request: Request, actor: Actor, *, kind: Kind, domain: str | None, render: Renderer
) -> Response:
    """The list of `kind` addresses visible to `actor`, in the shape the request asks for."""
    if "page" in request.query_params or "page_size" in request.query_params:
        return _envelope(request, actor, kind=kind, domain=domain, render=render)
    pieces = _array(request, actor, kind=kind, domain=domain, render=render)
    # Read the first chunk now, in the route: an unknown domain is still a proper problem.
    first = next(pieces)
    return StreamingResponse(chain([first], pieces), media_type="application/json")

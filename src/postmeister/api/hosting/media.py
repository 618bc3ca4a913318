"""JSON:API 1.1 media type: the response class and pure checks of Content-Type and Accept.

- A request with a body must say `Content-Type: application/vnd.api+json`; any other type,
  a missing header, or the JSON:API type with a parameter other than `ext` and `profile`
  is 415. We implement no extension, so any `ext` is 415 as well; profiles are ignored.
- `Accept` must allow the JSON:API type: `*/*`, `application/*`, or the type itself with
  no parameter other than `profile` (an instance with any other parameter, or with an `ext`,
  does not count). No `Accept` header accepts everything. Otherwise 406.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from postmeister.api.errors import NotAcceptable, UnsupportedMediaType

JSONAPI = "application/vnd.api+json"
_JSONAPI_PARAMETERS = frozenset({"ext", "profile"})


class JsonApiResponse(JSONResponse):
    """A JSON:API document, sent as `application/vnd.api+json` without parameters.
    (A JSONResponse, so that OpenAPI shows the response models as its schemas.)"""

    media_type = JSONAPI

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split a header value at `separator`, except inside double-quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_media_type(text: str) -> tuple[str, dict[str, str]] | None:
    """`type/subtype` in lower case and the parameters (names lower case, values unquoted),
    or None if `text` is not a media type."""
    head, *raw_parameters = split_outside_quotes(text, ";")
    kind, slash, subtype = head.strip().lower().partition("/")
    if not slash or not kind or not subtype or any(c.isspace() for c in head.strip()):
        return None
    parameters: dict[str, str] = {}
    for raw in raw_parameters:
        if not raw:
            continue
        name, equals, value = raw.partition("=")
        if not equals:
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        parameters[name.strip().lower()] = value
    return f"{kind}/{subtype}", parameters


def check_content_type(header: str | None) -> None:
    """Raise `UnsupportedMediaType` unless a request body may be read as JSON:API."""
    if header is None or not header.strip():
        raise UnsupportedMediaType(f"send the request document with Content-Type: {JSONAPI}")
    parsed = parse_media_type(header)
    if parsed is None or parsed[0] != JSONAPI:
        raise UnsupportedMediaType(
            f"the request body must be a JSON:API document with Content-Type: {JSONAPI}"
        )
    unknown = sorted(set(parsed[1]) - _JSONAPI_PARAMETERS)
    if unknown:
        raise UnsupportedMediaType(
            f"the {JSONAPI} media type allows only the parameters ext and profile, "
            f"not {', '.join(unknown)}"
        )
    if parsed[1].get("ext", "").strip():
        raise UnsupportedMediaType("this server supports no JSON:API extensions (ext)")


def _acceptable(item: str) -> bool:
    parsed = parse_media_type(item)
    if parsed is None:
        return False
    kind, parameters = parsed
    quality = parameters.pop("q", "1")
    try:
        if float(quality) <= 0:
            return False
    except ValueError:
        return False
    if kind in ("*/*", "application/*"):
        return True
    return (
        kind == JSONAPI
        and set(parameters) <= _JSONAPI_PARAMETERS
        and not parameters.get("ext", "").strip()
    )


def check_accept(header: str | None) -> None:
    """Raise `NotAcceptable` unless the client accepts a plain JSON:API response."""
    if header is None or not header.strip():
        return
    if not any(_acceptable(item) for item in split_outside_quotes(header, ",")):
        raise NotAcceptable(
            f"this API answers only with {JSONAPI} (without extensions); "
            "allow it in the Accept header"
        )

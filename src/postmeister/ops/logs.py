"""Structured logs: one JSON object per line, or one readable line, with the request's id.

Every record gets `request_id`, `token_id` and `customer_id` from the request context
(`postmeister.ops.context`), so all lines of one request can be found by its id, whichever
module logged them. Extra fields are passed as `extra={"fields": {...}}`.

What must never be logged — passwords, password hashes, API tokens, application passwords —
is never handed to a logger: the access line names the route and path without the query,
no header is logged, and the engine hides SQL parameters (`hide_parameters`), so a database
error in a traceback cannot carry a hash. The test suite scans its own logs for every
secret it used (`tests/support/secrets.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Final, TextIO

from postmeister.config import LoggingSettings
from postmeister.ops import context

_HANDLER_NAME: Final = "postmeister"


class ContextFilter(logging.Filter):
    """Copies the request context onto the record (for both formatters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = context.current()
        record.request_id = current.request_id if current else None
        record.token_id = current.token_id if current else None
        record.customer_id = current.customer_id if current else None
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "token_id", "customer_id"):
            value = getattr(record, key, None)
            if value is not None:
                document[key] = value
        document.update(_fields(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        extras = [f"request_id={request_id}"] if request_id else []
        token_id = getattr(record, "token_id", None)
        if token_id is not None:
            extras.append(f"token_id={token_id}")
        extras.extend(f"{k}={v}" for k, v in _fields(record).items())
        if not extras:
            return line
        head, newline, trace = line.partition("\n")
        return f"{head} {' '.join(extras)}{newline}{trace}"


def formatter_for(settings: LoggingSettings) -> logging.Formatter:
    return JsonFormatter() if settings.format == "json" else HumanFormatter()


def configure_logging(settings: LoggingSettings, *, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's included) through one handler on the root logger.

    Idempotent: a second call replaces the handler it installed before."""
    root = logging.getLogger()
    for previous in list(root.handlers):
        if previous.get_name() == _HANDLER_NAME:
            root.removeHandler(previous)
            previous.close()
    handler: logging.Handler
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Alembic tells every command that it looked at the schema: only worth it when debugging.
    logging.getLogger("alembic").setLevel(
        logging.DEBUG if settings.level == "DEBUG" else logging.WARNING
    )
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own handlers would print a second, unstructured copy.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The access line is `postmeister.access` (api/observe.py). uvicorn's would be a second
    # line per request, with the query string, which the access log leaves out; without a
    # handler anywhere uvicorn does not even format it.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False

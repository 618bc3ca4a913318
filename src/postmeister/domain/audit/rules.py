"""What an audit event may hold: field-level changes with every secret redacted.

Pure functions over snapshots (plain dicts from `snapshots.py`). A secret never reaches the
trail: a field named in `SECRET_FIELDS` is replaced by `REDACTED` before the comparison's
result is kept, so the trail says *that* a password changed, never to what; a URL keeps no
user information (a sync source's `https://user:secret@host/` shows as `https://host/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

REDACTED: Final = "[redacted]"

# Fields whose values are secrets or secret-equivalent (a hash can be attacked offline).
SECRET_FIELDS: Final = frozenset(
    {"password", "password_hash", "secret", "secret_hash", "token", "token_hash", "signing_secret"}
)

Snapshot = Mapping[str, Any]
Changes = dict[str, list[Any]]


def without_credentials(url: str) -> str:
    """The URL without `user:password@` (kept: scheme, host, port, path, query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _shown(field: str, value: Any) -> Any:
    if field in SECRET_FIELDS and value is not None:
        return REDACTED
    return value


def changes_between(before: Snapshot | None, after: Snapshot | None) -> Changes:
    """`{field: [before, after]}` for every field that differs (created: before is None for
    every field; deleted: after is None). A secret that changed shows as
    `["[redacted]", "[redacted]"]` (or `[None, "[redacted]"]` when it was first set)."""
    old = before or {}
    new = after or {}
    changes: Changes = {}
    for field in (*old, *(k for k in new if k not in old)):
        was, now = old.get(field), new.get(field)
        if was == now and before is not None and after is not None:
            continue
        if was is None and now is None:
            continue
        changes[field] = [_shown(field, was), _shown(field, now)]
    return changes

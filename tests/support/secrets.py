"""The secret scan: every secret the suite used, and every log line the suite produced.

**Secrets** are collected where they enter or leave the code, so no test has to remember
to register them: the session wraps (at class and module level, for the whole run)
- `PasswordHashing.hash`: every mailbox password hashed, and the hash;
- `Passwords.problems`: every candidate password the policy looked at, accepted or not;
- `tokens.service._digest`: every API token created or presented, and its SHA-256;
- `app_passwords.service.app_password_digest`: every application password, and its digest;
- `hash_formats.identify_crypt_hash`: every imported crypt hash;
- `webhooks.service.new_secret`: every webhook signing secret (and its base64 part).
Factories and tests may add more with `remember()`.

**Logs**: everything the controller code logs in the test process goes to a JSON-lines
file in `LOG_DIR`; subprocesses (`postmeister serve`, the CLI) inherit
`POSTMEISTER_LOGGING__FILE` and append to their own file there; the data-plane stacks copy
their daemons' logs (Postfix, Dovecot, rspamd, milters, auth policy) there before their
folders are removed. At the end of the session `scan()` reads them all.

Short values are not scanned (they would match by chance); see `MIN_LENGTH`.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# An accepted password is at least 16 characters (the default policy; tests use shorter
# ones only where they test the policy); a token or application password is longer.
MIN_LENGTH: Final = 10

SECRETS: dict[str, str] = {}  # value -> what it is (for the report; never printed)
LOG_DIR: Final = Path(tempfile.gettempdir()) / f"pm-test-logs-{uuid.uuid4().hex[:12]}"


def remember(value: str | None, kind: str) -> None:
    if value and len(value) >= MIN_LENGTH:
        SECRETS.setdefault(value, kind)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _wrap(owner: Any, name: str, record: Callable[..., None]) -> None:
    original = getattr(owner, name)
    if getattr(original, "_pm_secret_capture", False):
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        record(result, *args, **kwargs)
        return result

    wrapper._pm_secret_capture = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def install_capture() -> None:
    """Wrap the places where secrets pass (see the module docstring); idempotent."""
    from postmeister.domain.app_passwords import service as app_passwords
    from postmeister.domain.passwords import hash_formats
    from postmeister.domain.passwords.hashing import PasswordHashing
    from postmeister.domain.passwords.service import Passwords
    from postmeister.domain.tokens import service as tokens
    from postmeister.domain.webhooks import service as webhooks

    def hashed(result: str, _self: Any, plain: str, *_a: Any, **_k: Any) -> None:
        remember(plain, "mailbox password")
        remember(result, "password hash")

    def candidate(_result: Any, _self: Any, plain: str, *_a: Any, **_k: Any) -> None:
        remember(plain, "candidate password")

    def token(result: str, secret: str, *_a: Any, **_k: Any) -> None:
        # Only what has a token's shape: the fuzzer presents arbitrary text as tokens, and
        # a random "api_tokens.i" found in a SQL log line is no leak.
        if secret.startswith(tokens.TOKEN_PREFIX):
            remember(secret, "API token")
            remember(result, "API token hash")

    def app_password(result: str, secret: str, *_a: Any, **_k: Any) -> None:
        remember(secret, "application password")
        remember(result, "application password hash")

    def signing_secret(result: str, *_a: Any, **_k: Any) -> None:
        remember(result, "webhook signing secret")
        remember(result.removeprefix("whsec_"), "webhook signing secret (base64)")

    def crypt_hash(_result: Any, value: str, *_a: Any, **_k: Any) -> None:
        remember(value, "imported password hash")

    _wrap(PasswordHashing, "hash", hashed)
    _wrap(Passwords, "problems", candidate)
    _wrap(tokens, "_digest", token)
    _wrap(app_passwords, "app_password_digest", app_password)
    _wrap(hash_formats, "identify_crypt_hash", crypt_hash)
    _wrap(webhooks, "new_secret", signing_secret)


def keep_logs(directory: Path, label: str) -> None:
    """Copy the log files under `directory` into LOG_DIR before their folder goes away."""
    target = LOG_DIR / f"{label}-{uuid.uuid4().hex[:8]}"
    if directory.is_dir():
        shutil.copytree(directory, target, dirs_exist_ok=True)


@dataclass(frozen=True)
class Leak:
    file: Path
    line: int
    kind: str


def log_files(root: Path = LOG_DIR) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def scan(files: Iterable[Path], secrets: dict[str, str]) -> list[Leak]:
    """Every line of `files` that contains one of `secrets` (or its SHA-256 hex, the form
    tokens and application passwords are stored in).

    Thousands of secrets against megabytes of logs: each line is looked at once, through
    an index of the secrets' first `_PREFIX` characters."""
    needles: dict[str, str] = {}
    for value, kind in secrets.items():
        needles[value] = kind
        needles.setdefault(_sha256(value), f"SHA-256 of {kind}")
    by_prefix: dict[str, list[str]] = {}
    for needle in needles:
        by_prefix.setdefault(needle[:_PREFIX], []).append(needle)
    leaks = []
    for file in files:
        with file.open("r", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                found = _first_secret(line, by_prefix, needles)
                if found is not None:
                    leaks.append(Leak(file, number, found))
    return leaks


_PREFIX: Final = 8


def _first_secret(line: str, by_prefix: dict[str, list[str]], kinds: dict[str, str]) -> str | None:
    for start in range(len(line) - _PREFIX + 1):
        candidates = by_prefix.get(line[start : start + _PREFIX])
        if candidates:
            for needle in candidates:
                if line.startswith(needle, start):
                    return kinds[needle]
    return None

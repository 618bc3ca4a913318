"""Hashing of mailbox passwords: argon2id in its crypt string form.

Why argon2id: it is OWASP's first choice for password storage; the default parameters are
OWASP's minimum (19 MiB memory, 2 iterations, 1 lane). Dovecot verifies the same string
with its `{ARGON2ID}` scheme, so the data plane needs no copy in another format.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from postmeister.config import PasswordSettings
from postmeister.ops import metrics


class PasswordHashing:
    def __init__(self, settings: PasswordSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )

    def hash(self, plain: str) -> str:
        hashed = self._hasher.hash(plain)
        metrics.observe_hash("argon2id")
        return hashed

    def verify(self, hashed: str, plain: str) -> bool:
        ok: bool
        try:
            ok = self._hasher.verify(hashed, plain)
        except (VerificationError, InvalidHashError):
            ok = False
        metrics.observe_verification(_scheme(hashed), ok=ok)
        return ok


def _scheme(hashed: str) -> str:
    """The crypt scheme named by a hash's `$id$` prefix, for the metrics only."""
    identifier = hashed.split("$", 2)[1] if hashed.startswith("$") and hashed.count("$") > 1 else ""
    return identifier if identifier in ("argon2id", "argon2i", "argon2d") else "other"

"""Hashing of mailbox passwords: argon2id in its crypt string form.

Why argon2id: it is OWASP's first choice for password storage; the default parameters are
OWASP's minimum (19 MiB memory, 2 iterations, 1 lane). Dovecot verifies the same string
with its `{ARGON2ID}` scheme, so the data plane needs no copy in another format.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from postmeister.config import PasswordSettings


class PasswordHashing:
    def __init__(self, settings: PasswordSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )

    def hash(self, plain: str) -> str:
        return self._hasher.hash(plain)

    def verify(self, hashed: str, plain: str) -> bool:
        try:
            return self._hasher.verify(hashed, plain)
        except (VerificationError, InvalidHashError):
            return False

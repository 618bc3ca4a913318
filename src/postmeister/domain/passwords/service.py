"""Everything a service does with a plain-text mailbox password: check, hash, generate.

One object per process (it may hold open leaked-password files); the API app and the CLI
create it from settings and hand it to the services that need it.
"""

from __future__ import annotations

import copy

from postmeister.config import PasswordSettings
from postmeister.domain.passwords.generator import generate_password
from postmeister.domain.passwords.hashing import PasswordHashing
from postmeister.domain.passwords.leaked import leaked_list_for
from postmeister.domain.passwords.policy import check_password
from postmeister.errors import FieldProblem, PasswordPolicyViolation


class Passwords:
    def __init__(self, settings: PasswordSettings) -> None:
        self.settings = settings
        self.hashing = PasswordHashing(settings)
        # Opens the leaked-password files now, so a misconfigured file stops the start.
        self.leaked = leaked_list_for(settings)
        # Hashes made ahead of the transaction (see `ahead`): plain text -> hash.
        self._ready: dict[str, str] = {}
        self._candidate: str | None = None

    def ahead(self, plain: str | None) -> Passwords:
        """A copy for one request that already holds the hash of `plain` (None: of a
        generated password, for a request that will want one).

        Call it before opening the transaction: hashing costs tens of milliseconds of CPU,
        and on SQLite a writing transaction holds the database's only write lock from its
        first statement (`BEGIN IMMEDIATE`), so every other writer would wait that long.
        The services inside the transaction ask this copy as usual: the policy and every
        other rule are still checked there, and only a password that passes them is stored;
        a request refused there has cost one hash for nothing.
        """
        prepared = copy.copy(self)
        if plain is None:
            # Local part and domain are not known yet: `generate` checks them then.
            plain = generate_password(local_part="", domain="", settings=self.settings)
            prepared._candidate = plain
        prepared._ready = {plain: self.hashing.hash(plain)}
        return prepared

    def hash(self, plain: str) -> str:
        """The crypt hash of `plain` (made ahead if this copy holds it)."""
        ready = self._ready.get(plain)
        return ready if ready is not None else self.hashing.hash(plain)

    def problems(
        self, plain: str, *, local_part: str, domain: str, field: str = "password"
    ) -> list[FieldProblem]:
        violations = check_password(
            plain, local_part=local_part, domain=domain, settings=self.settings
        )
        return [FieldProblem(field, v.message, v.rule) for v in violations]

    def hash_checked(
        self, plain: str, *, local_part: str, domain: str, field: str = "password"
    ) -> str:
        """The crypt hash of `plain`, after the policy accepted it."""
        problems = self.problems(plain, local_part=local_part, domain=domain, field=field)
        if problems:
            raise PasswordPolicyViolation(problems)
        return self.hash(plain)

    def generate(self, *, local_part: str, domain: str) -> str:
        candidate = self._candidate
        if candidate is not None and not self.problems(
            candidate, local_part=local_part, domain=domain
        ):
            self._candidate = None  # one request, one generated password
            return candidate
        return generate_password(local_part=local_part, domain=domain, settings=self.settings)

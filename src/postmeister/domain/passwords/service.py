"""Everything a service does with a plain-text mailbox password: check, hash, generate.

One object per process (it may hold open leaked-password files); the API app and the CLI
create it from settings and hand it to the services that need it.
"""

from __future__ import annotations

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
        return self.hashing.hash(plain)

    def generate(self, *, local_part: str, domain: str) -> str:
        return generate_password(local_part=local_part, domain=domain, settings=self.settings)

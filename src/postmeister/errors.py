"""Domain errors: facts about the request, named after what is true, with no HTTP in them.

One table maps these classes to HTTP statuses (`api/errors.py`); each API dialect only
formats the result (`api/controller/problems.py`, `api/hosting/errors.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field. `field` is a dotted path (`to`, `autoresponder.text`)."""

    field: str
    message: str
    rule: str | None = None


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The input breaks a rule; `problems` names every field and rule that failed."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(summary or "invalid input")
        self.problems = problems

    @classmethod
    def single(cls, field_name: str, message: str, rule: str | None = None) -> InvalidInput:
        return cls([FieldProblem(field_name, message, rule)])


class PasswordPolicyViolation(InvalidInput):
    """A plain-text password failed one or more rules of the password policy."""


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it (the two look the same)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class AlreadyExists(DomainError):
    """A unique object (address, domain, customer) exists already."""

    def __init__(self, kind: str, key: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{kind} {key!r} already exists")
        self.kind = kind
        self.key = key


class Conflict(DomainError):
    """The request contradicts the current state (wrong kind, managed by sync, id mismatch)."""


class LimitReached(Conflict):
    """The write would break a limit of the package; each problem names the limit as its
    `rule` (`max_mailboxes`, ...), so clients can tell which one."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class ManagedBySync(Conflict):
    """The domain is managed by a Basic JSON sync source; API writes would be overwritten."""

    def __init__(self, domain: str, source_id: int) -> None:
        super().__init__(
            f"domain {domain!r} is managed by sync source {source_id}; "
            "change the source document instead"
        )
        self.domain = domain
        self.source_id = source_id


class PermissionDenied(DomainError):
    """The caller is known and may see the object but may not do this (read-only token)."""


class Unauthenticated(DomainError):
    """No valid credentials: missing, unknown or expired token."""


@dataclass
class ProblemList:
    """Collects problems so that a request reports all of them at once."""

    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, message: str, rule: str | None = None) -> None:
        self.problems.append(FieldProblem(field_name, message, rule))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)

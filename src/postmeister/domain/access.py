"""Who is asking: the actor behind a request, and the one place where tenant scoping lives.

Every query for customer data goes through `visible_domains()`; an object outside the
actor's scope is indistinguishable from a missing one (the services raise `NotFound`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select

from postmeister.errors import PermissionDenied
from postmeister.models import Domain


@dataclass(frozen=True)
class Actor:
    """The authenticated caller. `customer_id is None` only for admins."""

    customer_id: int | None
    is_admin: bool = False
    read_only: bool = False
    # None: every domain of the customer (or every domain at all, for an admin).
    domain_ids: frozenset[int] | None = None
    token_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        """The CLI and internal jobs act with full rights."""
        return cls(customer_id=None, is_admin=True)

    def require_write(self) -> None:
        if self.read_only:
            raise PermissionDenied("this API token is read-only")


def visible_domains(actor: Actor) -> Select[Domain]:
    """The domains this actor may see; callers add their own conditions."""
    statement = select(Domain)
    if not actor.is_admin:
        statement = statement.where(Domain.customer_id == actor.customer_id)
    if actor.domain_ids is not None:
        statement = statement.where(Domain.id.in_(actor.domain_ids))
    return statement

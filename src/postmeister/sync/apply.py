"""Sync's side of the bulk writer: the document's domains, the plan's checks, the writes.

Everything that decides who may write what is in `domain.addresses.bulk` (tenancy through
`access.py`, the package limit through `rules.py`); this module only adds what is
particular to sync (a domain managed by another source) and locates each problem by the
document's JSON pointers.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from postmeister.domain.access import Actor
from postmeister.domain.addresses import bulk
from postmeister.domain.addresses.bulk import Progress, load_current
from postmeister.domain.addresses.schemas import CurrentAddress
from postmeister.errors import ProblemList
from postmeister.models import Domain
from postmeister.sync.document import SyncDocument
from postmeister.sync.plan import Plan

__all__ = ["Progress", "apply_plan", "check_plan", "load_current", "resolve_domains"]


def _fields(document: SyncDocument) -> dict[str, str]:
    return {name: entry.location for name, entry in document.domains.items()}


def resolve_domains(
    session: Session, actor: Actor, document: SyncDocument, *, source_id: int | None
) -> dict[str, Domain]:
    """The document's domains as rows, or `InvalidInput` naming every domain that is not the
    customer's (unknown and another customer's look the same) or is managed by another
    source."""
    domains, found_problems = bulk.resolve_domains(session, actor, _fields(document))
    problems = ProblemList(found_problems)
    for name, row in domains.items():
        if source_id is not None and row.sync_source_id not in (None, source_id):
            problems.add(
                document.domains[name].location,
                f"the domain {name} is managed by another sync source ({row.sync_source_id})",
                "managed",
            )
    problems.raise_if_any()
    return domains


def check_plan(
    session: Session,
    actor: Actor,
    plan: Plan,
    domains: dict[str, Domain],
    document: SyncDocument,
    *,
    quota_bytes: int | None,
) -> None:
    """Rules over the plan that only the database can judge: the package limits (new
    mailboxes counted with the quota `apply_plan` gives them for `quota_bytes`), and that no
    whitelist written names another customer's address or domain."""
    problems = ProblemList(
        bulk.limit_problems(
            session, actor, plan.changes, domains, _fields(document), quota_bytes=quota_bytes
        )
    )
    if actor.customer_id is None:
        raise ValueError("a sync document is applied as its customer")
    accounts = {
        f"{account.local_part}@{name}": (account.pointer or f"{entry.location}/account")
        + "/spoofing_whitelist"
        for name, entry in document.domains.items()
        for account in entry.accounts
    }
    problems.problems.extend(
        bulk.sender_problems(session, actor.customer_id, plan.changes, accounts)
    )
    problems.raise_if_any()


def apply_plan(
    session: Session,
    actor: Actor,
    plan: Plan,
    domains: dict[str, Domain],
    *,
    quota_bytes: int | None,
    progress: Progress | None = None,
    current: Mapping[str, CurrentAddress] | None = None,
) -> None:
    """Write the plan: deletes, then updates, then creates (the plan's order); `current`
    (the addresses the plan was made from) gives the audit events their "before"."""
    bulk.write(
        session,
        actor,
        plan.changes,
        domains,
        quota_bytes=quota_bytes,
        progress=progress,
        current=current,
    )

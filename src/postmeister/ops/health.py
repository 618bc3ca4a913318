"""Liveness and readiness: what a load balancer and a monitoring system ask the controller.

- **Liveness** (`/healthz`): the process answers HTTP. No database access, so a database
  outage never makes an orchestrator restart healthy controllers.
- **Readiness** (`/readyz`): this controller can do its work, by these checks:
  - `database`: a connection from the controller's own pool answers, and the schema is at
    the revision this code expects (the Alembic head). On SQLite the database file must
    also still exist at its path: SQLite would otherwise create an empty database there.
  - `scheduler`: the periodic-jobs loop is running (or is switched off by configuration,
    which is a choice, not a failure).

Each check names what failed; the caller answers 503 when any did.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from postmeister.db import sqlite_file
from postmeister.store import alembic_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]


@functools.cache
def expected_revision() -> str:
    """The newest schema revision this code ships (the single Alembic head)."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return ",".join(sorted(heads))


def database_check(engine: Engine) -> Check:
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    if database is not None and not database.is_file():
        # The answer is unauthenticated: the path goes to the log, not to the client.
        log.warning("readiness: the database file %s is missing", database)
        return Check("database", False, "the database file is missing")
    try:
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        # The driver's message names the cause (connection refused, no such table) but also
        # hosts and users; the answer is unauthenticated, so the cause goes to the log only.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.warning("readiness: the database is unreachable: %s", reason)
        return Check("database", False, "unreachable (the controller's log names the cause)")
    expected = expected_revision()
    if revision != expected:
        return Check(
            "database", False, f"schema revision {revision or 'none'}, expected {expected}"
        )
    return Check("database", True, f"schema revision {revision}")


def scheduler_check(*, enabled: bool, problem: Callable[[], str | None]) -> Check:
    if not enabled:
        return Check("scheduler", True, "disabled by configuration")
    found = problem()
    if found is not None:
        return Check("scheduler", False, found)
    return Check("scheduler", True, "running")


def readiness(
    engine: Engine, *, scheduler_enabled: bool, scheduler_problem: Callable[[], str | None]
) -> Readiness:
    return Readiness(
        (
            database_check(engine),
            scheduler_check(enabled=scheduler_enabled, problem=scheduler_problem),
        )
    )

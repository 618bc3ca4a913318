"""Fixtures shared by every test: a real database (SQLite and PostgreSQL), settings, app.

PostgreSQL: one scratch database per test session, migrated once and emptied between
tests. Where no PostgreSQL answers, the run fails with a clear message — the PostgreSQL
half of the suite is never skipped silently (see scripts/test, which starts one).

The secret scan (`tests/support/secrets.py`): from the start of the session every secret
the code sees is remembered and every log goes to files; at the end, a log line holding
any of them fails the run.

The Python processes the tests start share one bytecode cache for the session
(`tests/support/bytecode.py`): without it, each compiled the application from source.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import DnsSettings, PasswordSettings, Settings
from postmeister.db import make_engine, make_session_factory
from postmeister.models import Base
from postmeister.ops.logs import ContextFilter, JsonFormatter
from postmeister.store import migrate
from tests.support import secrets
from tests.support.bytecode import remove_bytecode_cache, share_bytecode_cache
from tests.support.factories import TEST_DKIM
from tests.support.processes import CliWorker

PG_ADMIN_URL = os.environ.get(
    "POSTMEISTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]
# Tests never ask a resolver beyond loopback (the system's may be anywhere): the DNS check
# of a test that does not serve its own zones (`tests/support/dns_server.py`) asks a port
# where nothing answers, and reports every record unknown at once.
NO_RESOLVER = DnsSettings(resolvers=["127.0.0.1:9"], timeout_seconds=0.1)
_BYTECODE = pytest.StashKey[Path | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_BYTECODE] = share_bytecode_cache()
    secrets.install_capture()
    secrets.LOG_DIR.mkdir(parents=True, exist_ok=True)
    # `postmeister serve` and the CLI, started as subprocesses, log there too.
    os.environ["POSTMEISTER_LOGGING__FILE"] = str(secrets.LOG_DIR / "subprocesses.jsonl")
    handler = logging.FileHandler(secrets.LOG_DIR / "in-process.jsonl", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_bytecode_cache(config.stash.get(_BYTECODE, None))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    files = secrets.log_files()
    leaks = secrets.scan(files, secrets.SECRETS)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    if leaks:
        for leak in leaks[:50]:
            write(f"SECRET IN LOG: {leak.kind} at {leak.file}:{leak.line}")
        write(f"secret scan: {len(leaks)} log lines hold secrets; logs kept in {secrets.LOG_DIR}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    lines = sum(1 for file in files for _ in file.open(encoding="utf-8", errors="replace"))
    write(
        f"secret scan: {len(secrets.SECRETS)} secrets, {len(files)} log files, "
        f"{lines} lines: no secret logged"
    )
    shutil.rmtree(secrets.LOG_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (much faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.__class__.__name__}). "
            "Run the tests through scripts/test, which installs and starts one, or set "
            "POSTMEISTER_TEST_PG_URL.",
            returncode=3,
        )
    name = f"pm_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_postgres(engine: Engine) -> None:
    """What `TRUNCATE <every table> RESTART IDENTITY CASCADE` leaves, in a tenth of the time.

    TRUNCATE gives every table a new file, which costs tens to hundreds of milliseconds per
    test even when the tables hold a handful of rows; deleting the rows (children first) and
    setting the tables' own sequences back to their start leaves the same empty tables with
    ids starting at 1. `setval(..., false)` is what `ALTER SEQUENCE ... RESTART` does to the
    next value, without the DDL's exclusive lock and catalog update: it made up most of the
    time this took (the first `nextval` returns the start value either way).
    Should a table ever refuse the delete (an `ON DELETE RESTRICT` among the tables), the
    TRUNCATE does the job as before."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    try:
        with engine.begin() as conn:
            deletes = [f'DELETE FROM "{name}";' for name in reversed(tables)]  # noqa: S608
            conn.exec_driver_sql("".join(deletes))
            conn.execute(_RESTART_OWNED_SEQUENCES, {"tables": tables})
    except DBAPIError:
        listed = ", ".join(f'"{name}"' for name in tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))


# The sequences that TRUNCATE ... RESTART IDENTITY restarts, those owned by the tables'
# serial or identity columns, set back to their start value.
_RESTART_OWNED_SEQUENCES = text(
    "SELECT setval(s.oid::regclass, q.seqstart, false) FROM pg_class s"
    " JOIN pg_sequence q ON q.seqrelid = s.oid"
    " WHERE s.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d"
    " WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')"
    " AND d.refobjid = ANY(CAST(:tables AS regclass[])))"
)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "postmeister.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database_url")
    engine = make_engine(url)
    _empty_postgres(engine)
    engine.dispose()
    yield url


def fast_password_settings(**overrides: object) -> PasswordSettings:
    """argon2id with tiny cost: same code path, 100x faster; hash-cost tests use defaults."""
    values: dict[str, object] = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}
    values.update(overrides)
    return PasswordSettings.model_validate(values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        passwords=fast_password_settings(),
        dns=NO_RESOLVER,
        dkim=TEST_DKIM,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def postmeister_cli() -> Iterator[CliWorker]:
    """`postmeister` commands without a new interpreter each (see tests/support/cli_worker.py)."""
    worker = CliWorker()
    try:
        yield worker
    finally:
        worker.close()

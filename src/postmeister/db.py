"""Engine, session factory and the unit of work.

The caller (request, CLI command, job) owns the transaction: it opens a unit of work,
services only `flush()`, and the unit of work commits or rolls back.

SQLite: WAL mode, so that Postfix and Dovecot keep reading while the controller writes,
and writers start with `BEGIN IMMEDIATE` so that two writers queue on the busy timeout
instead of failing with a deadlock when a read transaction upgrades to a write. The
database holds password hashes, so its file is created 0600 before SQLite opens it (SQLite
gives its -wal and -shm files the database file's mode); `dataplane up` then grants the
mail servers' group read/write (0660), never anyone else.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 5000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain `postgresql://` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (its directory 0700 if missing) unless it exists.

    An empty file is a valid, empty SQLite database; creating it here rather than letting
    SQLite do it means the process umask never decides who may read the password hashes.
    """
    if path.exists():  # the usual case; also for readers that may not create anything
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine for `url`. SQL parameters never appear in its error messages
    (`hide_parameters`): they hold password hashes, and errors end up in logs."""
    url = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    database = sqlite_file(url)
    if database is not None:
        create_private_file(database)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            # No transaction: what must run outside one (a migration's PRAGMA foreign_keys)
            # asks for AUTOCOMMIT, and each statement then commits on its own.
            return
        mode = options.get("sqlite_begin", "DEFERRED")
        if mode == _NO_BEGIN:
            # One statement reads one consistent snapshot by itself (`single_read`).
            return
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


# The `sqlite_begin` mode of `single_read`: no BEGIN, the statement runs in autocommit mode.
_NO_BEGIN = "NONE"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception.

    `write=True` takes SQLite's write lock up front (`BEGIN IMMEDIATE`); PostgreSQL ignores it.
    """
    session = factory()
    turn = _writer_turn(factory) if write else None
    try:
        if write:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        if turn is not None:
            turn.release()


@contextmanager
def single_read(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for ONE read statement (the API token check every request starts with).

    On SQLite it sends no `BEGIN`: a single statement sees one consistent snapshot on its
    own, so the explicit transaction of `unit_of_work` would only cost a statement. A
    second statement in this session would read a later snapshot than the first, so
    anything that reads more than once uses `unit_of_work`. PostgreSQL: as `unit_of_work`.
    """
    session = factory()
    try:
        session.connection(execution_options={"sqlite_begin": _NO_BEGIN})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def advisory_key(namespace: str, name: object) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks, one key space per
    `namespace` ("job", "move", ...), so a job's lock can never meet a mailbox move's."""
    digest = hashlib.sha256(f"postmeister:{namespace}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# One lock per SQLite database file for the writers of this process (request threads, the
# scheduler, the webhook dispatcher). SQLite lets a waiting writer poll with growing sleeps
# (up to 100 ms between tries), so under load one writer could keep missing the lock while
# others took it: creating mailboxes with 8 clients had a p99 of 0.5-0.9 s against 0.18 s
# for a bare endpoint. A thread waiting here wakes as soon as the writer before it is done.
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()
# Between processes (the workers of `serve`, the CLI), the same turn is an flock(2) on a file
# beside the database, held by the thread that holds the process's lock: without it, the
# writers of two workers met only on SQLite's busy timeout, with its growing sleeps.
_LOCK_FILES: dict[str, _LockFile] = {}
_log = logging.getLogger(__name__)
# How long a writer waits between two tries of another process's turn: short, as SQLite's
# first sleeps are; a try is one system call.
_LOCK_FILE_POLL_SECONDS = 0.001


class _LockFile:
    """The writers' lock file of one database. Opened for each turn and closed after it
    (closing gives the lock back; a descriptor kept open per database would add up in a
    process that touches many). `depth` counts the nested turns of the thread holding it
    (the process lock is re-entrant): the outermost takes the file lock and gives it back."""

    def __init__(self, path: Path, database: Path) -> None:
        self.path = path
        self.database = database
        self.fd: int | None = None
        self.depth = 0
        self.warned = False

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            # Another process created it between our two opens.
            return os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        # Every user that may write the database may take the turn, and nobody else: the
        # file gets the database's permission bits (fchmod, so the umask cannot narrow
        # them) and, as root, its owner and group, or the mail servers could not open it.
        try:
            st = os.stat(self.database)
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, st.st_mode & 0o666)
        except OSError:
            pass  # No database file yet: 0600 as created, the narrowest.
        return fd

    def take(self, deadline: float) -> bool:
        if self.depth == 0:
            try:
                fd = self._open()
            except OSError as exc:
                # No turn between processes, SQLite's busy timeout still applies; said once,
                # as writers then meet only on that timeout's growing sleeps.
                fd = None
                if not self.warned:
                    self.warned = True
                    _log.warning(
                        "cannot open the writers' lock file %s (%s): writers of other "
                        "processes will wait on SQLite's busy timeout",
                        self.path,
                        exc.strerror,
                    )
            while fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(_LOCK_FILE_POLL_SECONDS)
            self.fd = fd
        self.depth += 1
        return True

    def give_back(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _WriterTurn:
    """A writer's turn, taken: the process's lock and the lock file, if it has one."""

    def __init__(self, lock: threading.RLock, lock_file: _LockFile | None) -> None:
        self.lock = lock
        self.lock_file = lock_file

    def release(self) -> None:
        if self.lock_file is not None:
            self.lock_file.give_back()
        self.lock.release()


def writer_lock_file(database: Path) -> Path:
    """The file whose flock(2) is the writers' turn between processes."""
    return database.with_name(database.name + "-writers.lock")


def _writer_turn(factory: sessionmaker[Session]) -> _WriterTurn | None:
    """The writers' turn on the factory's SQLite database, taken (None: PostgreSQL, or the
    wait was longer than SQLite's own: then BEGIN IMMEDIATE waits and fails as before)."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
        return None
    key = str(bind.url)
    database = sqlite_file(key)
    with _WRITERS_GUARD:
        lock = _WRITERS.setdefault(key, threading.RLock())
        lock_file = None
        if database is not None:
            lock_file = _LOCK_FILES.setdefault(key, _LockFile(writer_lock_file(database), database))
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    deadline = time.monotonic() + timeout
    if not lock.acquire(timeout=timeout):
        return None
    # Only the thread holding `lock` touches `lock_file`.
    if lock_file is not None and not lock_file.take(deadline):
        lock.release()
        return None
    return _WriterTurn(lock, lock_file)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A point in time: stored in UTC, always read back as an aware datetime in UTC.

    The one column type for every timestamp, so no caller has to patch what a database
    returns. SQLite has no time zones (SQLAlchemy stores the wall-clock digits and drops the
    offset), so values are converted to UTC before they are written: an aware time in
    another zone would otherwise be stored as the wrong instant. PostgreSQL stores
    `timestamptz` and returns it in the session's zone; both come back as UTC here. A naive
    datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone (UTC)")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

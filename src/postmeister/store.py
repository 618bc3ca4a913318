"""Where the data lives: the data folder, and the schema (Alembic migrations, run
programmatically).

File modes (the database holds password hashes): the data folder is created 0700 and an
SQLite database 0600 with its -wal/-shm files (`postmeister.db`). `dataplane up` then gives
the mail servers' group (`POSTMEISTER_DATAPLANE__SQLITE_GROUP`) what a WAL reader needs: the
database's folder 2770 (setgid, so new -wal/-shm files keep the group) and the files 0660.
Nobody else gets anything. `migrate` also takes the "other" bits off the files of a
database created before these modes (the group's bits stay).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.orm import Session

from postmeister.db import normalise_url, sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def create_data_dir(path: Path) -> None:
    """The data folder (database, TLS key, bootstrap files): 0700 when created here; an
    existing folder keeps its mode (an operator may have set it up on purpose)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def migrate(url: str) -> None:
    """Bring the schema at `url` up to the newest revision (idempotent)."""
    command.upgrade(alembic_config(url), "head")
    database = sqlite_file(url)
    if database is not None:
        _drop_other_access(database)


def _drop_other_access(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{database}{suffix}")
        try:
            info = file.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and mode & 0o007:
            # Another user's file is not ours to change: the operator's call.
            with contextlib.suppress(PermissionError):
                os.chmod(file, mode & ~0o007)


# Rows SQLite samples per index when it gathers statistics (`PRAGMA analysis_limit`): enough
# for the planner's estimates, and ANALYZE of a million addresses stays in the milliseconds.
ANALYSIS_LIMIT = 1000


def gather_statistics(session: Session) -> bool:
    """Refresh SQLite's table statistics (`ANALYZE`, sampled); False on PostgreSQL, whose
    autovacuum keeps its own.

    Without statistics SQLite's planner guesses: it read the 100,000 addresses of a customer
    through the domain index and sorted all of them for the first page of 50, where it walks
    the primary key once it knows the table's shape (tests/web/test_web_address_list_scale.py).
    The mail servers' lookups (the data-plane views) use the same statistics."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    session.execute(text(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}"))
    session.execute(text("ANALYZE"))
    return True

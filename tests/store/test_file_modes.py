"""The data folder and the SQLite files are private: password hashes are inside (finding 8 of
issue 10). The mail servers get access through their group only, as `dataplane up` grants."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from postmeister.dataplane.stack import share_sqlite
from postmeister.db import make_engine
from postmeister.store import create_data_dir, migrate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The worst case: a process started with umask 000 would create 0666 files."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A folder the mail servers' users can traverse (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="pm-modes-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_and_keep_open(database: Path) -> None:
    """Write in WAL mode and check the -wal/-shm files while a connection holds them."""
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            connection.commit()
            for suffix in ("", "-wal", "-shm"):
                assert mode(Path(f"{database}{suffix}")) == 0o600, suffix
    finally:
        engine.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_data_folder_and_database_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    create_data_dir(data)
    assert mode(data) == 0o700
    database = data / "postmeister.sqlite3"
    migrate(f"sqlite:///{database}")
    assert mode(database) == 0o600
    write_and_keep_open(database)


@pytest.mark.usefixtures("permissive_umask")
def test_a_database_in_a_missing_folder_gets_a_private_folder(tmp_path: Path) -> None:
    database = tmp_path / "new" / "db.sqlite3"
    write_and_keep_open(database)
    assert mode(database.parent) == 0o700


def test_migrate_takes_other_users_access_off_an_existing_database(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite3"
    migrate(f"sqlite:///{database}")
    for before, after in ((0o644, 0o640), (0o666, 0o660)):
        database.chmod(before)
        migrate(f"sqlite:///{database}")
        assert mode(database) == after  # the group's bits stay (dataplane up sets them)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to the postfix group needs root")
def test_the_mail_servers_group_gets_access_and_nobody_else(searchable_dir: Path) -> None:
    # The e2e layout: the database in a folder of its own under a searchable parent.
    folder = searchable_dir / "db"
    folder.mkdir()
    folder.chmod(0o755)
    database = folder / "postmeister.sqlite3"
    migrate(f"sqlite:///{database}")
    share_sqlite(database, "postfix")
    gid = grp.getgrnam("postfix").gr_gid
    assert (mode(database), database.stat().st_gid) == (0o660, gid)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            connection.commit()
            # New -wal/-shm files take the database file's mode and the folder's group.
            for suffix in ("-wal", "-shm"):
                file = Path(f"{database}{suffix}")
                assert (mode(file), file.stat().st_gid) == (0o660, gid), suffix
    finally:
        engine.dispose()

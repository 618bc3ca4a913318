"""The SQLite writers' lock file takes the database file's permission bits, so every user
that may write the database may take the turn; when it cannot be opened, writes still
succeed and one warning says so."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import pytest

from postmeister.db import _LockFile, writer_lock_file


def _take_and_give_back(lock: _LockFile) -> None:
    assert lock.take(time.monotonic() + 1)
    lock.give_back()


@pytest.mark.parametrize("mode", [0o660, 0o600])
def test_lock_file_gets_the_database_mode(tmp_path: Path, mode: int) -> None:
    database = tmp_path / "pm.db"
    database.touch()
    database.chmod(mode)
    old = os.umask(0o077)  # a narrow umask must not narrow the lock file
    try:
        _take_and_give_back(_LockFile(writer_lock_file(database), database))
    finally:
        os.umask(old)
    assert stat.S_IMODE(writer_lock_file(database).stat().st_mode) == mode


def test_unopenable_lock_file_warns_once_and_still_gives_a_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "pm.db"
    database.touch()
    writer_lock_file(database).mkdir()  # a directory cannot be opened read/write
    lock = _LockFile(writer_lock_file(database), database)
    with caplog.at_level(logging.WARNING, logger="postmeister.db"):
        _take_and_give_back(lock)
        _take_and_give_back(lock)
    warnings = [r for r in caplog.records if "writers' lock file" in r.getMessage()]
    assert len(warnings) == 1

"""Writers of different processes take turns on an SQLite database through an flock(2) on
a file beside it (`db.writer_lock_file`), as the writers of one process take turns on a
thread lock: a writer waits while another process holds the turn and goes ahead as soon as
it is given back, and a turn is given back however the unit of work ends.

flock(2) locks belong to an open file description, so a second `open` of the lock file in
this test stands for another process (it conflicts with this process's own descriptor)."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import sqlite_file, unit_of_work, writer_lock_file
from postmeister.domain.customers.service import create_customer
from postmeister.models import Customer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _lock_file(sessions: sessionmaker[Session]) -> Path:
    database = sqlite_file(str(sessions.kw["bind"].url))
    assert database is not None
    return writer_lock_file(database)


@contextmanager
def _turn_held_elsewhere(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)  # closing the descriptor gives the lock back


def _free_elsewhere(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _names(sessions: sessionmaker[Session]) -> list[str]:
    with unit_of_work(sessions, write=False) as session:
        return list(session.scalars(select(Customer.name).order_by(Customer.id)))


def test_a_writer_waits_for_the_turn_another_process_holds(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        create_customer(session, name="First")
    path = _lock_file(sessions)
    # The lock file takes the database file's permission bits, no wider.
    database = sqlite_file(str(sessions.kw["bind"].url))
    assert database is not None
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(database.stat().st_mode) & 0o666
    done = threading.Event()

    def write() -> None:
        with unit_of_work(sessions) as session:
            create_customer(session, name="Waited")
        done.set()

    with _turn_held_elsewhere(path):
        writer = threading.Thread(target=write)
        writer.start()
        # SQLite's own lock is free all this time: only the turn keeps the writer waiting.
        assert not done.wait(0.5)
        assert _names(sessions) == ["First"]
    assert done.wait(5)
    writer.join()
    assert _names(sessions) == ["First", "Waited"]


def test_the_turn_is_given_back_however_the_writer_ends(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        create_customer(session, name="Committed")
    path = _lock_file(sessions)
    assert _free_elsewhere(path)

    held_while_writing: list[bool] = []

    def failing_request() -> None:
        with unit_of_work(sessions) as session:
            create_customer(session, name="Rolled back")
            held_while_writing.append(not _free_elsewhere(path))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    assert held_while_writing == [True]
    assert _free_elsewhere(path)

    with unit_of_work(sessions) as session:
        create_customer(session, name="Next")
    assert _free_elsewhere(path)
    assert _names(sessions) == ["Committed", "Next"]

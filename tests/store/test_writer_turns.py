"""Writers of one process take turns on an SQLite database (`db._writer_turn`): all of them
commit, none fails with "database is locked", and a turn is given back however the unit of
work ends (a failed one does not leave the next writer waiting)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import _WRITERS, unit_of_work
from postmeister.domain.customers.service import create_customer
from postmeister.models import Customer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_concurrent_writers_all_commit(sessions: sessionmaker[Session]) -> None:
    def write(n: int) -> int:
        with unit_of_work(sessions) as session:
            return create_customer(session, name=f"Writer {n}").id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(write, range(80)))
    assert len(set(ids)) == 80
    with unit_of_work(sessions, write=False) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 80


def test_a_failed_writer_gives_its_turn_back(sessions: sessionmaker[Session]) -> None:
    def failing_request() -> None:
        with unit_of_work(sessions) as session:
            create_customer(session, name="Rolled back")
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    (lock,) = [lock for key, lock in _WRITERS.items() if key == str(sessions.kw["bind"].url)]
    # Free for another thread at once (an RLock held by this thread would still be free
    # for this thread, so ask from another one).
    taken: list[bool] = []

    def try_to_take() -> None:
        got = lock.acquire(blocking=False)
        taken.append(got)
        if got:
            lock.release()

    other = threading.Thread(target=try_to_take)
    other.start()
    other.join()
    assert taken == [True]
    with unit_of_work(sessions) as session:
        create_customer(session, name="Next writer")
    with unit_of_work(sessions, write=False) as session:
        names = session.scalars(select(Customer.name)).all()
    assert names == ["Next writer"]

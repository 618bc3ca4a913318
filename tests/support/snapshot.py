"""Compare the whole database before and after a request that must change nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.models import Base

# Bookkeeping a request may write without changing anything a user set: a token's last use.
IGNORED = {("api_tokens", "last_used_at")}


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with sessions() as session:
        state: dict[str, list[tuple[Any, ...]]] = {}
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in IGNORED]
            statement = select(*columns).order_by(*table.primary_key.columns)
            rows = session.execute(statement).all()
            state[table.name] = [tuple(row) for row in rows]
        return state

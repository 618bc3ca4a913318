"""Every timestamp column is `UtcDateTime`: stored in UTC, read back aware in UTC, on both
databases, so no caller patches naive values any more (issue 10, "one UTC column type")."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import UtcDateTime, unit_of_work
from postmeister.domain.customers.service import create_customer
from postmeister.domain.tokens.service import authenticate, create_token
from postmeister.errors import Unauthenticated
from postmeister.models import ApiToken, Base, Customer, SyncSource

BERLIN = ZoneInfo("Europe/Berlin")


def test_every_timestamp_column_uses_the_utc_type() -> None:
    columns = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, DateTime)
    ]
    assert columns == []  # a plain DateTime would hand back naive values on SQLite
    utc = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, UtcDateTime)
    ]
    assert "sync_sources.next_run_at" in utc
    assert "api_tokens.expires_at" in utc


def test_a_time_in_any_zone_is_stored_as_its_instant_and_read_back_in_utc(
    sessions: sessionmaker[Session],
) -> None:
    berlin_evening = dt.datetime(2026, 7, 1, 23, 30, tzinfo=BERLIN)  # 21:30 UTC
    with unit_of_work(sessions) as session:
        customer = create_customer(session, name="Zones")
        source = SyncSource(
            customer_id=customer.id, url="https://x.example/a.json", next_run_at=berlin_evening
        )
        session.add(source)
        session.flush()
        source_id = source.id
    with sessions() as session:
        stored = session.get(SyncSource, source_id)
        assert stored is not None and stored.next_run_at is not None
        assert stored.next_run_at.tzinfo is dt.UTC
        assert stored.next_run_at == dt.datetime(2026, 7, 1, 21, 30, tzinfo=dt.UTC)
        # The server default (CURRENT_TIMESTAMP) comes back aware too.
        created = session.scalar(select(Customer.created_at))
        assert created is not None and created.tzinfo is dt.UTC
        # Comparisons in SQL see the same instant, whatever zone the bound value is in.
        due = session.scalars(
            select(SyncSource.id).where(
                SyncSource.next_run_at <= dt.datetime(2026, 7, 1, 23, 30, tzinfo=BERLIN)
            )
        ).all()
        not_yet = session.scalars(
            select(SyncSource.id).where(
                SyncSource.next_run_at <= dt.datetime(2026, 7, 1, 21, 29, tzinfo=dt.UTC)
            )
        ).all()
        assert (due, not_yet) == ([source_id], [])


def test_a_naive_time_is_refused_instead_of_guessed(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        customer_id = create_customer(session, name="Naive").id
    with sessions() as session:
        naive = SyncSource(
            customer_id=customer_id,
            url="https://x.example/a.json",
            next_run_at=dt.datetime(2026, 7, 1, 12, 0),
        )
        session.add(naive)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def test_token_expiry_is_compared_as_stored_without_patching(
    sessions: sessionmaker[Session],
) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with unit_of_work(sessions) as session:
        customer = create_customer(session, name="Expiring")
        secret = create_token(session, customer_id=customer.id, expires_at=expires).secret
    with sessions() as session:
        token = session.scalar(select(ApiToken))
        assert token is not None and token.expires_at is not None
        assert token.expires_at.tzinfo is dt.UTC
        assert authenticate(session, secret, now=expires - dt.timedelta(seconds=1))
        with pytest.raises(Unauthenticated):
            authenticate(session, secret, now=expires)

"""Deleted ids are never handed out again, on both databases (finding 8 of issue 10): a stale
id in a client's hands must not name a newer object. SQLite needs AUTOINCREMENT for that,
which migration 0006 adds by rebuilding the tables without losing a row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Connection, delete, text
from sqlalchemy.orm import Session, sessionmaker

from postmeister.db import make_engine, unit_of_work
from postmeister.models import ApiToken, Customer, SyncSource
from postmeister.store import alembic_config, migrate

GENERATED = (
    "customers",
    "packages",
    "sync_sources",
    "domains",
    "addresses",
    "app_passwords",
    "sync_runs",
    "api_tokens",
)


def test_the_id_of_a_deleted_newest_row_is_not_reused(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        first = Customer(name="First")
        newest = Customer(name="Newest")
        session.add_all([first, newest])
        session.flush()
        source = SyncSource(customer_id=first.id, url="https://x.example/a.json")
        token = ApiToken(customer_id=first.id, token_hash="a" * 64)
        session.add_all([source, token])
        session.flush()
        ids = {"customer": newest.id, "source": source.id, "token": token.id}
    with unit_of_work(sessions) as session:
        session.execute(delete(SyncSource).where(SyncSource.id == ids["source"]))
        session.execute(delete(ApiToken).where(ApiToken.id == ids["token"]))
        session.execute(delete(Customer).where(Customer.id == ids["customer"]))
    with unit_of_work(sessions) as session:
        again = Customer(name="Again")
        session.add(again)
        session.flush()
        source = SyncSource(customer_id=again.id, url="https://x.example/b.json")
        token = ApiToken(customer_id=again.id, token_hash="b" * 64)
        session.add_all([source, token])
        session.flush()
        assert again.id > ids["customer"]
        assert source.id > ids["source"]
        assert token.id > ids["token"]


def _fill(connection: Connection) -> None:
    """One row in every table, children included, as the schema of revision 0005 has them."""
    statements = [
        "INSERT INTO customers (id, name) VALUES (1, 'A'), (2, 'B')",
        "INSERT INTO packages (id, customer_id, name) VALUES (1, 1, 'default'), (2, 2, 'default')",
        "INSERT INTO sync_sources (id, customer_id, url) VALUES (3, 1, 'https://a.example/s')",
        "INSERT INTO domains (id, customer_id, package_id, name, display_name, sync_source_id)"
        " VALUES (1, 1, 1, 'a.example', 'a.example', 3), (2, 2, 2, 'b.example', 'b.example', NULL)",
        "INSERT INTO addresses (id, domain_id, address, local_part, kind, password_hash)"
        " VALUES (5, 1, 'box@a.example', 'box', 'mailbox', '$1$9hW1N3SC$J6vfo890zc50GC1jYHP211'),"
        " (6, 1, 'fwd@a.example', 'fwd', 'forward', NULL),"
        " (9, 2, 'box@b.example', 'box', 'mailbox', '$1$9hW1N3SC$J6vfo890zc50GC1jYHP211')",
        "INSERT INTO forward_targets (address_id, position, target)"
        " VALUES (6, 0, 'box@a.example'), (5, 0, 'copy@elsewhere.example')",
        "INSERT INTO sender_permissions (address_id, position, pattern) VALUES (5, 0, 'a.example')",
        "INSERT INTO autoresponders (address_id, text, active) VALUES (5, 'Away', 1)",
        "INSERT INTO app_passwords (id, address_id, device, application, secret_hash)"
        " VALUES (4, 5, 'phone', 'mail', 'h1')",
        "INSERT INTO sync_runs (id, source_id, customer_id, started_at, result, created,"
        " updated, deleted) VALUES (8, 3, 1, '2026-01-01 00:00:00', 'applied', 2, 0, 0)",
        "INSERT INTO api_tokens (id, customer_id, token_hash, domain_limited)"
        " VALUES (7, 1, 'abc', 1)",
        "INSERT INTO api_token_domains (token_id, domain_id) VALUES (7, 1)",
        "INSERT INTO mailbox_usage (username, bytes, messages) VALUES ('box@a.example', 10, 1)",
    ]
    for statement in statements:
        connection.execute(text(statement))


def _state(connection: Connection) -> dict[str, Any]:
    """Every table's and view's rows, and every table's columns and indexes."""
    objects = connection.execute(
        text(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version' ORDER BY name"
        )
    ).all()
    state: dict[str, Any] = {}
    for kind, name in objects:
        rows = connection.execute(text(f'SELECT * FROM "{name}"')).all()  # noqa: S608
        state[name] = sorted((tuple(row) for row in rows), key=repr)
        if kind == "table":
            state[f"{name} columns"] = connection.execute(
                text(f'PRAGMA table_info("{name}")')
            ).all()
            state[f"{name} indexes"] = sorted(
                (row[1], row[2])
                for row in connection.execute(text(f'PRAGMA index_list("{name}")')).all()
            )
            state[f"{name} foreign keys"] = sorted(
                tuple(row[2:])
                for row in connection.execute(text(f'PRAGMA foreign_key_list("{name}")'))
            )
    return state


def _autoincrement(connection: Connection) -> dict[str, bool]:
    return {
        name: "AUTOINCREMENT" in (sql or "").upper()
        for name, sql in connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        ).all()
        if name in GENERATED
    }


def test_migration_0006_rebuilds_sqlite_tables_without_losing_a_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0005")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _fill(connection)
            before = _state(connection)
            assert not any(_autoincrement(connection).values())
        command.upgrade(config, "0006")  # later revisions change tables and views
        with engine.begin() as connection:
            assert _autoincrement(connection) == dict.fromkeys(GENERATED, True)
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            after = _state(connection)
            # Same rows (the views' included), same columns, indexes and foreign keys.
            assert after == before
            # The largest id is deleted (children cascade) and is not handed out again.
            connection.execute(text("DELETE FROM addresses WHERE id = 9"))
            new_id = connection.execute(
                text(
                    "INSERT INTO addresses (domain_id, address, local_part, kind)"
                    " VALUES (2, 'new@b.example', 'new', 'forward') RETURNING id"
                )
            ).scalar()
            assert new_id == 10
        # Down and up again: the rebuild is reversible and idempotent.
        command.downgrade(config, "0005")
        with engine.connect() as connection:
            assert not any(_autoincrement(connection).values())
        migrate(url)
        with engine.connect() as connection:
            assert all(_autoincrement(connection).values())
            assert connection.execute(text("SELECT count(*) FROM forward_targets")).scalar() == 2
    finally:
        engine.dispose()

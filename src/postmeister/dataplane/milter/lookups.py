"""The milters' one database layer: the contract's questions, on SQLite or PostgreSQL.

The milters read the same contract views as Postfix and Dovecot, never the tables, with the
statements defined next to the views (`postmeister.dataplane.contract`), so the header From
check and the envelope check cannot drift apart. Each question opens its own short
connection: SQLite in WAL mode is never blocked by a writer, PostgreSQL connections are
cheap next to an SMTP transaction, and no state survives a database failover.

Statements are written with `{name}` placeholders; each dialect turns them into its own
named bound parameters, so no value is ever spliced into SQL.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final, Protocol

from postmeister.dataplane.contract import RECIPIENT_POLICIES, SENDER_LOOKUP

MAY_SEND_AS: Final = SENDER_LOOKUP + " AND s.login = {login} LIMIT 1"
POLICY_OF: Final = f"SELECT antispam FROM {RECIPIENT_POLICIES.name} WHERE address = {{address}}"  # noqa: S608

CONNECT_TIMEOUT: Final = 2


class Database(Protocol):
    def fetch_one(self, statement: str, **values: str) -> tuple[Any, ...] | None:
        """The first row of `statement` with `{name}` placeholders bound to `values`."""
        ...


class SqliteDatabase:
    """Reads an SQLite file read-only (WAL: never blocked by a writer)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fetch_one(self, statement: str, **values: str) -> tuple[Any, ...] | None:
        sql = statement.format(**{name: f":{name}" for name in values})
        connection = sqlite3.connect(self.path, timeout=CONNECT_TIMEOUT)
        try:
            connection.execute("PRAGMA query_only = 1")
            row: tuple[Any, ...] | None = connection.execute(sql, values).fetchone()
        finally:
            connection.close()
        return row


class PostgresDatabase:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {k: v for k, v in params.items() if v is not None}

    def fetch_one(self, statement: str, **values: str) -> tuple[Any, ...] | None:
        import psycopg

        sql = statement.format(**{name: f"%({name})s" for name in values})
        with psycopg.connect(
            **self.params, connect_timeout=CONNECT_TIMEOUT, autocommit=True
        ) as connection:
            row: tuple[Any, ...] | None = connection.execute(sql, values).fetchone()
        return row


def database_from_config(database: dict[str, Any]) -> Database:
    """The database of the `database` part of milter.json."""
    if database["dialect"] == "sqlite":
        return SqliteDatabase(str(database["path"]))
    keys = ("host", "port", "dbname", "user", "password")
    return PostgresDatabase({k: database.get(k) for k in keys})


class ContractLookups:
    """The milters' questions; addresses and logins must be canonical already."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def may_send_as(self, login: str, address: str) -> bool:
        domain = address.rpartition("@")[2]
        row = self.database.fetch_one(MAY_SEND_AS, address=address, domain=domain, login=login)
        return row is not None

    def policy_of(self, address: str) -> str | None:
        row = self.database.fetch_one(POLICY_OF, address=address)
        return None if row is None else str(row[0])

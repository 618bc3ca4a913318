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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from postmeister.dataplane.contract import (
    ALIAS_DOMAIN_LOOKUP,
    ALIASES,
    CATCHALL,
    COUNT_SENDING,
    DKIM_RSA_KEYS,
    DOMAINS,
    MAILBOXES,
    RECIPIENT_POLICIES,
    RECORD_LIMIT_HIT,
    SENDER_LOOKUP,
    SENDING_LIMITS,
    SUBADDRESS_LOOKUP,
)

MAY_SEND_AS: Final = SENDER_LOOKUP + " AND s.login = {login} LIMIT 1"
POLICY_OF: Final = f"SELECT antispam FROM {RECIPIENT_POLICIES.name} WHERE address = {{address}}"  # noqa: S608
LIMITS_OF: Final = (
    f"SELECT {', '.join(SENDING_LIMITS.column_names[1:])} FROM {SENDING_LIMITS.name}"  # noqa: S608
    " WHERE username = {login}"
)
HOSTED: Final = f"SELECT 1 FROM {DOMAINS.name} WHERE domain = {{domain}}"  # noqa: S608
RSA_KEY_OF: Final = (
    f"SELECT selector, private_key FROM {DKIM_RSA_KEYS.name} WHERE domain = {{domain}}"  # noqa: S608
)
CATCHALL_OF: Final = f"SELECT target FROM {CATCHALL.name} WHERE domain = {{domain}}"  # noqa: S608


def targets_statement(dialect: str) -> str:
    """Where Postfix's `virtual_alias_maps` send `{address}` (= `{local}@{domain}`) in one
    step, with the contract's own statements in the order Postfix's query asks them
    (render/postfix.py): forward targets, the mailbox reached by subaddressing, the same
    address at an alias domain's main domain, and a mailbox without targets itself."""
    itself = (
        f"SELECT s.address FROM {MAILBOXES.name} s WHERE s.address = {{address}}"  # noqa: S608
        f" AND NOT EXISTS (SELECT 1 FROM {ALIASES.name} t WHERE t.address = {{address}})"
    )
    return " UNION ALL ".join(
        (
            f"SELECT target FROM {ALIASES.name} WHERE address = {{address}}",  # noqa: S608
            SUBADDRESS_LOOKUP[dialect],
            ALIAS_DOMAIN_LOOKUP,
            itself,
        )
    )


CONNECT_TIMEOUT: Final = 2
# How long a count waits for SQLite's write lock. The controller's writes take milliseconds;
# one that holds the lock longer (a big sync) must not hold up submissions: the count is then
# skipped (`WriteLockBusy`), while every read goes on in WAL mode at normal speed.
COUNT_LOCK_TIMEOUT: Final = 0.5


class WriteLockBusy(TimeoutError):
    """SQLite's write lock stayed taken: nothing was written. A `TimeoutError`, so that the
    limiter (which imports no database code) can tell it from a database failure."""


Value = str | int
# Given the rows the statements returned, True commits the transaction, False rolls it back.
Verdict = Callable[[list[tuple[Any, ...]]], bool]


class Database(Protocol):
    dialect: str  # the SQLAlchemy dialect name: which of a statement's spellings applies

    def fetch_all(self, statement: str, **values: Value) -> list[tuple[Any, ...]]:
        """Every row of `statement` with `{name}` placeholders bound to `values`."""
        ...

    def fetch_one(self, statement: str, **values: Value) -> tuple[Any, ...] | None:
        """The first row of `statement` with `{name}` placeholders bound to `values`."""
        ...

    def execute(self, statement: str, **values: Value) -> None:
        """Run one writing statement in a transaction of its own."""
        ...

    def write_all(
        self, statement: str, rows: Sequence[Mapping[str, Value]], keep: Verdict
    ) -> list[tuple[Any, ...]]:
        """Run `statement` (one that returns one row) once per `rows` in ONE write
        transaction, then commit only if `keep` says so; the returned rows either way."""
        ...


def _returned(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:  # an upsert with RETURNING always returns its row
        raise RuntimeError("the statement returned no row")
    return row


class SqliteDatabase:
    """Reads an SQLite file read-only (WAL: never blocked by a writer)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path

    def fetch_one(self, statement: str, **values: Value) -> tuple[Any, ...] | None:
        rows = self._read(statement, values, first=True)
        return rows[0] if rows else None

    def fetch_all(self, statement: str, **values: Value) -> list[tuple[Any, ...]]:
        return self._read(statement, values, first=False)

    def _read(
        self, statement: str, values: Mapping[str, Value], *, first: bool
    ) -> list[tuple[Any, ...]]:
        sql = statement.format(**{name: f":{name}" for name in values})
        connection = sqlite3.connect(self.path, timeout=CONNECT_TIMEOUT)
        try:
            connection.execute("PRAGMA query_only = 1")
            cursor = connection.execute(sql, dict(values))
            if first:
                row = cursor.fetchone()
                rows: list[tuple[Any, ...]] = [] if row is None else [row]
            else:
                rows = cursor.fetchall()
        finally:
            connection.close()
        return rows

    def _writer(self) -> sqlite3.Connection:
        # Autocommit mode: BEGIN IMMEDIATE below takes the write lock before the first read,
        # so two nodes' counts never interleave (they wait up to the timeout instead).
        return sqlite3.connect(self.path, timeout=COUNT_LOCK_TIMEOUT, isolation_level=None)

    def execute(self, statement: str, **values: Value) -> None:
        connection = self._writer()
        try:
            connection.execute(statement.format(**{name: f":{name}" for name in values}), values)
        finally:
            connection.close()

    def write_all(
        self, statement: str, rows: Sequence[Mapping[str, Value]], keep: Verdict
    ) -> list[tuple[Any, ...]]:
        connection = self._writer()
        try:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    raise WriteLockBusy(str(error)) from error
                raise
            try:
                results = [
                    _returned(
                        connection.execute(
                            statement.format(**{name: f":{name}" for name in row}), dict(row)
                        ).fetchone()
                    )
                    for row in rows
                ]
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT" if keep(results) else "ROLLBACK")
            return results
        finally:
            connection.close()


class PostgresDatabase:
    """PostgreSQL on one host or several (libpq's `host=a,b port=p,q`). The lookups read
    from the first host that answers, a standby included (the contract views are the same
    there, a few milliseconds behind); the statements that write (`execute`, `write_all`)
    connect with `writer_session_attrs` (`read-write`: the primary, wherever it is now)."""

    dialect = "postgresql"

    def __init__(self, params: dict[str, Any], *, writer_session_attrs: str | None = None) -> None:
        self.params = {k: v for k, v in params.items() if v is not None}
        self.writer_params = dict(self.params)
        if writer_session_attrs:
            self.writer_params["target_session_attrs"] = writer_session_attrs

    def fetch_all(self, statement: str, **values: Value) -> list[tuple[Any, ...]]:
        import psycopg

        sql = statement.format(**{name: f"%({name})s" for name in values})
        with psycopg.connect(
            **self.params, connect_timeout=CONNECT_TIMEOUT, autocommit=True
        ) as connection:
            rows: list[tuple[Any, ...]] = connection.execute(sql, values).fetchall()
        return rows

    def fetch_one(self, statement: str, **values: Value) -> tuple[Any, ...] | None:
        import psycopg

        sql = statement.format(**{name: f"%({name})s" for name in values})
        with psycopg.connect(
            **self.params, connect_timeout=CONNECT_TIMEOUT, autocommit=True
        ) as connection:
            row: tuple[Any, ...] | None = connection.execute(sql, values).fetchone()
        return row

    def execute(self, statement: str, **values: Value) -> None:
        import psycopg

        sql = statement.format(**{name: f"%({name})s" for name in values})
        with psycopg.connect(
            **self.writer_params, connect_timeout=CONNECT_TIMEOUT, autocommit=True
        ) as connection:
            connection.execute(sql, values)

    def write_all(
        self, statement: str, rows: Sequence[Mapping[str, Value]], keep: Verdict
    ) -> list[tuple[Any, ...]]:
        import psycopg

        # The upserts lock their rows until the end of the transaction: a concurrent count of
        # the same subject on another node waits and then adds to the committed value.
        with psycopg.connect(**self.writer_params, connect_timeout=CONNECT_TIMEOUT) as connection:
            results = [
                _returned(
                    connection.execute(
                        statement.format(**{name: f"%({name})s" for name in row}), dict(row)
                    ).fetchone()
                )
                for row in rows
            ]
            if keep(results):
                connection.commit()
            else:
                connection.rollback()
        return results


def database_from_config(database: dict[str, Any]) -> Database:
    """The database of the `database` part of milter.json."""
    if database["dialect"] == "sqlite":
        return SqliteDatabase(str(database["path"]))
    keys = ("host", "port", "dbname", "user", "password")
    return PostgresDatabase(
        {k: database.get(k) for k in keys},
        writer_session_attrs=database.get("writer_session_attrs"),
    )


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

    def targets_of(self, address: str) -> list[str]:
        local, _, domain = address.rpartition("@")
        statement = targets_statement(self.database.dialect)
        rows = self.database.fetch_all(statement, address=address, local=local, domain=domain)
        targets = [str(row[0]) for row in rows]
        if targets:
            return targets
        # Postfix asks the catch-all key `@domain` only when the address found nothing.
        return [str(row[0]) for row in self.database.fetch_all(CATCHALL_OF, domain=domain)]

    def is_hosted(self, domain: str) -> bool:
        return self.database.fetch_one(HOSTED, domain=domain) is not None

    def rsa_key_of(self, domain: str) -> tuple[str, str] | None:
        row = self.database.fetch_one(RSA_KEY_OF, domain=domain)
        return None if row is None else (str(row[0]), str(row[1]))

    def sending_limits_of(self, login: str) -> tuple[Any, ...] | None:
        """(domain, then the eight limits in `SENDING_LIMITS`' order), or None: no mailbox."""
        return self.database.fetch_one(LIMITS_OF, login=login)

    def count_sending(
        self, counters: Sequence[tuple[str, str]], recipients: int, keep: Verdict
    ) -> list[tuple[Any, ...]]:
        """Count one message with `recipients` against each (subject, period); the counts
        after it, committed only if `keep` accepts them."""
        rows: list[dict[str, Value]] = [
            {"subject": subject, "period": period, "recipients": recipients}
            for subject, period in counters
        ]
        return self.database.write_all(COUNT_SENDING, rows, keep)

    def record_limit_hit(
        self, *, login: str, subject: str, period: str, limit_name: str, limit_value: int
    ) -> None:
        self.database.execute(
            RECORD_LIMIT_HIT,
            login=login,
            subject=subject,
            period=period,
            limit_name=limit_name,
            limit_value=limit_value,
        )

"""OpenDKIM's data sets: the DSN OpenDBX can parse, for SQLite (relative to the working
directory) and PostgreSQL, and a refusal for what it cannot quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from postmeister.dataplane.render.model import PostgresDatabase, SqliteDatabase
from postmeister.dataplane.render.opendkim import (
    UnrenderableDsn,
    database_dsn,
    working_directory,
)

VIEW = "dataplane_v1_dkim_rsa_keys"
COLUMNS = "?keycol=domain?datacol=domain,selector,private_key"


def test_sqlite_is_named_relative_to_the_database_directory() -> None:
    database = SqliteDatabase(Path("/var/lib/postmeister/db/postmeister.sqlite3"))
    # OpenDBX opens <host><dbase>: "p" + "ostmeister.sqlite3", from the working directory.
    assert database_dsn(database, VIEW) == (
        f"dsn:sqlite3://p/ostmeister.sqlite3/table={VIEW}{COLUMNS}"
    )
    assert working_directory(database) == "/var/lib/postmeister/db"


def test_postgresql_names_user_password_port_and_host() -> None:
    database = PostgresDatabase("db.internal", 5433, "postmeister", "mailserver", "s3cret")
    assert database_dsn(database, VIEW) == (
        f"dsn:pgsql://mailserver:s3cret@5433+db.internal/postmeister/table={VIEW}{COLUMNS}"
    )
    without = PostgresDatabase("127.0.0.1", 5432, "pm", "postgres", None)
    assert database_dsn(without, VIEW).startswith("dsn:pgsql://postgres@5432+127.0.0.1/pm/")


@pytest.mark.parametrize("password", ["a@b", "a:b", "a/b", "a?b", "a+b", "a=b"])
def test_a_password_opendkim_cannot_parse_is_refused_not_mangled(password: str) -> None:
    database = PostgresDatabase("db.internal", 5432, "postmeister", "mailserver", password)
    with pytest.raises(UnrenderableDsn, match="password") as refused:
        database_dsn(database, VIEW)
    assert password not in str(refused.value)

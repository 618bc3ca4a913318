"""A multi-host PostgreSQL URL (a primary and its standby) in the rendered data plane.

A single-host URL renders exactly what the golden files hold; with several hosts each
component names every host, in the spelling its client library reads, and the ones that
write ask for the writable host. The milter part connects for real (PostgreSQL only: a
list of hosts means nothing to SQLite) through a list whose first host is dead.
"""

from __future__ import annotations

import json
import socket

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from postmeister.dataplane.milter.lookups import PostgresDatabase as MilterDatabase
from postmeister.dataplane.milter.lookups import database_from_config
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import (
    Endpoint,
    PostgresDatabase,
    UnsupportedDatabaseError,
    database_from_url,
)
from postmeister.dataplane.render.opendkim import database_dsn
from tests.dataplane.test_render_golden import CASES, GOLDEN, operator_site

BOTH_FORMS = (
    "postgresql+psycopg://mailserver:s3cret@/postmeister?host=db-a.internal:5432"
    "&host=db-b.internal:5433&target_session_attrs=read-write&connect_timeout=3",
    "postgresql+psycopg://mailserver:s3cret@/postmeister?host=db-a.internal,db-b.internal"
    "&port=5432,5433&target_session_attrs=read-write",
)
PRIMARY_AND_STANDBY = PostgresDatabase(
    "db-a.internal", 5432, "postmeister", "mailserver", "s3cret",
    more_hosts=(Endpoint("db-b.internal", 5433),), target_session_attrs="read-write",
)  # fmt: skip


def test_a_single_host_url_renders_the_golden_files_unchanged() -> None:
    database = database_from_url("postgresql+psycopg://mailserver:s3cret@db.internal/postmeister")
    assert database == CASES["postgresql-operator"].database
    case = CASES["postgresql-operator"]
    site = operator_site(database=database, tls=case.tls, relay=case.relay)
    for rendered in render_site(site):
        golden = GOLDEN / "postgresql-operator" / rendered.path
        assert rendered.content == golden.read_text(), rendered.path


@pytest.mark.parametrize("url", BOTH_FORMS)
def test_both_multi_host_spellings_give_every_host_in_order(url: str) -> None:
    assert database_from_url(url) == PRIMARY_AND_STANDBY


def test_one_port_applies_to_every_host_and_a_mismatch_is_refused() -> None:
    shared = database_from_url("postgresql://pm@/pm?host=a,b&port=6432")
    assert isinstance(shared, PostgresDatabase)
    assert shared.endpoints == (Endpoint("a", 6432), Endpoint("b", 6432))
    with pytest.raises(UnsupportedDatabaseError, match="2 hosts but 3 ports"):
        database_from_url("postgresql://pm@/pm?host=a,b&port=1,2,3")


def _rendered() -> dict[str, str]:
    site = operator_site(database=PRIMARY_AND_STANDBY, tls=None)
    return {f.path: f.content for f in render_site(site)}


def test_postfix_lists_every_host_for_its_read_only_lookups() -> None:
    maps = {path: text for path, text in _rendered().items() if "\nquery = " in text}
    assert len(maps) > 5, maps
    for text in maps.values():
        assert "hosts = inet:db-a.internal:5432 inet:db-b.internal:5433\n" in text
        assert "target_session_attrs" not in text


def test_dovecot_asks_libpq_for_the_writable_host() -> None:
    files = _rendered()
    for path in (
        "dovecot/postmeister-sql.conf.ext",
        "dovecot/postmeister-app-passwords-sql.conf.ext",
        "dovecot/postmeister-dict-sql.conf.ext",
    ):
        connect = next(line for line in files[path].splitlines() if line.startswith("connect ="))
        # What libpq itself makes of the string Dovecot hands it.
        assert conninfo_to_dict(connect.removeprefix("connect = ")) == {
            "host": "db-a.internal,db-b.internal", "port": "5432,5433",
            "dbname": "postmeister", "user": "mailserver", "password": "s3cret",
            "connect_timeout": "2", "target_session_attrs": "read-write",
        }  # fmt: skip


def test_the_milters_write_through_the_writable_host_and_read_from_any() -> None:
    config = json.loads(_rendered()["milter.json"])["database"]
    database = database_from_config(config)
    assert isinstance(database, MilterDatabase)
    assert database.params["host"] == "db-a.internal,db-b.internal"
    assert database.params["port"] == "5432,5433"
    assert "target_session_attrs" not in database.params
    assert database.writer_params["target_session_attrs"] == "read-write"


def test_opendkim_names_every_host_in_its_dsn() -> None:
    assert database_dsn(PRIMARY_AND_STANDBY, "keys").startswith(
        "dsn:pgsql://mailserver:s3cret@5432,5433+db-a.internal,db-b.internal/postmeister/"
    )


def _dead_port() -> int:
    # A port nobody listens on: bound for a moment to find it, then closed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_milter_reaches_the_database_past_a_dead_first_host(pg_database_url: str) -> None:
    """A dead first host (the crashed primary) is skipped by reads and by writes."""
    real = database_from_url(pg_database_url)
    assert isinstance(real, PostgresDatabase)
    hosts = (f"127.0.0.1:{_dead_port()}", f"{real.host}:{real.port}")
    url = make_url(pg_database_url).set(host=None, port=None, query={"host": hosts})
    site = operator_site(database=database_from_url(url.render_as_string(False)), tls=None)
    milter_json = next(f.content for f in render_site(site) if f.path == "milter.json")
    database = database_from_config(json.loads(milter_json)["database"])
    assert isinstance(database, MilterDatabase)
    assert database.fetch_one("SELECT 1") == (1,)
    database.execute("CREATE TEMPORARY TABLE written (x int)")
    # The writer's connection landed on a host that takes writes (libpq checked it).
    with psycopg.connect(**database.writer_params) as connection:
        assert connection.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)

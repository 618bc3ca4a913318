"""A multi-host PostgreSQL URL (a primary and its standbys) reaches psycopg whole.

libpq tries the hosts in order and, with `target_session_attrs=read-write`, keeps the first
that accepts writes: that is all a controller needs to follow a failover. Nothing in
`make_engine` may drop a host or the attribute on the way.
"""

from __future__ import annotations

import pytest

from postmeister.db import make_engine

PRIMARY_AND_STANDBY = (
    # SQLAlchemy's form: one `host` parameter per host, each with its port ...
    "postgresql://pm@/postmeister?host=10.0.0.2:5432&host=10.0.0.3:5433"
    "&target_session_attrs=read-write&connect_timeout=3",
    # ... and libpq's: comma-separated lists.
    "postgresql://pm@/postmeister?host=10.0.0.2,10.0.0.3&port=5432,5433"
    "&target_session_attrs=read-write&connect_timeout=3",
)


@pytest.mark.parametrize("url", PRIMARY_AND_STANDBY)
def test_every_host_and_the_session_attribute_reach_the_driver(url: str) -> None:
    engine = make_engine(url)
    try:
        _, arguments = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    assert engine.url.drivername == "postgresql+psycopg"
    assert arguments["host"] == "10.0.0.2,10.0.0.3"
    assert arguments["port"] == "5432,5433"
    assert arguments["target_session_attrs"] == "read-write"
    assert arguments["connect_timeout"] == "3"
    # A dead connection to the old primary is noticed before a request uses it.
    assert engine.pool._pre_ping

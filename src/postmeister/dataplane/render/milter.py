"""Configuration of the Postmeister milters: the sender milter (header From check on
submission) and the antispam milter (rspamd verdict + recipient policies on the SMTP port).

`milter.json` is read by `python -m postmeister.dataplane.milter --config milter.json`
(`postmeister.dataplane.milter.__main__`), which the stack and `postmeister dataplane milter`
start."""

from __future__ import annotations

import json

from postmeister.dataplane.render.model import RenderedFile, Site, SqliteDatabase


def milter_config(site: Site) -> RenderedFile:
    database = site.database
    db: dict[str, object]
    if isinstance(database, SqliteDatabase):
        db = {"dialect": "sqlite", "path": str(database.path)}
    else:
        db = {
            "dialect": "postgresql",
            "host": database.host,
            "port": database.port,
            "dbname": database.dbname,
            "user": database.user,
            "password": database.password,
        }
        if database.more_hosts:
            # libpq's own multi-host spelling, passed to psycopg unchanged.
            db.update(host=database.libpq_host, port=database.libpq_port)
        if database.writer_session_attrs:
            # For the connections that write (sending-limit counters); the lookups read
            # from whichever host answers first (`postmeister.dataplane.milter.lookups`).
            db["writer_session_attrs"] = database.writer_session_attrs
    document: dict[str, object] = {
        "listen": str(site.milter),
        "antispam": {"listen": str(site.antispam_milter), "rspamd": str(site.rspamd)},
        "database": db,
    }
    if site.milter_metrics is not None:
        document["metrics"] = str(site.milter_metrics)
    return RenderedFile(
        "milter.json",
        json.dumps(document, indent=2, sort_keys=True) + "\n",
        secret=not isinstance(database, SqliteDatabase),
    )

"""Configuration of the Postmeister sender milter (header From check on submission)."""

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
    document = {"listen": str(site.milter), "database": db}
    return RenderedFile(
        "milter.json",
        json.dumps(document, indent=2, sort_keys=True) + "\n",
        secret=not isinstance(database, SqliteDatabase),
    )

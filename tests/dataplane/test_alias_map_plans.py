"""Postfix asks the alias maps on every RCPT: with catch-all and alias domains in them, every
branch still finds its rows through an index, never by scanning addresses or domains."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from postmeister.dataplane.render.postfix import MAPS

ALIAS_MAPS = [mp for mp in MAPS if mp.parameter == "virtual_alias_maps"]


def _expanded(query: str, key: str) -> str:
    local, _, domain = key.rpartition("@")
    return query.replace("%s", key).replace("%u", local).replace("%d", domain)


@pytest.mark.parametrize("key", ["someone@a.example", "@a.example"])
def test_every_alias_map_query_searches_indexes(sqlite_template: Path, key: str) -> None:
    """On SQLite, whose planner is the one that falls back to scans (see the contract)."""
    connection = sqlite3.connect(f"file:{sqlite_template}?mode=ro", uri=True)
    try:
        for postfix_map in ALIAS_MAPS:
            sql = _expanded(postfix_map.query_for("sqlite"), key)
            plan = [str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert plan, postfix_map.stem
            assert not [step for step in plan if step.startswith("SCAN")], (postfix_map.stem, plan)
    finally:
        connection.close()


def test_virtual_alias_maps_lists_the_address_map_before_the_catchall() -> None:
    assert [mp.stem for mp in ALIAS_MAPS] == ["virtual-aliases", "virtual-catchall"]
    catchall = ALIAS_MAPS[1].query
    # Only the `@domain` key can match: '%s' is the whole key.
    assert "'%s' = '@%d'" in catchall and "%u" not in catchall

"""SQLite ids are never reused (AUTOINCREMENT), so a stale id never names a newer object.

Without AUTOINCREMENT, SQLite hands out max(id) + 1, so the id of the newest row comes back
once that row is deleted: a client holding `/email-addresses/41` would then reach someone
else's new mailbox. SQLite cannot add AUTOINCREMENT to an existing table, so each table with
a generated id is rebuilt (Alembic's batch mode: create, copy, drop, rename). Around that:

- foreign keys are switched off (outside the transaction, where SQLite honours the pragma),
  because dropping a table with them on deletes its rows first and cascades into the
  children; `PRAGMA foreign_key_check` proves nothing dangles before the commit;
- the data-plane views read these tables and would break the rename, so they are dropped
  and recreated from their own SQL as stored in `sqlite_master` (nothing is imported from
  the application, so this migration keeps working whatever the views become later).

The copied rows keep their ids, and SQLite starts its counter above the largest of them.
PostgreSQL needs nothing: its sequences never hand out an id twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Parents before children, the order the rows are copied in.
TABLES = (
    "customers",
    "packages",
    "sync_sources",
    "domains",
    "addresses",
    "app_passwords",
    "sync_runs",
    "api_tokens",
)


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    tables = [t for t in TABLES if _has_autoincrement(bind, t) != autoincrement]
    if not tables:
        return
    context = op.get_context()
    # Commits what ran before (nothing of this migration) and runs the pragma on its own.
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    # From here to the next autocommit block: one transaction. On any error it is rolled
    # back whole (views included) and the connection, foreign keys off, is discarded.
    views = bind.execute(
        sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid")
    ).all()
    for name, _sql in views:
        op.execute(f'DROP VIEW "{name}"')
    for table in tables:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    for _name, sql in views:
        # The stored SQL may hold colons (in string literals); they are not parameters.
        op.execute(sa.text(sql.replace(":", "\\:")))
    dangling = bind.execute(sa.text("PRAGMA foreign_key_check")).all()
    if dangling:
        raise RuntimeError(f"rebuilding the tables left dangling foreign keys: {dangling}")
    # Committed here, before Alembic records the revision; a crash in between only means
    # this migration runs again, and finds nothing left to rebuild.
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")


def _has_autoincrement(bind: sa.Connection, table: str) -> bool:
    sql = bind.scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table},
    )
    return sql is not None and "AUTOINCREMENT" in sql.upper()

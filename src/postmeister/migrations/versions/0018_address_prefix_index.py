"""An index of the addresses in code point order, for prefix searches (issue 15)

Revision ID: 0018
Revises: 0017

The customer menu finds the addresses that start with what was typed as a range of the
address column (`queries.list_prefix_page`). That range is exact only in code point order.
SQLite's unique index on the column is already in that order (BINARY); PostgreSQL's sorts by
the database's collation (en_US.UTF-8 puts "a-b" between "ab" and "ac", say), so the range
reads `address COLLATE "C"` and needs an index built the same way. No view changes.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_addresses_address_bytes ON addresses (address COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_addresses_address_bytes")

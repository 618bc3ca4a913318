"""packages: limits beyond max_addresses (issue 12)

Revision ID: 0008
Revises: 0007

A package limits the number of mailboxes, the storage of all its mailboxes together, the
quota of one mailbox and the application passwords of one mailbox, besides the number of
addresses it already limited. Every limit is NULL (none) for existing packages, so nothing
changes for them. No view changes: limits are the controller's business, not the data
plane's.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (
    ("max_mailboxes", sa.Integer()),
    ("max_storage_bytes", sa.BigInteger()),
    ("max_quota_bytes", sa.BigInteger()),
    ("max_app_passwords", sa.Integer()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("packages", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)

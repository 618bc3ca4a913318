"""web_users.totp_last_step: a TOTP code is accepted once (issue 15)

Revision ID: 0016
Revises: 0015

The time step (RFC 6238 counter) of the last code a web user logged in with: a code of that
step or an earlier one is refused from then on, so a code seen over a shoulder or taken from
a phishing page cannot be used again in its 30 seconds. NULL: no code accepted yet. No view
changes: the data plane never reads web users.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("totp_last_step")

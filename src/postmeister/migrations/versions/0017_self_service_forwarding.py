"""packages.allow_self_service_forwarding (issue 15)

Revision ID: 0017
Revises: 0016

Whether the owner of a mailbox in the package may change the mailbox's own forwarding in
the web self-service. False for every existing package: forwarding sends mail out of the
provider, so it is something the package grants, not something a mailbox has by default.
No view changes: the data plane reads forward targets, not who may set them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        batch.add_column(
            sa.Column(
                "allow_self_service_forwarding", sa.Boolean(), server_default="0", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        batch.drop_column("allow_self_service_forwarding")

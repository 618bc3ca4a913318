"""audit_events: the audit trail of every change (issue 12)

Revision ID: 0011
Revises: 0010

One row per change, written in the transaction of the change (`postmeister.domain.audit`).
No foreign keys, so that the trail outlives the customers, domains and addresses it
describes; retention (`POSTMEISTER_AUDIT__RETENTION_DAYS`) removes old rows. No view changes:
the data plane never reads the trail.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=True),
        sa.Column("actor_label", sa.String(length=200), nullable=True),
        sa.Column("resource", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.String(length=100), nullable=False),
        sa.Column("resource_name", sa.String(length=320), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_audit_events_occurred_at"), "audit_events", ["occurred_at"], unique=False
    )
    op.create_index("ix_audit_events_customer", "audit_events", ["customer_id", "id"])
    op.create_index("ix_audit_events_resource", "audit_events", ["resource", "resource_id"])


def downgrade() -> None:
    op.drop_table("audit_events")

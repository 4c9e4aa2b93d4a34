"""Capping counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capping_counters",
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_capping_counters_expires", "capping_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_table("capping_counters")

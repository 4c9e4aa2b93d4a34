"""Batch decisioning: datasets and workloads.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_index("ix_datasets_sandbox", "datasets", ["sandbox_pk"])
    op.create_table(
        "workloads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", Json, nullable=False),
        sa.Column("status_detail", Json, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.Column("runner", sa.String(64), nullable=True),
        sa.Column("heartbeat", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_workloads_status", "workloads", ["status", "dataset_id", "created_ms"])
    op.create_index("ix_workloads_sandbox", "workloads", ["sandbox_pk"])


def downgrade() -> None:
    op.drop_table("workloads")
    op.drop_table("datasets")

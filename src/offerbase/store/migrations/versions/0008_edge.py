"""Edge: datastreams and interaction events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "datastreams",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("origins", Json, nullable=False),
        sa.Column("item_counts", Json, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_index("ix_datastreams_sandbox", "datastreams", ["sandbox_pk"])
    op.create_table(
        "interaction_events",
        sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("proposition_id", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.UniqueConstraint("sandbox_pk", "event_id", "seq", name="uq_interaction_events_event"),
    )
    op.create_index(
        "ix_interaction_events_time", "interaction_events", ["sandbox_pk", "timestamp", "row_id"]
    )
    op.create_index(
        "ix_interaction_events_proposition", "interaction_events", ["sandbox_pk", "proposition_id"]
    )


def downgrade() -> None:
    op.drop_table("interaction_events")
    op.drop_table("datastreams")

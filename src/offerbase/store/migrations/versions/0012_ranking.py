"""AI ranking: the learner's queue and state, the strategies' evidence (ranking_stats), and the
index that finds a decision event by its proposition id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

KEY = 255


def _sandbox() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True)


def upgrade() -> None:
    op.create_index(
        "ix_decision_events_proposition", "decision_events", ["sandbox_pk", "proposition_id"]
    )
    op.create_table(
        "ranking_stats",
        _sandbox(),
        sa.Column("strategy_id", sa.String(KEY), primary_key=True),
        sa.Column("arm", sa.String(16), primary_key=True),
        sa.Column("context_key", sa.String(KEY), primary_key=True),
        sa.Column("offer_id", sa.String(KEY), primary_key=True),
        sa.Column("trials", sa.BigInteger, nullable=False),
        sa.Column("successes", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ranking_stats_version", "ranking_stats", ["sandbox_pk", "version"])
    op.create_table(
        "ranking_state",
        _sandbox(),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ranking_queue",
        _sandbox(),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_ranking_queue_due", "ranking_queue", ["sandbox_pk", "due_ms"])
    op.create_index("ix_ranking_queue_due_all", "ranking_queue", ["due_ms"])


def downgrade() -> None:
    op.drop_table("ranking_queue")
    op.drop_table("ranking_state")
    op.drop_table("ranking_stats")
    op.drop_index("ix_decision_events_proposition", table_name="decision_events")

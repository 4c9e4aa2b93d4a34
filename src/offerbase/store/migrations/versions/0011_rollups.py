"""Reports: rollups of decision and interaction events, updated with each event batch.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KEY = 255


def _keys(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    columns: list[sa.Column] = [  # type: ignore[type-arg]
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
    ]
    return columns + [sa.Column(name, sa.String(KEY), primary_key=True) for name in names]


def _sums(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "report_offer_days",
        *_keys("activity_id", "placement_id", "offer_id"),
        *_sums(
            "decisions",
            "fallbacks",
            "cap_hits",
            "displays",
            "unique_displays",
            "clicks",
            "unique_clicks",
        ),
    )
    op.create_table(
        "report_conversions",
        *_keys("activity_id", "placement_id", "offer_id", "event_type"),
        *_sums("conversions"),
    )
    op.create_table(
        "report_propositions",
        *_keys("activity_id", "placement_id"),
        *_sums("propositions", "fallback_propositions", "empty_propositions"),
    )
    op.create_table(
        "report_uniques",
        *_keys("activity_id", "placement_id", "offer_id"),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("identity", sa.String(KEY), primary_key=True),
    )
    op.create_table(
        "report_offer_uniques",
        *_keys("offer_id"),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("identity", sa.String(KEY), primary_key=True),
    )
    op.create_table(
        "report_offer_day_uniques",
        *_keys("offer_id"),
        *_sums("unique_displays", "unique_clicks"),
    )


def downgrade() -> None:
    for table in (
        "report_offer_day_uniques",
        "report_offer_uniques",
        "report_uniques",
        "report_propositions",
        "report_conversions",
    ):
        op.drop_table(table)
    op.drop_table("report_offer_days")

"""Stored profiles and the identities that reach them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Pk = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("pk", Pk, primary_key=True, autoincrement=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("profile_key", sa.String(1300), nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("modified", sa.String(32), nullable=False),
    )
    op.create_index("ix_profiles_sandbox", "profiles", ["sandbox_pk"])
    op.create_table(
        "profile_identities",
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("identity", sa.String(1024), primary_key=True),
        sa.Column("profile_pk", Pk, sa.ForeignKey("profiles.pk"), nullable=False),
    )
    op.create_index("ix_profile_identities_profile", "profile_identities", ["profile_pk"])


def downgrade() -> None:
    op.drop_table("profile_identities")
    op.drop_table("profiles")

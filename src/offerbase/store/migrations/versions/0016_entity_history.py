"""Entity history: every version of every catalog entity, and its deletion, kept (the admin
UI's history, diff and restore). Filled here from the versions the entities table still holds.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entity_history",
        sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("etag", sa.Integer, nullable=False),
        sa.Column("body", Json, nullable=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("by_user", sa.String(255), nullable=False),
        sa.Column("by_client", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_entity_history_entity", "entity_history", ["sandbox_pk", "entity_id", "row_id"]
    )
    # The versions still stored (current ones, and superseded ones younger than the paging
    # horizon), oldest first: an entity's first version is "created", the others "updated".
    op.execute(
        "INSERT INTO entity_history "
        "(sandbox_pk, kind, entity_id, action, etag, body, at, by_user, by_client) "
        "SELECT sandbox_pk, kind, entity_id, "
        "CASE WHEN etag = 1 THEN 'created' ELSE 'updated' END, "
        "etag, body, modified, modified_by, modified_client "
        "FROM entities ORDER BY row_id"
    )


def downgrade() -> None:
    op.drop_index("ix_entity_history_entity", table_name="entity_history")
    op.drop_table("entity_history")

"""The deployment id: one random id per database, for the keys it owns outside it (Redis).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "deployment",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.String(32), nullable=False),
    )
    created = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    op.bulk_insert(table, [{"id": uuid.uuid4().hex, "created": created}])


def downgrade() -> None:
    op.drop_table("deployment")

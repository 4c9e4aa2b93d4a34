"""Credential lifecycle: sandbox scope, admin flag, rotation generation, revocation.

Existing credentials keep working as before: `sandbox` NULL (every sandbox of their org), not
admin, generation 0 (the generation of tokens issued before this migration), not revoked.
`directory_state` holds the version every worker polls to learn of a revocation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("sandbox", sa.String(255), nullable=True))
        batch.add_column(sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("revoked", sa.String(32), nullable=True))
    state = op.create_table(
        "directory_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("credentials_version", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(state, [{"id": 1, "credentials_version": 0}])


def downgrade() -> None:
    op.drop_table("directory_state")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("revoked")
        batch.drop_column("generation")
        batch.drop_column("admin")
        batch.drop_column("sandbox")

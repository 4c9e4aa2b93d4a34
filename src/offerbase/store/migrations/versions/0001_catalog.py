"""Tenants, credentials and the versioned catalog.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_table(
        "sandboxes",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(255), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sandbox_id", sa.String(64), nullable=False, unique=True),
        sa.Column("container_id", sa.String(64), nullable=False, unique=True),
        sa.Column("catalog_version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created", sa.String(32), nullable=False),
        sa.UniqueConstraint("org_id", "name", name="uq_sandboxes_org_name"),
    )
    op.create_table(
        "credentials",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(255), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_table(
        "entities",
        sa.Column(
            "row_id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(1024), nullable=True),
        sa.Column("body", Json, nullable=False),
        sa.Column("etag", sa.Integer, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("modified", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("modified_by", sa.String(255), nullable=False),
        sa.Column("created_client", sa.String(64), nullable=False),
        sa.Column("modified_client", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.BigInteger, nullable=False),
        sa.Column("valid_to", sa.BigInteger, nullable=True),
        sa.Column("closed_at", sa.String(32), nullable=True),
    )
    op.create_index(
        "uq_entities_current_id",
        "entities",
        ["sandbox_pk", "entity_id"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index("ix_entities_list", "entities", ["sandbox_pk", "kind", "modified", "entity_id"])
    op.create_index(
        "ix_entities_versions", "entities", ["sandbox_pk", "kind", "valid_from", "valid_to"]
    )
    op.create_table(
        "entity_references",
        sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
        sa.Column("from_id", sa.String(255), nullable=False),
        sa.Column("from_kind", sa.String(32), nullable=False),
        sa.Column("pointer", sa.String(1024), nullable=False),
        sa.Column("to_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_refs_to", "entity_references", ["sandbox_pk", "to_id"])
    op.create_index("ix_refs_from", "entity_references", ["sandbox_pk", "from_id"])


def downgrade() -> None:
    op.drop_table("entity_references")
    op.drop_table("entities")
    op.drop_table("credentials")
    op.drop_table("sandboxes")
    op.drop_table("organizations")

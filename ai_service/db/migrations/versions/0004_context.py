"""context: company context items (accounts, projects, suppliers, POs, decisions) and versions

Revision ID: 0004_context
Revises: 0003_received
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_context"
down_revision: str | Sequence[str] | None = "0003_received"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "context_items",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_context_items_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("company_id", "kind", "key", name=op.f("pk_context_items")),
    )
    op.create_index(op.f("ix_context_items_version"), "context_items", ["version"], unique=False)
    op.create_table(
        "context_versions",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_context_versions_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_context_versions")),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_context_items_version"), table_name="context_items")
    op.drop_table("context_versions")
    op.drop_table("context_items")

"""folios: CAF ranges and folio allocations (dte_core.storage)

Revision ID: 0001_folios
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_folios"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caf_ranges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("rut_emisor", sa.String(length=10), nullable=False),
        sa.Column("tipo_dte", sa.Integer(), nullable=False),
        sa.Column("folio_desde", sa.BigInteger(), nullable=False),
        sa.Column("folio_hasta", sa.BigInteger(), nullable=False),
        sa.Column("next_folio", sa.BigInteger(), nullable=False),
        sa.Column("fecha_autorizacion", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("caf_xml", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "folio_desde >= 1 AND folio_hasta >= folio_desde",
            name=op.f("ck_caf_ranges_folio_bounds"),
        ),
        sa.CheckConstraint(
            "next_folio >= folio_desde AND next_folio <= folio_hasta + 1",
            name=op.f("ck_caf_ranges_next_folio_bounds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caf_ranges")),
        sa.UniqueConstraint(
            "company_id", "fingerprint", name=op.f("uq_caf_ranges_company_id_fingerprint")
        ),
        sa.UniqueConstraint(
            "company_id",
            "rut_emisor",
            "tipo_dte",
            "folio_desde",
            name=op.f("uq_caf_ranges_company_id_rut_emisor_tipo_dte_folio_desde"),
        ),
    )
    op.create_table(
        "folio_allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("rut_emisor", sa.String(length=10), nullable=False),
        sa.Column("tipo_dte", sa.Integer(), nullable=False),
        sa.Column("folio", sa.BigInteger(), nullable=False),
        sa.Column("caf_range_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_ref", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('reserved', 'issued', 'void')", name=op.f("ck_folio_allocations_status")
        ),
        sa.ForeignKeyConstraint(
            ["caf_range_id"],
            ["caf_ranges.id"],
            name=op.f("fk_folio_allocations_caf_range_id_caf_ranges"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_folio_allocations")),
        sa.UniqueConstraint(
            "company_id",
            "rut_emisor",
            "tipo_dte",
            "folio",
            name=op.f("uq_folio_allocations_company_id_rut_emisor_tipo_dte_folio"),
        ),
        sa.UniqueConstraint(
            "rut_emisor", "tipo_dte", "folio", name=op.f("uq_folio_allocations_emisor_folio")
        ),
    )
    op.create_index(
        "ix_folio_allocations_caf_range_id", "folio_allocations", ["caf_range_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_folio_allocations_caf_range_id", table_name="folio_allocations")
    op.drop_table("folio_allocations")
    op.drop_table("caf_ranges")

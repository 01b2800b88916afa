"""received: received files (raw, before parsing), received documents and signed answers

Revision ID: 0003_received
Revises: 0002_service
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_received"
down_revision: str | Sequence[str] | None = "0002_service"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "received_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("root", sa.String(length=40), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('stored', 'processed', 'refused')", name=op.f("ck_received_files_status")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_received_files_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_files")),
        sa.UniqueConstraint(
            "company_id", "sha256", name=op.f("uq_received_files_company_id_sha256")
        ),
    )
    op.create_table(
        "received_documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("rut_emisor", sa.String(length=12), nullable=False),
        sa.Column("tipo_dte", sa.Integer(), nullable=False),
        sa.Column("folio", sa.BigInteger(), nullable=False),
        sa.Column("rut_receptor", sa.String(length=12), nullable=True),
        sa.Column("fecha_emision", sa.Date(), nullable=True),
        sa.Column("monto_total", sa.BigInteger(), nullable=True),
        sa.Column("authentic", sa.Boolean(), nullable=False),
        sa.Column("schema_valid", sa.Boolean(), nullable=False),
        sa.Column("signature_context", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_received_documents_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["received_files.id"],
            name=op.f("fk_received_documents_file_id_received_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_documents")),
        sa.UniqueConstraint(
            "company_id",
            "rut_emisor",
            "tipo_dte",
            "folio",
            name=op.f("uq_received_documents_company_id_rut_emisor_tipo_dte_folio"),
        ),
    )
    op.create_index(
        op.f("ix_received_documents_file_id"), "received_documents", ["file_id"], unique=False
    )
    op.create_table(
        "received_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("document_id", sa.String(length=36), nullable=True),
        sa.Column("estado", sa.Integer(), nullable=True),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('recepcion', 'resultado', 'recibos')",
            name=op.f("ck_received_responses_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_received_responses_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["received_documents.id"],
            name=op.f("fk_received_responses_document_id_received_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["received_files.id"],
            name=op.f("fk_received_responses_file_id_received_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_responses")),
    )
    op.create_index(
        op.f("ix_received_responses_document_id"),
        "received_responses",
        ["document_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_received_responses_file_id"), "received_responses", ["file_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_received_responses_file_id"), table_name="received_responses")
    op.drop_index(op.f("ix_received_responses_document_id"), table_name="received_responses")
    op.drop_table("received_responses")
    op.drop_index(op.f("ix_received_documents_file_id"), table_name="received_documents")
    op.drop_table("received_documents")
    op.drop_table("received_files")

"""jobs: batch classification jobs and their items (one per document)

Revision ID: 0006_jobs
Revises: 0005_outbox
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_jobs"
down_revision: str | Sequence[str] | None = "0005_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "classify_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("webhook_secret", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'finished')", name=op.f("ck_classify_jobs_state")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_classify_jobs_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classify_jobs")),
        sa.UniqueConstraint(
            "company_id",
            "idempotency_key",
            name=op.f("uq_classify_jobs_company_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("classify_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_classify_jobs_company_id"), ["company_id"], unique=False
        )

    op.create_table(
        "classify_job_items",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=True),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'done', 'failed')", name=op.f("ck_classify_job_items_state")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_classify_job_items_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["received_documents.id"],
            name=op.f("fk_classify_job_items_document_id_received_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["received_files.id"],
            name=op.f("fk_classify_job_items_file_id_received_files"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["classify_jobs.id"],
            name=op.f("fk_classify_job_items_job_id_classify_jobs"),
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_classify_job_items")),
        sa.UniqueConstraint(
            "job_id", "document_id", name=op.f("uq_classify_job_items_job_id_document_id")
        ),
    )
    with op.batch_alter_table("classify_job_items", schema=None) as batch_op:
        batch_op.create_index("ix_classify_job_items_job_state", ["job_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("classify_job_items", schema=None) as batch_op:
        batch_op.drop_index("ix_classify_job_items_job_state")

    op.drop_table("classify_job_items")
    with op.batch_alter_table("classify_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classify_jobs_company_id"))

    op.drop_table("classify_jobs")

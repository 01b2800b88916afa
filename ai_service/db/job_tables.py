"""Batch classification jobs (``ai_service.jobs``); migration ``0006_jobs``.

A job is created with one item per document, all in one transaction, before any task is queued;
workers fill each item's result in place. ``(job_id, seq)`` and ``(job_id, document_id)`` are
unique, and an item leaves ``pending`` only once (a conditional UPDATE), so a redelivered task, a
re-dispatched job or a worker killed before it acknowledged can never record a document twice.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dte_core.storage import metadata

JOB_STATES = ("queued", "running", "finished")
ITEM_STATES = ("pending", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


classify_jobs = Table(
    "classify_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    # counters moved in the same transaction as the items they count
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # api | cli
    # the client's Idempotency-Key: the same key again returns the same job
    Column("idempotency_key", String(200), nullable=True),
    Column("webhook_url", String(500), nullable=True),
    Column("webhook_secret", LargeBinary, nullable=True),  # Fernet token of the signing secret
    Column("webhook_attempts", Integer, nullable=False),
    Column("webhook_delivered_at", DateTime(timezone=True), nullable=True),
    Column("webhook_last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("company_id", "idempotency_key"),
    CheckConstraint(_in("state", JOB_STATES), name="state"),
)

classify_job_items = Table(
    "classify_job_items",
    metadata,
    Column("job_id", String(36), ForeignKey("classify_jobs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # position in the job; tasks take seq ranges
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    # None when the upload never became a document (refused file, unidentified DTE)
    Column("document_id", String(36), ForeignKey("received_documents.id"), nullable=True),
    Column("file_id", Integer, ForeignKey("received_files.id"), nullable=True),
    Column("filename", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("result", Text, nullable=True),  # InvoiceClassification, JSON
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("job_id", "document_id"),
    CheckConstraint(_in("state", ITEM_STATES), name="state"),
    Index("ix_classify_job_items_job_state", "job_id", "state"),
)

JOB_TABLES = (classify_jobs, classify_job_items)

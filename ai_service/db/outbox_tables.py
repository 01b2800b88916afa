"""The outbox: issued documents on their way to the SII, and webhooks; migration ``0005_outbox``.

A document enters the outbox when it is sent (``POST /v1/dte/{id}/send``); the worker groups
queued documents into a submission (one signed EnvioDTE, persisted before any upload), uploads
it, and polls its status. Every state change is an event, and events feed the webhooks.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from dte_core.storage import metadata

#: queued -> submitted -> uploading -> uploaded -> accepted | accepted_with_objections | rejected
ENTRY_STATES = (
    "queued",
    "submitted",
    "uploading",
    "uploaded",
    "accepted",
    "accepted_with_objections",
    "rejected",
)
FINAL_STATES = ("accepted", "accepted_with_objections", "rejected")
SUBMISSION_STATES = ("prepared", "uploading", "uploaded", "final")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# The SII resolution that authorises the company to issue: it goes on every Carátula.
company_sii = Table(
    "company_sii",
    metadata,
    Column("company_id", String(64), ForeignKey("companies.id"), primary_key=True),
    Column("fch_resol", Date, nullable=False),
    Column("nro_resol", Integer, nullable=False),
    # the SII office (Dirección Regional / Unidad) printed under the RUT box
    Column("oficina_sii", String(60), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("family", String(8), nullable=False),  # dte (EnvioDTE) or boleta (EnvioBOLETA)
    Column("envio", LargeBinary, nullable=False),  # the signed envelope, uploaded as is
    Column("track_id", String(32), nullable=True),
    Column("upload_attempts", Integer, nullable=False),
    Column("sii_estado", String(8), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_in("state", SUBMISSION_STATES), name="state"),
    CheckConstraint(_in("family", ("dte", "boleta")), name="family"),
)

outbox_entries = Table(
    "outbox_entries",
    metadata,
    Column("document_id", String(36), ForeignKey("documents.id"), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("state", String(32), nullable=False, index=True),
    Column("submission_id", String(36), ForeignKey("submissions.id"), nullable=True, index=True),
    Column("sii_estado", String(8), nullable=True),
    Column("detail", Text, nullable=True),  # the SII's reasons, JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_in("state", ENTRY_STATES), name="state"),
)

document_events = Table(
    "document_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("document_id", String(36), ForeignKey("documents.id"), nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("url", String(500), nullable=False),
    Column("secret", LargeBinary, nullable=False),  # Fernet token of the signing secret
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    Column("endpoint_id", String(36), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("event_id", BigInteger, ForeignKey("document_events.id"), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
)

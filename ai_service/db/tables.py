"""ai_service tables, defined on the shared ``dte_core.storage.metadata``.

Every row carries ``company_id``; every query of the API filters by it. Migration
``0002_service`` creates the service tables, ``0003_received`` the received-document tables:
change a table and its migration together.
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
    UniqueConstraint,
)

from dte_core.storage import metadata

companies = Table(
    "companies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rut", String(12), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False, index=True),
    Column("prefix", String(8), nullable=False),
    # HMAC-SHA256 keyed from secret_key (see ai_service.secrets), hex
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# One certificate per company (company_id is the key): uploading a new one replaces the old,
# so no superseded private key lingers in the database.
company_certificates = Table(
    "company_certificates",
    metadata,
    Column("company_id", String(64), ForeignKey("companies.id"), primary_key=True),
    Column("p12", LargeBinary, nullable=False),  # Fernet token of the PKCS#12 file
    Column("password", LargeBinary, nullable=False),  # Fernet token of its password
    Column("subject", String(500), nullable=False),
    Column("rut", String(12), nullable=True),  # the holder's RUT, when the certificate has one
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    Column("tipo_dte", Integer, nullable=False),
    Column("folio", BigInteger, nullable=False),
    Column("rut_emisor", String(12), nullable=False),
    Column("rut_receptor", String(12), nullable=False),
    Column("fecha_emision", Date, nullable=False),
    Column("monto_total", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("xml", LargeBinary, nullable=False),  # the signed <DTE>, ISO-8859-1, as issued
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("company_id", "rut_emisor", "tipo_dte", "folio"),
)

# --- received documents (ai_service.ingest) -----------------------------------------------

RECEIVED_FILE_STATUSES = ("stored", "processed", "refused")
RECEIVED_SOURCES = ("api", "folder", "imap", "cli")
RESPONSE_KINDS = ("recepcion", "resultado", "recibos")

# Every received file, byte for byte, stored *before* it is parsed: a hostile or broken file
# stays here with its error. The integer id is the CodEnvio quoted in the acuse de recibo.
received_files = Table(
    "received_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("filename", String(255), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("root", String(40), nullable=True),  # the root element's local name
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("report", Text, nullable=True),  # the verification report, JSON
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    # the same bytes twice are the same file: re-ingesting is idempotent
    UniqueConstraint("company_id", "sha256"),
    CheckConstraint("status IN ('stored', 'processed', 'refused')", name="status"),
)

received_documents = Table(
    "received_documents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    Column("file_id", Integer, ForeignKey("received_files.id"), nullable=False, index=True),
    Column("rut_emisor", String(12), nullable=False),
    Column("tipo_dte", Integer, nullable=False),
    Column("folio", BigInteger, nullable=False),
    Column("rut_receptor", String(12), nullable=True),
    Column("fecha_emision", Date, nullable=True),
    Column("monto_total", BigInteger, nullable=True),
    Column("authentic", Boolean, nullable=False),  # TED, CAF and signature verify
    Column("schema_valid", Boolean, nullable=False),
    Column("signature_context", String(32), nullable=True),
    Column("status", String(32), nullable=False),  # received | accepted | ... | rejected
    Column("xml", LargeBinary, nullable=False),  # the <DTE>, SII namespace restored
    Column("report", Text, nullable=False),  # this document's verification, JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # one document per (company, emisor, tipo, folio), whichever file brought it
    UniqueConstraint("company_id", "rut_emisor", "tipo_dte", "folio"),
)

# The signed answers sent back to the emisor; the integer id is the IdRespuesta.
received_responses = Table(
    "received_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", String(64), ForeignKey("companies.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("file_id", Integer, ForeignKey("received_files.id"), nullable=True, index=True),
    Column(
        "document_id", String(36), ForeignKey("received_documents.id"), nullable=True, index=True
    ),
    Column("estado", Integer, nullable=True),
    Column("xml", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('recepcion', 'resultado', 'recibos')", name="kind"),
)

SERVICE_TABLES = (companies, api_keys, company_certificates, documents)
RECEIVED_TABLES = (received_files, received_documents, received_responses)

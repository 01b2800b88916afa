"""The shared database schema (SQLAlchemy Core) and an engine factory tuned for concurrent writers.

``metadata`` is the one ``MetaData`` of the whole application: ai_service defines its tables on
it too, so Alembic sees a single schema. Every row carries its ``company_id``: several companies
share one database and every query must filter by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, make_url

# Deterministic constraint names: Alembic can only drop or alter what it can name, and SQLite
# batch migrations need every constraint named. ``column_0_N_name`` keeps multi-column unique
# constraints distinct (all names stay under PostgreSQL's 63-character limit).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

FOLIO_STATUSES = ("reserved", "issued", "void")

SQLITE_BUSY_TIMEOUT_S = 60


def utcnow() -> datetime:
    return datetime.now(UTC)


caf_ranges = Table(
    "caf_ranges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", String(64), nullable=False),
    Column("rut_emisor", String(10), nullable=False),
    Column("tipo_dte", Integer, nullable=False),
    Column("folio_desde", BigInteger, nullable=False),
    Column("folio_hasta", BigInteger, nullable=False),
    # The next folio never handed out by allocate(); folio_hasta + 1 once the range is spent.
    Column("next_folio", BigInteger, nullable=False),
    Column("fecha_autorizacion", Date, nullable=False),
    Column("expires_on", Date, nullable=True),
    # The raw CAF file, private key (RSASK) included. Encrypting it at rest is the service's
    # job (it owns the key management); dte_core stores and returns the bytes it is given.
    Column("caf_xml", LargeBinary, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    UniqueConstraint("company_id", "fingerprint"),
    UniqueConstraint("company_id", "rut_emisor", "tipo_dte", "folio_desde"),
    CheckConstraint("folio_desde >= 1 AND folio_hasta >= folio_desde", name="folio_bounds"),
    CheckConstraint(
        "next_folio >= folio_desde AND next_folio <= folio_hasta + 1", name="next_folio_bounds"
    ),
)

folio_allocations = Table(
    "folio_allocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("company_id", String(64), nullable=False),
    Column("rut_emisor", String(10), nullable=False),
    Column("tipo_dte", Integer, nullable=False),
    Column("folio", BigInteger, nullable=False),
    Column(
        "caf_range_id",
        Integer,
        ForeignKey("caf_ranges.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("document_ref", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Column("allocated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    # The last line of defence: whatever the application does, the database refuses to
    # record the same folio twice (a reused folio is rejected by the SII and is a tax offence).
    UniqueConstraint("company_id", "rut_emisor", "tipo_dte", "folio"),
    # A folio belongs to the emisor's RUT, whichever tenant holds the CAF: two accounts loading
    # the same CAF must not be able to issue the same number twice.
    UniqueConstraint("rut_emisor", "tipo_dte", "folio", name="uq_folio_allocations_emisor_folio"),
    CheckConstraint("status IN ('reserved', 'issued', 'void')", name="status"),
)

Index("ix_folio_allocations_caf_range_id", folio_allocations.c.caf_range_id)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (the documented pysqlite recipe):
    # it would otherwise start transactions lazily, on the first write, as DEFERRED.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # FULL (not WAL's usual NORMAL): a committed folio must survive a power cut, or it
        # could be handed out a second time after a restart.
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue on
    # busy_timeout. A DEFERRED transaction that reads and then writes can instead fail with
    # "database is locked" at its first write, which no timeout helps. Read-only work can opt
    # out with execution_options(sqlite_deferred=True) so it does not queue behind writers.
    deferred = conn.get_execution_options().get("sqlite_deferred", False)
    conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An Engine for ``url`` configured for many concurrent writers (threads and processes).

    SQLite: WAL, a long busy timeout, foreign keys on and ``BEGIN IMMEDIATE`` for every
    transaction. PostgreSQL: ``pool_pre_ping`` so a restarted server does not fail the next
    request. Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)

"""Folio allocation: each folio authorised by a CAF is handed out once, and never skipped silently.

Concurrency model. Many processes (API workers, CLI runs, batch jobs) allocate from the same
ranges. The primitive is one conditional ``UPDATE caf_ranges SET next_folio = next_folio + 1
... WHERE next_folio <= folio_hasta RETURNING next_folio - 1`` in the same transaction as the
INSERT of the allocation row:

* the UPDATE is a read-modify-write the database performs under the row's write lock, so two
  transactions can never read the same ``next_folio`` (no SELECT-then-UPDATE window, no
  lost update). PostgreSQL re-checks the WHERE clause against the row a concurrent
  transaction just committed (READ COMMITTED re-evaluation), so a range spent meanwhile
  yields no row instead of a folio past ``folio_hasta``; SQLite runs every write transaction
  under ``BEGIN IMMEDIATE`` (see ``storage.create_engine_for``), which serialises them;
* the allocation INSERT commits or rolls back together with the counter, so a crash can
  neither lose a folio (counter moved, no row) nor hand one out twice;
* the UNIQUE (company_id, rut_emisor, tipo_dte, folio) constraint makes the database itself
  refuse a reused folio whatever the code above does.

Invariant: every folio in ``[folio_desde, next_folio)`` of a range has an allocation row, and
``next_folio`` itself is free (``allocate_specific`` may take folios ahead of it; the counter
jumps over them when it reaches them). The rare lost race (range spent under us, PostgreSQL
serialisation failure or deadlock, SQLite busy beyond its timeout) is retried with tenacity.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from dte_core.errors import FolioError, FoliosExhaustedError
from dte_core.rut import Rut
from dte_core.storage import caf_ranges, folio_allocations, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

_r = caf_ranges.c
_a = folio_allocations.c

# PostgreSQL SQLSTATEs worth one more attempt: serialization_failure, deadlock_detected.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


@dataclass(frozen=True)
class FolioRange:
    """What ``register_range`` needs from a CAF (the caller maps a parsed, verified CAF)."""

    rut_emisor: str
    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    fecha_autorizacion: date
    expires_on: date | None  # first day the range may no longer be used; None: never expires
    caf_xml: bytes
    fingerprint: str


@dataclass(frozen=True)
class Allocation:
    folio: int
    tipo_dte: int
    rut_emisor: str
    caf_range_id: int
    remaining: int  # free folios left across all usable ranges of (company, rut, tipo)
    low: bool  # remaining <= the low-water mark: the caller should request a new CAF


@dataclass(frozen=True)
class _Key:
    company_id: str
    rut_emisor: str
    tipo_dte: int

    def ranges(self, table: FromClause = caf_ranges) -> ColumnElement[bool]:
        return and_(
            table.c.company_id == self.company_id,
            table.c.rut_emisor == self.rut_emisor,
            table.c.tipo_dte == self.tipo_dte,
        )

    def allocations(self) -> ColumnElement[bool]:
        return and_(
            _a.company_id == self.company_id,
            _a.rut_emisor == self.rut_emisor,
            _a.tipo_dte == self.tipo_dte,
        )

    def describe(self) -> str:
        return f"emisor {self.rut_emisor}, tipo_dte {self.tipo_dte}"


class _RangeRaced(Exception):
    """Another transaction spent the chosen range between choosing it and updating it."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _RangeRaced):
        return True
    if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
        if getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES:
            return True
        text = str(exc.orig).lower()
        return "database is locked" in text or "database is busy" in text
    return False


def _usable(key: _Key, today: date, table: FromClause = caf_ranges) -> ColumnElement[bool]:
    """Ranges of ``key`` with folios left and not expired (``expires_on`` is the first day the
    CAF may no longer be used)."""
    c = table.c
    return and_(
        key.ranges(table),
        c.next_folio <= c.folio_hasta,
        or_(c.expires_on.is_(None), c.expires_on > today),
    )


class FolioStore:
    """Persistent, atomic folio allocation over the ``caf_ranges``/``folio_allocations`` tables."""

    def __init__(
        self,
        engine: Engine,
        *,
        low_water_mark: int = 10,
        on_low: Callable[[str, str, int, int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._low_water_mark = low_water_mark
        self._on_low = on_low
        self._postgres = engine.dialect.name == "postgresql"

    # ---------------------------------------------------------------- ranges

    def register_range(self, company_id: str, rng: FolioRange) -> int:
        """Store a CAF's range; the same CAF (same fingerprint) again returns the same id."""
        key = _key(company_id, rng.rut_emisor, rng.tipo_dte)
        if not 1 <= rng.folio_desde <= rng.folio_hasta:
            raise FolioError(
                f"CAF range {rng.folio_desde}-{rng.folio_hasta} is empty or invalid: "
                "load the CAF file exactly as the SII issued it",
                code="invalid_caf_range",
            )
        return self._retrying(retry_integrity=True)(self._register_once, key, rng)

    def _register_once(self, key: _Key, rng: FolioRange) -> int:
        with self._engine.begin() as conn:
            if self._postgres:
                # Two registrations of overlapping CAFs must not both pass the overlap check:
                # serialise registrations per (rut, tipo). SQLite's BEGIN IMMEDIATE
                # already does.
                conn.execute(select(func.pg_advisory_xact_lock(_lock_id(key))))
            existing = conn.execute(
                select(_r.id).where(
                    _r.company_id == key.company_id, _r.fingerprint == rng.fingerprint
                )
            ).scalar_one_or_none()
            if existing is not None:
                return int(existing)
            clash = conn.execute(
                select(_r.folio_desde, _r.folio_hasta)
                .where(
                    key.ranges(),
                    _r.folio_desde <= rng.folio_hasta,
                    _r.folio_hasta >= rng.folio_desde,
                )
                .limit(1)
            ).first()
            if clash is None:
                clash = conn.execute(
                    select(_r.folio_desde, _r.folio_hasta)
                    .where(
                        _r.rut_emisor == key.rut_emisor,
                        _r.tipo_dte == key.tipo_dte,
                        _r.company_id != key.company_id,
                        _r.folio_desde <= rng.folio_hasta,
                        _r.folio_hasta >= rng.folio_desde,
                    )
                    .limit(1)
                ).first()
                if clash is not None:
                    # folios belong to the emisor's RUT: one account per RUT may hold them
                    raise FolioError(
                        f"CAF folios {rng.folio_desde}-{rng.folio_hasta} of {key.rut_emisor} are "
                        "already registered by another account: issue from that account",
                        code="caf_held_by_other_company",
                    )
            if clash is not None:
                raise FolioError(
                    f"CAF folios {rng.folio_desde}-{rng.folio_hasta} overlap the registered "
                    f"CAF {clash.folio_desde}-{clash.folio_hasta} for {key.describe()}: a folio "
                    "can be authorised only once; check that this is the right CAF file",
                    code="caf_overlap",
                )
            row = {
                **asdict(rng),
                "company_id": key.company_id,
                "rut_emisor": key.rut_emisor,
                "tipo_dte": key.tipo_dte,
                "next_folio": rng.folio_desde,
                "created_at": utcnow(),
            }
            new_id = conn.execute(insert(caf_ranges).values(row).returning(_r.id)).scalar_one()
            return int(new_id)

    # ------------------------------------------------------------ allocation

    def allocate(
        self,
        company_id: str,
        rut_emisor: str,
        tipo_dte: int,
        *,
        today: date,
        document_ref: str | None = None,
    ) -> Allocation:
        """Reserve the lowest free folio of the oldest usable range (atomic across processes)."""
        key = _key(company_id, rut_emisor, tipo_dte)
        allocation = self._retrying()(self._allocate_once, key, today, document_ref)
        self._signal(key, allocation)
        return allocation

    def _allocate_once(self, key: _Key, today: date, document_ref: str | None) -> Allocation:
        # An alias, so the subquery is not correlated to the UPDATE's own caf_ranges row.
        candidate = caf_ranges.alias("candidate")
        oldest = (
            select(candidate.c.id)
            .where(_usable(key, today, candidate))
            .order_by(candidate.c.fecha_autorizacion, candidate.c.folio_desde, candidate.c.id)
            .limit(1)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            row = conn.execute(
                update(caf_ranges)
                .where(
                    _r.id == oldest,
                    _r.company_id == key.company_id,
                    _r.next_folio <= _r.folio_hasta,
                )
                .values(next_folio=_r.next_folio + 1)
                .returning(_r.id, (_r.next_folio - 1).label("folio"), _r.folio_hasta)
            ).first()
            if row is None:
                if conn.execute(select(_r.id).where(_usable(key, today)).limit(1)).first():
                    raise _RangeRaced
                raise FoliosExhaustedError(
                    f"no folios left for {key.describe()} (every CAF is used up or expired): "
                    "load a new CAF from the SII",
                )
            folio = int(row.folio)
            self._skip_taken(conn, key, int(row.id), folio + 1, int(row.folio_hasta))
            self._insert_reserved(conn, key, int(row.id), folio, document_ref)
            return self._allocation(conn, key, int(row.id), folio, today)

    def allocate_specific(
        self,
        company_id: str,
        rut_emisor: str,
        tipo_dte: int,
        folio: int,
        *,
        today: date,
        document_ref: str | None = None,
    ) -> Allocation:
        """Reserve a folio the user chose; it must be free and inside a usable CAF range."""
        key = _key(company_id, rut_emisor, tipo_dte)
        allocation = self._retrying()(self._allocate_specific_once, key, folio, today, document_ref)
        self._signal(key, allocation)
        return allocation

    def _allocate_specific_once(
        self, key: _Key, folio: int, today: date, document_ref: str | None
    ) -> Allocation:
        with self._engine.begin() as conn:
            # FOR UPDATE: lock the range row exactly like allocate()'s UPDATE does, so the two
            # never decide about the same folio at the same time (no-op on SQLite, which
            # already holds the database write lock).
            rng = conn.execute(
                select(_r.id, _r.next_folio, _r.folio_hasta, _r.expires_on)
                .where(key.ranges(), _r.folio_desde <= folio, _r.folio_hasta >= folio)
                .with_for_update()
            ).first()
            if rng is None:
                raise FolioError(
                    f"folio {folio} is not in any CAF registered for {key.describe()}: load the "
                    "CAF that authorises it, or leave the folio empty to have one assigned",
                    code="folio_out_of_range",
                )
            if rng.expires_on is not None and rng.expires_on <= today:
                raise FolioError(
                    f"the CAF holding folio {folio} ({key.describe()}) expired on "
                    f"{rng.expires_on}: load a new CAF from the SII and use one of its folios",
                    code="caf_expired",
                )
            status = conn.execute(
                select(_a.status).where(key.allocations(), _a.folio == folio)
            ).scalar_one_or_none()
            if status is not None:
                raise _already_used(key, folio, status)
            try:
                self._insert_reserved(conn, key, int(rng.id), folio, document_ref)
            except IntegrityError as exc:
                raise _already_used(key, folio, "reserved") from exc
            if folio == rng.next_folio:
                self._skip_taken(conn, key, int(rng.id), folio, int(rng.folio_hasta))
            return self._allocation(conn, key, int(rng.id), folio, today)

    def _skip_taken(
        self, conn: Connection, key: _Key, range_id: int, start: int, hasta: int
    ) -> None:
        """Move ``next_folio`` from ``start`` past folios already taken by allocate_specific."""
        taken = conn.execute(
            select(_a.folio)
            .where(key.allocations(), _a.folio >= start, _a.folio <= hasta)
            .order_by(_a.folio)
        ).scalars()
        nxt = start
        for folio in taken:
            if folio != nxt:
                break
            nxt += 1
        if nxt != start:
            conn.execute(
                update(caf_ranges)
                .where(_r.id == range_id, _r.company_id == key.company_id)
                .values(next_folio=nxt)
            )

    def _insert_reserved(
        self, conn: Connection, key: _Key, range_id: int, folio: int, document_ref: str | None
    ) -> None:
        now = utcnow()
        conn.execute(
            insert(folio_allocations).values(
                company_id=key.company_id,
                rut_emisor=key.rut_emisor,
                tipo_dte=key.tipo_dte,
                folio=folio,
                caf_range_id=range_id,
                status="reserved",
                document_ref=document_ref,
                allocated_at=now,
                updated_at=now,
            )
        )

    def _allocation(
        self, conn: Connection, key: _Key, range_id: int, folio: int, today: date
    ) -> Allocation:
        left = _remaining(conn, key, today)
        return Allocation(
            folio=folio,
            tipo_dte=key.tipo_dte,
            rut_emisor=key.rut_emisor,
            caf_range_id=range_id,
            remaining=left,
            low=left <= self._low_water_mark,
        )

    def _signal(self, key: _Key, allocation: Allocation) -> None:
        # Fires on every allocation at or under the mark (not only on crossing it): with
        # several processes allocating, "the one that crossed" is easy to miss, and a
        # repeated reminder is harmless. Runs after commit: the folio is already the caller's.
        if not allocation.low or self._on_low is None:
            return
        try:
            self._on_low(key.company_id, key.rut_emisor, key.tipo_dte, allocation.remaining)
        except Exception:
            log.exception("on_low callback failed for %s", key.describe())

    # ------------------------------------------------------------- lifecycle

    def mark_issued(
        self, company_id: str, rut_emisor: str, tipo_dte: int, folio: int, document_ref: str
    ) -> None:
        """The document with this folio was signed and handed out: the folio is consumed."""
        key = _key(company_id, rut_emisor, tipo_dte)
        self._retrying()(self._transition, key, folio, "issued", document_ref, None)

    def mark_void(
        self, company_id: str, rut_emisor: str, tipo_dte: int, folio: int, reason: str
    ) -> None:
        """The folio will never carry a document: it must be declared void (anulado) to the SII."""
        key = _key(company_id, rut_emisor, tipo_dte)
        self._retrying()(self._transition, key, folio, "void", None, reason)

    def _transition(
        self, key: _Key, folio: int, target: str, document_ref: str | None, reason: str | None
    ) -> None:
        with self._engine.begin() as conn:
            current = conn.execute(
                select(_a.status, _a.document_ref).where(key.allocations(), _a.folio == folio)
            ).first()
            if current is None:
                raise FolioError(
                    f"folio {folio} ({key.describe()}) was never allocated here: allocate it "
                    "before marking it",
                    code="folio_not_allocated",
                )
            if target == "issued":
                if current.status == "issued" and current.document_ref == document_ref:
                    return
                if current.status != "reserved":
                    raise _already_used(key, folio, current.status)
                values: dict[str, Any] = {"status": "issued", "document_ref": document_ref}
            else:
                if current.status == "void":
                    return
                # An issued folio may still be voided: its XML may never have left the process
                # (the envelope failed), and the gap must then be declared.
                values = {"status": "void", "reason": reason}
            conn.execute(
                update(folio_allocations)
                .where(key.allocations(), _a.folio == folio)
                .values(updated_at=utcnow(), **values)
            )

    # --------------------------------------------------------------- queries

    def remaining(self, company_id: str, rut_emisor: str, tipo_dte: int, *, today: date) -> int:
        """Free folios across the usable (unexpired) ranges of (company, rut, tipo)."""
        key = _key(company_id, rut_emisor, tipo_dte)
        with self._engine.connect().execution_options(sqlite_deferred=True) as conn:
            return _remaining(conn, key, today)

    def unused(
        self, company_id: str, rut_emisor: str, tipo_dte: int, *, today: date | None = None
    ) -> list[int]:
        """Folios to declare void to the SII: reserved but never issued, voided, and the
        never-allocated folios of expired ranges (as of ``today``, default the local date)."""
        key = _key(company_id, rut_emisor, tipo_dte)
        day = today or date.today()
        with self._engine.connect().execution_options(sqlite_deferred=True) as conn:
            gaps = set(
                conn.execute(
                    select(_a.folio).where(key.allocations(), _a.status.in_(("reserved", "void")))
                ).scalars()
            )
            expired = conn.execute(
                select(_r.next_folio, _r.folio_hasta).where(
                    key.ranges(), _r.expires_on.is_not(None), _r.expires_on <= day
                )
            ).all()
            for nxt, hasta in expired:
                taken = set(
                    conn.execute(
                        select(_a.folio).where(
                            key.allocations(), _a.folio >= nxt, _a.folio <= hasta
                        )
                    ).scalars()
                )
                gaps.update(f for f in range(int(nxt), int(hasta) + 1) if f not in taken)
        return sorted(int(f) for f in gaps)

    def caf_xml_for(self, company_id: str, rut_emisor: str, tipo_dte: int, folio: int) -> bytes:
        """The raw CAF whose range covers ``folio`` (needed to stamp the TED)."""
        key = _key(company_id, rut_emisor, tipo_dte)
        with self._engine.connect().execution_options(sqlite_deferred=True) as conn:
            raw = conn.execute(
                select(_r.caf_xml).where(
                    key.ranges(), _r.folio_desde <= folio, _r.folio_hasta >= folio
                )
            ).scalar_one_or_none()
        if raw is None:
            raise FolioError(
                f"no CAF registered for folio {folio} ({key.describe()}): load the CAF that "
                "authorises it",
                code="folio_out_of_range",
            )
        return bytes(raw)

    # --------------------------------------------------------------- helpers

    def _retrying(self, *, retry_integrity: bool = False) -> Retrying:
        def should_retry(exc: BaseException) -> bool:
            # A concurrent registration of the same CAF trips a UNIQUE constraint; the retry
            # then finds the row it lost to and returns its id.
            return _retryable(exc) or (retry_integrity and isinstance(exc, IntegrityError))

        return Retrying(
            retry=retry_if_exception(should_retry),
            stop=stop_after_attempt(10),
            wait=wait_random_exponential(multiplier=0.01, max=0.5),
            reraise=True,
        )


def _remaining(conn: Connection, key: _Key, today: date) -> int:
    usable = _usable(key, today)
    free = conn.execute(
        select(func.coalesce(func.sum(_r.folio_hasta - _r.next_folio + 1), 0)).where(usable)
    ).scalar_one()
    ahead = conn.execute(
        select(func.count())
        .select_from(folio_allocations.join(caf_ranges, _a.caf_range_id == _r.id))
        .where(usable, key.allocations(), _a.folio >= _r.next_folio)
    ).scalar_one()
    return int(free) - int(ahead)


def _already_used(key: _Key, folio: int, status: str) -> FolioError:
    what = {
        "issued": "was already issued",
        "void": "was voided and can never be reused",
        "reserved": "is already reserved by another document",
    }.get(status, "is already used")
    return FolioError(
        f"folio {folio} ({key.describe()}) {what}: use another folio or leave it empty to have "
        "the next free one assigned",
        code="folio_already_used",
    )


def _key(company_id: str, rut_emisor: str, tipo_dte: int) -> _Key:
    if not company_id or len(company_id) > 64:
        raise FolioError(
            "company_id must be 1-64 characters: every folio belongs to one company",
            code="invalid_company",
        )
    # Canonical RUT form, so "76.086.428-5" and "76086428-5" are the same emisor.
    return _Key(company_id, str(Rut.parse(rut_emisor, field="rut_emisor")), int(tipo_dte))


def _lock_id(key: _Key) -> int:
    # per emisor and tipo, not per company: the cross-account overlap check needs it too
    digest = hashlib.sha256(f"{key.rut_emisor}|{key.tipo_dte}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)

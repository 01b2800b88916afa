"""FolioStore on SQLite and PostgreSQL: no folio twice, none skipped silently, one company only."""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from dte_core.errors import FolioError, FoliosExhaustedError, InvalidRutError
from dte_core.folios import FolioRange, FolioStore
from dte_core.storage import caf_ranges, create_engine_for, folio_allocations

TODAY = date(2025, 3, 10)
RUT = "76086428-5"
OTHER_RUT = "96670340-7"
COMPANY = "acme"


def caf(
    desde: int,
    hasta: int,
    *,
    tipo: int = 33,
    rut: str = RUT,
    fa: date = date(2025, 1, 2),
    expires_on: date | None = date(2025, 7, 2),
) -> FolioRange:
    return FolioRange(
        rut_emisor=rut,
        tipo_dte=tipo,
        folio_desde=desde,
        folio_hasta=hasta,
        fecha_autorizacion=fa,
        expires_on=expires_on,
        caf_xml=f"<AUTORIZACION>{rut} {tipo} {desde}-{hasta}</AUTORIZACION>".encode(),
        fingerprint=f"fp-{rut}-{tipo}-{desde}-{hasta}-{fa}",
    )


def rows(engine: Engine, company: str = COMPANY) -> dict[int, str]:
    with engine.connect() as conn:
        result = conn.execute(
            select(folio_allocations.c.folio, folio_allocations.c.status).where(
                folio_allocations.c.company_id == company
            )
        )
        return {int(f): s for f, s in result}


def next_folios(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            int(n)
            for n in conn.execute(
                select(caf_ranges.c.next_folio).order_by(caf_ranges.c.folio_desde)
            ).scalars()
        ]


def take(store: FolioStore, n: int, *, company: str = COMPANY, tipo: int = 33) -> list[int]:
    return [store.allocate(company, RUT, tipo, today=TODAY).folio for _ in range(n)]


def test_sequential_allocation_reserves_in_the_same_transaction(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    range_id = store.register_range(COMPANY, caf(1, 10))
    first = store.allocate(COMPANY, RUT, 33, today=TODAY, document_ref="inv-1")
    assert (first.folio, first.caf_range_id, first.remaining, first.tipo_dte) == (
        1,
        range_id,
        9,
        33,
    )
    assert take(store, 2) == [2, 3]
    assert rows(migrated_engine) == {1: "reserved", 2: "reserved", 3: "reserved"}
    assert next_folios(migrated_engine) == [4]
    assert store.remaining(COMPANY, RUT, 33, today=TODAY) == 7


def test_oldest_caf_is_used_first_then_the_next_then_exhausted(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    # Registered first but authorised later: must be used after the older one.
    newer = store.register_range(COMPANY, caf(1, 2, fa=date(2025, 2, 1)))
    older = store.register_range(COMPANY, caf(100, 102, fa=date(2025, 1, 5)))
    got = [store.allocate(COMPANY, RUT, 33, today=TODAY) for _ in range(5)]
    assert [a.folio for a in got] == [100, 101, 102, 1, 2]
    assert [a.caf_range_id for a in got] == [older] * 3 + [newer] * 2
    assert [a.remaining for a in got] == [4, 3, 2, 1, 0]
    with pytest.raises(FoliosExhaustedError) as err:
        store.allocate(COMPANY, RUT, 33, today=TODAY)
    assert err.value.code == "folios_exhausted"
    assert "new CAF" in err.value.message and "SII" in err.value.message
    assert len(rows(migrated_engine)) == 5


def test_expired_range_is_skipped_and_its_folios_reported(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 5, fa=date(2024, 9, 10), expires_on=TODAY))
    store.register_range(COMPANY, caf(6, 8))
    assert store.remaining(COMPANY, RUT, 33, today=TODAY) == 3
    # The day before it expires, the old range is still the one in use.
    assert store.remaining(COMPANY, RUT, 33, today=TODAY - timedelta(days=1)) == 8
    assert store.allocate(COMPANY, RUT, 33, today=TODAY).folio == 6
    with pytest.raises(FolioError) as err:
        store.allocate_specific(COMPANY, RUT, 33, 3, today=TODAY)
    assert err.value.code == "caf_expired"
    assert store.unused(COMPANY, RUT, 33, today=TODAY) == [1, 2, 3, 4, 5, 6]


def test_overlapping_caf_is_refused(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 10))
    with pytest.raises(FolioError) as err:
        store.register_range(COMPANY, caf(10, 20))
    assert err.value.code == "caf_overlap"
    with pytest.raises(FolioError):
        store.register_range(COMPANY, caf(3, 4, fa=date(2025, 1, 3)))
    # The same folio numbers are independent for another tipo or emisor...
    store.register_range(COMPANY, caf(1, 10, tipo=61))
    store.register_range(COMPANY, caf(1, 10, rut=OTHER_RUT))
    # ...but not for another account: folios belong to the emisor's RUT.
    with pytest.raises(FolioError) as other:
        store.register_range("other-co", caf(5, 15))
    assert other.value.code == "caf_held_by_other_company"
    with migrated_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(caf_ranges)).scalar_one() == 3


def test_register_is_idempotent_by_fingerprint(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    rng = caf(1, 10)
    first = store.register_range(COMPANY, rng)
    assert take(store, 2) == [1, 2]
    dotted = FolioRange(**{**rng.__dict__, "rut_emisor": "76.086.428-5"})
    assert store.register_range(COMPANY, rng) == first
    assert store.register_range(COMPANY, dotted) == first
    assert next_folios(migrated_engine) == [3]  # re-registering does not rewind
    assert store.allocate(COMPANY, "76.086.428-5", 33, today=TODAY).folio == 3


def test_allocate_specific_keeps_the_counter_consistent(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 10))
    assert store.allocate_specific(COMPANY, RUT, 33, 1, today=TODAY).folio == 1
    assert next_folios(migrated_engine) == [2]
    ahead = store.allocate_specific(COMPANY, RUT, 33, 4, today=TODAY, document_ref="manual")
    assert (ahead.folio, ahead.remaining) == (4, 8)
    assert take(store, 3) == [2, 3, 5]  # jumps over the folio taken by hand
    assert next_folios(migrated_engine) == [6]
    assert store.remaining(COMPANY, RUT, 33, today=TODAY) == 5
    for used in (1, 4, 5):
        with pytest.raises(FolioError) as err:
            store.allocate_specific(COMPANY, RUT, 33, used, today=TODAY)
        assert err.value.code == "folio_already_used"
    with pytest.raises(FolioError) as err:
        store.allocate_specific(COMPANY, RUT, 33, 11, today=TODAY)
    assert err.value.code == "folio_out_of_range"
    # Taking the last folio by hand, then the rest, exhausts the range exactly.
    store.allocate_specific(COMPANY, RUT, 33, 10, today=TODAY)
    assert take(store, 4) == [6, 7, 8, 9]
    with pytest.raises(FoliosExhaustedError):
        store.allocate(COMPANY, RUT, 33, today=TODAY)
    assert sorted(rows(migrated_engine)) == list(range(1, 11))


def test_void_folio_is_never_reused(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 3))
    assert take(store, 1) == [1]
    store.mark_void(COMPANY, RUT, 33, 1, "signing failed")
    store.mark_void(COMPANY, RUT, 33, 1, "twice is harmless")
    assert take(store, 1) == [2]
    with pytest.raises(FolioError) as err:
        store.allocate_specific(COMPANY, RUT, 33, 1, today=TODAY)
    assert err.value.code == "folio_already_used"
    with pytest.raises(FolioError) as err:
        store.mark_issued(COMPANY, RUT, 33, 1, "doc-1")
    assert err.value.code == "folio_already_used"
    assert rows(migrated_engine) == {1: "void", 2: "reserved"}
    with migrated_engine.connect() as conn:
        reason = conn.execute(
            select(folio_allocations.c.reason).where(folio_allocations.c.folio == 1)
        ).scalar_one()
    assert reason == "signing failed"


def test_issue_lifecycle_and_unused_gaps(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 10))
    assert take(store, 5) == [1, 2, 3, 4, 5]
    store.mark_issued(COMPANY, RUT, 33, 1, "doc-1")
    store.mark_issued(COMPANY, RUT, 33, 1, "doc-1")  # retry of the same call
    store.mark_issued(COMPANY, RUT, 33, 3, "doc-3")
    store.mark_issued(COMPANY, RUT, 33, 5, "doc-5")
    store.mark_void(COMPANY, RUT, 33, 2, "operator cancelled")
    store.mark_void(COMPANY, RUT, 33, 5, "envelope not written")  # issued, never sent
    with pytest.raises(FolioError) as err:
        store.mark_issued(COMPANY, RUT, 33, 3, "another-doc")
    assert err.value.code == "folio_already_used"
    with pytest.raises(FolioError) as err:
        store.mark_issued(COMPANY, RUT, 33, 9, "doc-9")
    assert err.value.code == "folio_not_allocated"
    assert store.unused(COMPANY, RUT, 33, today=TODAY) == [2, 4, 5]
    assert rows(migrated_engine) == {
        1: "issued",
        2: "void",
        3: "issued",
        4: "reserved",
        5: "void",
    }


def test_low_water_signal_reports_the_remaining_count(migrated_engine: Engine) -> None:
    calls: list[tuple[str, str, int, int]] = []
    store = FolioStore(migrated_engine, low_water_mark=3, on_low=lambda *args: calls.append(args))
    store.register_range(COMPANY, caf(1, 4))
    store.register_range(COMPANY, caf(5, 6, fa=date(2025, 2, 1)))
    got = [store.allocate(COMPANY, RUT, 33, today=TODAY) for _ in range(6)]
    assert [(a.remaining, a.low) for a in got] == [
        (5, False),
        (4, False),
        (3, True),
        (2, True),
        (1, True),
        (0, True),
    ]
    assert calls == [(COMPANY, RUT, 33, n) for n in (3, 2, 1, 0)]


def test_failing_low_callback_does_not_lose_the_folio(migrated_engine: Engine) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("mailer down")

    store = FolioStore(migrated_engine, low_water_mark=5, on_low=explode)
    store.register_range(COMPANY, caf(1, 3))
    assert store.allocate(COMPANY, RUT, 33, today=TODAY).folio == 1
    assert rows(migrated_engine) == {1: "reserved"}


def test_companies_are_isolated(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range("company-a", caf(1, 10))
    assert store.allocate("company-a", RUT, 33, today=TODAY).folio == 1
    with pytest.raises(FoliosExhaustedError):
        store.allocate("company-b", RUT, 33, today=TODAY)
    with pytest.raises(FolioError) as err:
        store.allocate_specific("company-b", RUT, 33, 2, today=TODAY)
    assert err.value.code == "folio_out_of_range"
    with pytest.raises(FolioError) as err:
        store.mark_void("company-b", RUT, 33, 1, "not yours")
    assert err.value.code == "folio_not_allocated"
    with pytest.raises(FolioError):
        store.caf_xml_for("company-b", RUT, 33, 1)
    assert store.remaining("company-b", RUT, 33, today=TODAY) == 0
    assert store.unused("company-b", RUT, 33, today=TODAY) == []
    assert rows(migrated_engine, "company-a") == {1: "reserved"}
    assert rows(migrated_engine, "company-b") == {}


def test_caf_xml_for_returns_the_covering_caf(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 10))
    store.register_range(COMPANY, caf(11, 20))
    assert store.caf_xml_for(COMPANY, RUT, 33, 15) == caf(11, 20).caf_xml
    assert store.caf_xml_for(COMPANY, RUT, 33, 10) == caf(1, 10).caf_xml
    with pytest.raises(FolioError) as err:
        store.caf_xml_for(COMPANY, RUT, 33, 21)
    assert err.value.code == "folio_out_of_range"


def test_invalid_input_is_refused(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    with pytest.raises(InvalidRutError):
        store.allocate(COMPANY, "76086428-4", 33, today=TODAY)
    with pytest.raises(FolioError) as err:
        store.register_range(COMPANY, caf(10, 9))
    assert err.value.code == "invalid_caf_range"
    with pytest.raises(FolioError) as err:
        store.register_range("", caf(1, 9))
    assert err.value.code == "invalid_company"


def test_threads_share_an_engine_without_duplicates(migrated_engine: Engine) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 60))
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            got = take(store, 10)
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 61))


def test_sqlite_engine_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 30_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            # Before any statement: BEGIN IMMEDIATE already holds the write lock.
            with engine.begin(), pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")
            # Readers opt out of the write lock and are not blocked by a writer (WAL).
            with engine.connect().execution_options(sqlite_deferred=True) as reader:
                assert reader.exec_driver_sql("SELECT 1").scalar() == 1
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        engine.dispose()


# --------------------------------------------------------------- processes

PROCESSES = 4
PER_PROCESS = 50


def _allocate_in_process(
    url: str, barrier: threading.Barrier, out: multiprocessing.Queue[object]
) -> None:
    """Runs in a spawned process: its own interpreter, engine and connection pool."""
    try:
        engine = create_engine_for(url)
        store = FolioStore(engine)
        barrier.wait(timeout=60)
        folios = [
            store.allocate(COMPANY, RUT, 33, today=TODAY, document_ref=f"pid-{os.getpid()}").folio
            for _ in range(PER_PROCESS)
        ]
        engine.dispose()
        out.put(folios)
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_allocate_every_folio_exactly_once(migrated_engine: Engine, db_url: str) -> None:
    store = FolioStore(migrated_engine)
    store.register_range(COMPANY, caf(1, 120))
    store.register_range(COMPANY, caf(121, 300, fa=date(2025, 2, 1)))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_allocate_in_process, args=(db_url, barrier, out))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    except queue.Empty:
        pytest.fail("a worker process neither answered nor failed within 120 s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    failures = [r for r in results if not isinstance(r, list)]
    assert failures == []
    everything = [f for r in results if isinstance(r, list) for f in r]
    assert len(everything) == PROCESSES * PER_PROCESS
    assert sorted(everything) == list(range(1, PROCESSES * PER_PROCESS + 1))
    # Each process saw its own folios in increasing order (allocation is monotonic).
    assert all(r == sorted(r) for r in results if isinstance(r, list))
    db = rows(migrated_engine)
    assert sorted(db) == sorted(everything)
    assert set(db.values()) == {"reserved"}
    assert next_folios(migrated_engine) == [121, 201]
    assert store.remaining(COMPANY, RUT, 33, today=TODAY) == 100


def test_a_caf_cannot_be_held_by_two_accounts(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    """Folios belong to the emisor's RUT: a second tenant loading the same CAF is refused, and
    even a direct insert cannot record the same folio of the same RUT twice."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from dte_core.storage import folio_allocations

    store = FolioStore(migrated_engine)
    rng = FolioRange("76086428-5", 33, 1, 10, date(2026, 11, 1), date(2027, 5, 1), b"<CAF/>", "fp")
    range_id = store.register_range("company-a", rng)
    with pytest.raises(FolioError) as info:
        store.register_range("company-b", rng)
    assert info.value.code == "caf_held_by_other_company"
    first = store.allocate("company-a", "76086428-5", 33, today=date(2026, 11, 20))
    row = {
        "company_id": "company-b",
        "rut_emisor": "76086428-5",
        "tipo_dte": 33,
        "folio": first.folio,
        "caf_range_id": range_id,
        "status": "reserved",
    }
    with pytest.raises(IntegrityError), migrated_engine.begin() as conn:
        conn.execute(insert(folio_allocations).values(row))

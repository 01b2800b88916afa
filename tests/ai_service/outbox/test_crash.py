"""The outbox survives SIGKILL mid-upload: every document ends in one final state, and no
document is uploaded again unless the SII first said it does not have it."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ai_service.db.outbox_tables import FINAL_STATES, document_events, outbox_entries
from dte_core.caf import SiiKeyring
from dte_core.sii.simstate import SimulatorConfig
from dte_core.sii.simulator import Fault, SiiSimulator, SimulatorServer
from tests.ai_service.conftest import SECRET_KEY
from tests.ai_service.outbox.conftest import Issuing

UPLOAD = "/cgi_dte/UPL/DTEUpload"
PROCESSING_SECONDS = 1.0  # the simulated SII reaches EPR 5 stages x 0.2 s after an upload
GRACE_SECONDS = 2.5  # the worker waits this long before settling an upload it lost


def _uploads(sim: SiiSimulator) -> int:
    return sum(1 for _, path, _ in sim.requests if path == UPLOAD)


def _worker(db_url: str, sim_url: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DTE_AI_DATABASE_URL": db_url,
        "DTE_AI_SECRET_KEY": SECRET_KEY,
        "DTE_AI_DATA_DIR": str(tmp),
        "DTE_AI_SII_BASE_URL": sim_url,
        "DTE_AI_OUTBOX_BATCH_SIZE": "2",
        "DTE_AI_OUTBOX_RECOVERY_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    exe = Path(sys.executable).with_name("dte-ai")
    return subprocess.Popen(
        [str(exe), "outbox", "run", "--interval", "0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _states(engine: Engine, ids: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox_entries.c.document_id, outbox_entries.c.state).where(
                outbox_entries.c.document_id.in_(ids)
            )
        ).all()
    return dict(rows)  # type: ignore[arg-type]


@pytest.mark.slow
def test_sigkill_mid_upload_loses_nothing_and_sends_nothing_twice_unchecked(
    issuing: Issuing, db_url: str, migrated_engine: Engine, sii_key_pem: Path, tmp_path: Path
) -> None:
    keyring = SiiKeyring.default().with_trusted_key(sii_key_pem.read_bytes())
    sim = SiiSimulator(SimulatorConfig(keyring=keyring, step_seconds=PROCESSING_SECONDS / 5))
    sim.faults.slow_seconds = 1.0
    ids = issuing.issue_and_send(6)
    with SimulatorServer(sim) as server:
        kills = 0
        for _ in range(3):
            sim.faults.add("upload", Fault.SLOW)  # the answer takes a second: kill meanwhile
            seen = _uploads(sim)
            proc = _worker(db_url, server.url, tmp_path)
            try:
                _wait(lambda n=seen: _uploads(sim) > n, 60, "the worker to start an upload")
            finally:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            kills += 1
        sim.faults.clear()
        proc = _worker(db_url, server.url, tmp_path)
        try:
            _wait(
                lambda: set(_states(migrated_engine, ids).values()) <= set(FINAL_STATES),
                120,
                "every document to reach a final state",
            )
        finally:
            proc.terminate()
            proc.wait(10)
    assert kills == 3
    assert set(_states(migrated_engine, ids).values()) == {"accepted"}
    with migrated_engine.connect() as conn:
        settled_by = conn.execute(
            select(outbox_entries.c.sii_estado).where(outbox_entries.c.document_id.in_(ids))
        ).scalars()
        # every upload was killed before its receipt: each was settled by asking the SII
        # about its documents (DOK), none by a track id the dead workers never saw
        assert list(settled_by) == ["DOK"] * len(ids)
    with migrated_engine.connect() as conn:
        events = conn.execute(
            select(document_events.c.document_id, document_events.c.state, document_events.c.detail)
            .where(document_events.c.document_id.in_(ids))
            .order_by(document_events.c.id)
        ).all()
    finals = collections.Counter(doc for doc, state, _ in events if state in FINAL_STATES)
    assert finals == dict.fromkeys(ids, 1), "a document reached a final state twice"
    # how often the SII saw each document, and how often the worker re-sent after a check
    folios = _folios(migrated_engine, ids)
    received = collections.Counter(
        (r.tipo, r.folio) for envio in sim.sii.envios.values() for r in envio.results
    )
    checked = collections.Counter(
        doc
        for doc, state, detail in events
        if state == "submitted" and detail and "retry" in detail
    )
    for doc in ids:
        assert received[folios[doc]] == 1 + checked[doc], (doc, received, checked)
        assert received[folios[doc]] == 1, "uploaded twice although the SII had it"


def _folios(engine: Engine, ids: list[str]) -> dict[str, tuple[int, int]]:
    from ai_service.db.tables import documents

    with engine.connect() as conn:
        rows = conn.execute(
            select(documents.c.id, documents.c.tipo_dte, documents.c.folio).where(
                documents.c.id.in_(ids)
            )
        ).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}

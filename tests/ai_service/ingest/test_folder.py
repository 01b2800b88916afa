"""The mailbox folder: files are ingested, then moved to processed/ or failed/ — never lost."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ai_service.ingest.folder import FAILED, PROCESSED, FolderWatcher
from ai_service.ingest.service import Ingestor, IngestResult
from ai_service.repositories import received as repo
from ai_service.repositories.companies import create_company
from ai_service.secrets import SecretBox
from tests.ai_service.ingest.material import EnvioFactory, keyring_trusting
from tests.issuing_kit import RECEPTOR

BOX = SecretBox(b"secret-key-used-only-by-the-test-suite-0123456789")


@pytest.fixture(scope="module")
def factory(sii_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvioFactory]:
    made = EnvioFactory(sii_key, tmp_path_factory.mktemp("emisor"))
    yield made
    made.close()


@pytest.fixture
def company(migrated_engine: Engine) -> str:
    return create_company(migrated_engine, BOX, rut=RECEPTOR, name="Receptora")[0].id


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


def _watcher(engine: Engine, sii_key: Any, company: str, inbox: Path, **kw: Any) -> FolderWatcher:
    ingestor = Ingestor(engine, keyring_trusting(sii_key))

    def ingest(raw: bytes, name: str) -> IngestResult:
        return ingestor.ingest(company, raw, source="folder", filename=name)

    return FolderWatcher(inbox, ingest, settle_seconds=0, **kw)


def test_files_are_ingested_and_moved(
    migrated_engine: Engine,
    sii_key: Any,
    company: str,
    inbox: Path,
    factory: EnvioFactory,
    shared_sii: Path,
) -> None:
    watcher = _watcher(migrated_engine, sii_key, company, inbox)
    good = factory.envio(1)
    (inbox / "envio.xml").write_bytes(good)
    hostile = (shared_sii / "samples" / "xml-attacks" / "billion-laughs-1.xml").read_bytes()
    (inbox / "bomba.xml").write_bytes(hostile)
    (inbox / ".partial.xml").write_bytes(b"<half")  # still being written: ignored
    (inbox / "sub").mkdir()

    outcomes = {o.name: o for o in watcher.scan_once()}
    assert set(outcomes) == {"envio.xml", "bomba.xml"}
    assert outcomes["envio.xml"].moved_to == inbox / PROCESSED / "envio.xml"
    assert (inbox / PROCESSED / "envio.xml").read_bytes() == good
    assert outcomes["bomba.xml"].moved_to == inbox / FAILED / "bomba.xml"
    assert (inbox / FAILED / "bomba.xml").read_bytes() == hostile
    sidecar = json.loads((inbox / FAILED / "bomba.xml.error.json").read_text("utf-8"))
    assert sidecar["code"] == "hostile_xml"
    # both are in the database, the hostile one refused with its bytes
    refused = repo.get_file(migrated_engine, company, sidecar["received_file_id"])
    assert refused.status == "refused" and refused.source == "folder"
    assert sorted(p.name for p in inbox.iterdir()) == [".partial.xml", FAILED, PROCESSED, "sub"]
    assert watcher.scan_once() == []  # nothing left to do


def test_same_name_again_does_not_overwrite(
    migrated_engine: Engine, sii_key: Any, company: str, inbox: Path, factory: EnvioFactory
) -> None:
    watcher = _watcher(migrated_engine, sii_key, company, inbox)
    first, second = factory.envio(1), factory.envio(1)
    (inbox / "envio.xml").write_bytes(first)
    watcher.scan_once()
    (inbox / "envio.xml").write_bytes(second)
    (outcome,) = watcher.scan_once()
    assert outcome.moved_to == inbox / PROCESSED / "envio.1.xml"
    assert (inbox / PROCESSED / "envio.xml").read_bytes() == first
    assert (inbox / PROCESSED / "envio.1.xml").read_bytes() == second


def test_a_failing_database_leaves_the_file_in_place(inbox: Path, tmp_path: Path) -> None:
    def broken(raw: bytes, name: str) -> IngestResult:
        raise ConnectionError("database unreachable")

    watcher = FolderWatcher(inbox, broken, settle_seconds=0)
    (inbox / "envio.xml").write_bytes(b"<EnvioDTE/>")
    (outcome,) = watcher.scan_once()
    assert outcome.moved_to is None and "database unreachable" in (outcome.error or "")
    assert (inbox / "envio.xml").exists()
    assert list((inbox / PROCESSED).iterdir()) == [] and list((inbox / FAILED).iterdir()) == []


def test_recent_files_wait_until_they_settle(inbox: Path) -> None:
    seen: list[str] = []

    def record(raw: bytes, name: str) -> IngestResult:
        seen.append(name)
        raise RuntimeError("stop here")

    clock = [1_000_000.0]
    watcher = FolderWatcher(inbox, record, settle_seconds=5, clock=lambda: clock[0])
    path = inbox / "envio.xml"
    path.write_bytes(b"<EnvioDTE/>")
    os.utime(path, (clock[0] - 1, clock[0] - 1))  # written a second ago
    assert watcher.pending() == []
    clock[0] += 10
    assert watcher.pending() == [path]
    watcher.scan_once()
    assert seen == ["envio.xml"]


def test_oversized_file_goes_to_failed_unread(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_service.ingest import folder

    monkeypatch.setattr(folder, "MAX_FILE_BYTES", 10)
    called: list[str] = []

    def never(raw: bytes, name: str) -> IngestResult:
        called.append(name)
        raise AssertionError("an oversized file must not be read")

    watcher = FolderWatcher(inbox, never, settle_seconds=0)
    (inbox / "big.xml").write_bytes(b"x" * 11)
    (outcome,) = watcher.scan_once()
    assert called == [] and outcome.moved_to == inbox / FAILED / "big.xml"
    assert (
        "over the limit"
        in json.loads((inbox / FAILED / "big.xml.error.json").read_text())["message"]
    )

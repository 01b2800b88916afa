"""Ingestion on SQLite and PostgreSQL: raw bytes first, verification, dedupe, refusals kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from ai_service.api.errors import NotFound
from ai_service.db.tables import received_documents, received_files
from ai_service.ingest.service import Ingestor
from ai_service.repositories import received as repo
from ai_service.repositories.companies import create_company
from ai_service.secrets import SecretBox
from dte_core.errors import XmlParseError, XmlSecurityError
from dte_core.signing import verify_signature
from dte_core.xmlsafe import DSIG_NS, SII_NS, parse_untrusted
from tests.ai_service.ingest.material import EnvioFactory, keyring_trusting
from tests.issuing_kit import EMISOR, RECEPTOR

BOX = SecretBox(b"secret-key-used-only-by-the-test-suite-0123456789")
SII_DTE = "sii-dte"


@pytest.fixture(scope="module")
def factory(sii_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvioFactory]:
    made = EnvioFactory(sii_key, tmp_path_factory.mktemp("emisor"))
    yield made
    made.close()


@pytest.fixture
def ingestor(migrated_engine: Engine, sii_key: Any) -> Ingestor:
    return Ingestor(migrated_engine, keyring_trusting(sii_key))


@pytest.fixture
def company(migrated_engine: Engine) -> str:
    created, _ = create_company(migrated_engine, BOX, rut=RECEPTOR, name="Receptora Ltda")
    return created.id


@pytest.fixture
def other_company(migrated_engine: Engine) -> str:
    created, _ = create_company(migrated_engine, BOX, rut=EMISOR, name="Otra SpA")
    return created.id


def _count(engine: Engine, table: Any, company_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.company_id == company_id)
            ).scalar_one()
        )


def _sample(shared_sii: Path, rel: str) -> bytes:
    return (shared_sii / "samples" / rel).read_bytes()


def test_envio_is_stored_raw_verified_and_its_documents_recorded(
    ingestor: Ingestor, company: str, factory: EnvioFactory, migrated_engine: Engine
) -> None:
    xml = factory.envio(2)
    result = ingestor.ingest(company, xml, source="api", filename="envio.xml")
    assert result.file_created and result.valid and not result.refused
    assert result.file.status == "processed" and result.file.root == "EnvioDTE"
    assert result.file.sha256 == hashlib.sha256(xml).hexdigest()
    assert repo.get_file_raw(migrated_engine, company, result.file.id) == xml  # byte for byte
    assert [d.outcome for d in result.documents] == ["new", "new"]
    assert all(d.authentic and d.valid for d in result.documents)
    first = repo.get_document(migrated_engine, company, result.documents[0].id or "")
    assert (first.rut_emisor, first.tipo_dte, first.rut_receptor) == (EMISOR, 33, RECEPTOR)
    assert first.file_id == result.file.id and first.status == "received"
    assert first.monto_total and first.fecha_emision
    # the stored <DTE> still carries a signature that verifies where it stands
    dte_xml, report = repo.get_document_detail(migrated_engine, company, first.id)
    signature = parse_untrusted(dte_xml).find(f"{{{DSIG_NS}}}Signature")
    assert verify_signature(signature, tolerant=False).valid
    assert report["signature"]["detail"]["context"] == "in_place"


def test_reingesting_the_same_file_is_idempotent(
    ingestor: Ingestor, company: str, factory: EnvioFactory, migrated_engine: Engine
) -> None:
    xml = factory.envio(1)
    first = ingestor.ingest(company, xml, source="folder", filename="a.xml")
    again = ingestor.ingest(company, xml, source="api", filename="b.xml")
    assert not again.file_created and again.file.id == first.file.id
    assert again.file.filename == "a.xml"  # the first arrival is the record
    assert [d.id for d in again.documents] == [d.id for d in first.documents]
    assert [d.outcome for d in again.documents] == ["duplicate"]
    assert _count(migrated_engine, received_files, company) == 1
    assert _count(migrated_engine, received_documents, company) == 1


def test_the_same_document_in_another_file_is_a_duplicate(
    ingestor: Ingestor, company: str, factory: EnvioFactory, migrated_engine: Engine
) -> None:
    envio = factory.envio(1)
    first = ingestor.ingest(company, envio, source="api")
    (dte,) = parse_untrusted(envio).iter(f"{{{SII_NS}}}DTE")
    alone = etree.tostring(dte, encoding="ISO-8859-1")
    second = ingestor.ingest(company, alone, source="api")
    assert second.file_created and second.file.id != first.file.id
    assert second.documents[0].outcome == "duplicate"
    assert second.documents[0].id == first.documents[0].id
    assert _count(migrated_engine, received_documents, company) == 1


@pytest.mark.parametrize(
    "name",
    [
        "billion-laughs-1.xml",
        "billion-laughs-2.xml",
        "external-entity-expansion-remote.xml",
        "quadratic-blowup-entity-expansion.xml",
    ],
)
def test_hostile_files_are_kept_refused_with_their_error(
    ingestor: Ingestor, company: str, migrated_engine: Engine, shared_sii: Path, name: str
) -> None:
    raw = _sample(shared_sii, f"xml-attacks/{name}")
    result = ingestor.ingest(company, raw, source="imap", filename=name)
    assert result.refused and result.file.error_code == "hostile_xml"
    assert isinstance(result.error(), XmlSecurityError)
    assert repo.get_file_raw(migrated_engine, company, result.file.id) == raw
    assert _count(migrated_engine, received_documents, company) == 0
    again = ingestor.ingest(company, raw, source="imap", filename=name)
    assert again.refused and again.file.id == result.file.id and not again.file_created


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"<EnvioDTE><SetDTE>", "unreadable_xml"),
        (b"\x00\x01 not xml at all", "unreadable_xml"),
        (b"<AUTORIZACION><CAF/></AUTORIZACION>", "unsupported_document"),
    ],
)
def test_broken_and_unsupported_files_are_kept_refused(
    ingestor: Ingestor, company: str, migrated_engine: Engine, raw: bytes, code: str
) -> None:
    result = ingestor.ingest(company, raw, source="api")
    assert result.refused and result.file.error_code == code
    error = result.error()
    assert isinstance(error, XmlParseError) and error.code == code
    assert f"received file {result.file.id}" in error.message
    assert repo.get_file_raw(migrated_engine, company, result.file.id) == raw


def test_raw_sii_download_is_repaired_and_authentic(
    ingestor: Ingestor, company: str, migrated_engine: Engine, shared_sii: Path
) -> None:
    result = ingestor.ingest(
        company, _sample(shared_sii, f"{SII_DTE}/DTE--76354771-K--33--170.xml"), source="api"
    )
    (doc,) = result.documents
    assert doc.outcome == "new" and doc.authentic and doc.valid
    stored = repo.get_document(migrated_engine, company, doc.id or "")
    assert stored.signature_context == "namespace_restored"
    assert (stored.rut_emisor, stored.tipo_dte, stored.folio) == ("76354771-K", 33, 170)
    xml, _ = repo.get_document_detail(migrated_engine, company, stored.id)
    assert parse_untrusted(xml).nsmap.get(None) == SII_NS  # stored repaired
    report = repo.get_file_report(migrated_engine, company, result.file.id)
    assert report is not None and report["namespace_repaired"] is True


def test_doc_personalizado_is_authentic_but_not_schema_valid(
    ingestor: Ingestor, company: str, migrated_engine: Engine, shared_sii: Path
) -> None:
    raw = _sample(shared_sii, f"{SII_DTE}/DTE--96670340-7--61--110616.xml")
    (doc,) = ingestor.ingest(company, raw, source="api").documents
    stored = repo.get_document(migrated_engine, company, doc.id or "")
    assert stored.authentic and not stored.schema_valid and not doc.valid


def test_forged_first_copy_is_upgraded_by_the_genuine_one(
    ingestor: Ingestor, company: str, migrated_engine: Engine, shared_sii: Path
) -> None:
    forged = ingestor.ingest(
        company,
        _sample(shared_sii, f"{SII_DTE}/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"),
        source="api",
    )
    (doc,) = forged.documents
    assert doc.outcome == "new" and not doc.authentic
    genuine = ingestor.ingest(
        company,
        _sample(shared_sii, f"{SII_DTE}/DTE--76354771-K--33--170--cleaned.xml"),
        source="api",
    )
    assert genuine.documents[0].outcome == "upgraded"
    assert genuine.documents[0].id == doc.id
    stored = repo.get_document(migrated_engine, company, doc.id or "")
    assert stored.authentic and stored.file_id == genuine.file.id
    # and a forged copy never replaces a genuine one
    again = ingestor.ingest(
        company,
        _sample(shared_sii, f"{SII_DTE}/DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml"),
        source="api",
    )
    assert again.documents[0].outcome == "duplicate"
    assert repo.get_document(migrated_engine, company, doc.id or "").authentic


def test_companies_are_isolated(
    ingestor: Ingestor,
    company: str,
    other_company: str,
    factory: EnvioFactory,
    migrated_engine: Engine,
) -> None:
    xml = factory.envio(1)
    mine = ingestor.ingest(company, xml, source="api")
    theirs = ingestor.ingest(other_company, xml, source="api")
    assert theirs.file_created and theirs.file.id != mine.file.id  # dedupe is per company
    assert theirs.documents[0].outcome == "new"
    doc_id = mine.documents[0].id or ""
    with pytest.raises(NotFound):
        repo.get_document(migrated_engine, other_company, doc_id)
    with pytest.raises(NotFound):
        repo.get_file_raw(migrated_engine, other_company, mine.file.id)
    items, total = repo.list_documents(migrated_engine, other_company)
    assert total == 1 and items[0].id == theirs.documents[0].id

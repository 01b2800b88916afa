"""Ingest one received file: store the raw bytes, then verify, then record its documents.

The order is the guarantee: the bytes are committed before a single one is parsed, so a hostile,
broken or surprising file is never lost — it stays, refused, with its error. Verification follows
the SII's tolerant rules (``dte_core.received``): the missing SII namespace is repaired, TED, CAF
and signatures are checked, the schema too. Documents are deduplicated by (company, RUT emisor,
tipo, folio), so ingesting the same file — or the same document in another file — twice is
harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from lxml import etree
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ai_service.repositories import received as repo
from dte_core.caf import SiiKeyring
from dte_core.envelope import serialize
from dte_core.errors import DteError, XmlParseError, XmlSecurityError
from dte_core.received import DocumentReport, verify_received
from dte_core.rut import Rut

log = logging.getLogger(__name__)

#: Root elements that carry documents sent to a receptor (an AEC is a cesión, not a delivery).
ACCEPTED_ROOTS = frozenset({"DTE", "EnvioDTE", "EnvioBOLETA"})
_RETRIES_ON_RACE = 3


class UnsupportedDocumentError(XmlParseError):
    """Well-formed XML that is not a DTE delivery (EnvioDTE, EnvioBOLETA or DTE)."""

    code = "unsupported_document"


@dataclass(frozen=True)
class IngestedDocument:
    id: str | None  # None when the document lacks emisor, tipo or folio (kept in the report)
    rut_emisor: str | None
    tipo_dte: int | None
    folio: int | None
    outcome: str  # new | duplicate | upgraded | unidentified
    authentic: bool
    valid: bool


@dataclass(frozen=True)
class IngestResult:
    file: repo.FileInfo
    file_created: bool
    documents: list[IngestedDocument] = field(default_factory=list)
    valid: bool = False

    @property
    def refused(self) -> bool:
        return self.file.status == repo.STATUS_REFUSED

    def error(self) -> DteError | None:
        """The refusal as the dte_core error it was, for the API / CLI to report."""
        if not self.refused:
            return None
        cls: type[DteError] = {
            XmlSecurityError.code: XmlSecurityError,
            UnsupportedDocumentError.code: UnsupportedDocumentError,
        }.get(self.file.error_code or "", XmlParseError)
        return cls(
            f"{self.file.error_message} (kept as received file {self.file.id})",
            code=self.file.error_code,
        )

    def as_dict(self) -> dict[str, Any]:
        info = asdict(self.file)
        return {
            "file": info,
            "file_created": self.file_created,
            "valid": self.valid,
            "documents": [asdict(d) for d in self.documents],
        }


def _fecha(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class Ingestor:
    """Ingests files for one database; safe to share between threads."""

    def __init__(self, engine: Engine, keyring: Callable[[], SiiKeyring] | SiiKeyring) -> None:
        self.engine = engine
        self._keyring = keyring

    def keyring(self) -> SiiKeyring:
        return self._keyring if isinstance(self._keyring, SiiKeyring) else self._keyring()

    def ingest(
        self, company_id: str, raw: bytes, *, source: str, filename: str | None = None
    ) -> IngestResult:
        stored, created = repo.store_file(
            self.engine, company_id, raw, source=source, filename=filename
        )
        if stored.status != repo.STATUS_STORED:
            return self._replay(company_id, stored)  # already judged: same answer again
        try:
            report, dtes = verify_received(raw, keyring=self.keyring())
            if report.root not in ACCEPTED_ROOTS:
                raise UnsupportedDocumentError(
                    f"<{report.root}> is not a DTE delivery: send an EnvioDTE, an EnvioBOLETA "
                    "or a single <DTE>"
                )
        except XmlParseError as exc:  # hostile, unreadable or not a DTE: refuse, keep the bytes
            repo.mark_refused(self.engine, company_id, stored.id, exc.code, exc.message)
            log.warning("refused received file %s: %s", stored.id, exc.code)
            return IngestResult(repo.get_file(self.engine, company_id, stored.id), created)
        documents = [
            _new_document(doc, dte)
            for doc, dte in zip(report.documents, dtes, strict=True)
            if doc.rut_emisor and doc.tipo_dte is not None and doc.folio is not None
        ]
        for attempt in range(_RETRIES_ON_RACE):
            try:
                outcomes = repo.record_documents(
                    self.engine,
                    company_id,
                    stored.id,
                    root=report.root,
                    report=report.as_dict(),
                    documents=documents,
                )
                break
            except IntegrityError:
                # another ingestion stored one of these documents meanwhile; now it is a duplicate
                if attempt == _RETRIES_ON_RACE - 1:
                    raise
        by_key = iter(outcomes)
        results = []
        for doc in report.documents:
            key_known = doc.rut_emisor and doc.tipo_dte is not None and doc.folio is not None
            doc_id, outcome = next(by_key) if key_known else (None, "unidentified")
            results.append(
                IngestedDocument(
                    id=doc_id,
                    rut_emisor=Rut.canonical(doc.rut_emisor) or doc.rut_emisor,
                    tipo_dte=doc.tipo_dte,
                    folio=doc.folio,
                    outcome=outcome,
                    authentic=doc.authentic,
                    valid=doc.valid,
                )
            )
        return IngestResult(
            repo.get_file(self.engine, company_id, stored.id), created, results, report.valid
        )

    def _replay(self, company_id: str, stored: repo.FileInfo) -> IngestResult:
        report = repo.get_file_report(self.engine, company_id, stored.id)
        if report is None:
            return IngestResult(stored, False)
        docs = report.get("documents", [])
        keys = [
            (Rut.canonical(d.get("rut_emisor")) or "", d["tipo_dte"], d["folio"])
            for d in docs
            if d.get("rut_emisor") and d.get("tipo_dte") is not None and d.get("folio") is not None
        ]
        held = repo.documents_of_file(self.engine, company_id, keys)
        results = []
        for d in docs:
            key = (Rut.canonical(d.get("rut_emisor")) or "", d.get("tipo_dte"), d.get("folio"))
            row = held.get(key)
            results.append(
                IngestedDocument(
                    id=row.id if row else None,
                    rut_emisor=key[0] or d.get("rut_emisor"),
                    tipo_dte=d.get("tipo_dte"),
                    folio=d.get("folio"),
                    outcome="duplicate" if row else "unidentified",
                    authentic=bool(d.get("authentic")),
                    valid=bool(d.get("valid")),
                )
            )
        return IngestResult(stored, False, results, bool(report.get("valid")))


def _new_document(doc: DocumentReport, dte: etree._Element) -> repo.NewDocument:
    rut_emisor = Rut.canonical(doc.rut_emisor) or (doc.rut_emisor or "")[:12]
    return repo.NewDocument(
        rut_emisor=rut_emisor,
        tipo_dte=doc.tipo_dte or 0,
        folio=doc.folio or 0,
        rut_receptor=Rut.canonical(doc.rut_receptor)
        or (doc.rut_receptor[:12] if doc.rut_receptor else None),
        fecha_emision=_fecha(doc.fecha_emision),
        monto_total=doc.monto_total,
        authentic=doc.authentic,
        schema_valid=doc.xsd.valid,
        signature_context=doc.signature.detail.get("context"),
        xml=serialize(_standalone(dte)),
        report=doc.as_dict(),
    )


def _standalone(dte: etree._Element) -> etree._Element:
    """The ``<DTE>`` as a document of its own (only the namespaces it uses)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(etree.tostring(dte, with_tail=False), parser)

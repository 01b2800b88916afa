"""The outbox worker: envelope queued documents, upload once, poll until the SII decides.

Exactly once per document: the state ``uploading`` is committed before the envelope's bytes
leave, so a worker that dies mid-upload leaves a submission that says "maybe sent". The next
worker asks the SII which of its documents it holds (QueryEstDte) before anything is sent
again: documents the SII holds are never uploaded twice; only an envelope none of whose
documents reached the SII goes out again, byte for byte the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from ai_service.outbox import store
from ai_service.repositories.companies import get_company, utcnow

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
OBJECTIONS = "accepted_with_objections"
REJECTED = "rejected"


Key = tuple[int, int]  # (tipo_dte, folio)


@dataclass(frozen=True)
class Outcome:
    """What the SII decided about an envelope, for one family (DTE or boleta)."""

    final: bool
    estado: str | None = None
    #: per document: (state, the SII's code, detail); a document not listed is accepted
    results: dict[Key, tuple[str, str | None, Any]] = field(default_factory=dict)
    #: the whole envelope was refused (schema, signature, carátula...): every document
    rejected: bool = False
    glosa: str | None = None


class SiiPort(Protocol):
    """The SII as the worker needs it; :mod:`ai_service.outbox.channels` adapts the DTE web
    services and the boleta REST API to it."""

    def upload(self, envio: bytes, *, boleta: bool) -> str:
        """The track id; raises the ``dte_core.sii.errors`` the clients raise."""
        ...

    def outcome(
        self, track_id: str, envio: bytes, *, boleta: bool, rut_company: str
    ) -> Outcome: ...

    def held(self, envio: bytes, *, boleta: bool) -> dict[Key, str | None]:
        """For each document of ``envio``: the SII's code if it holds it, else None."""
        ...


@dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 50  # documents per EnvioDTE (the SII allows up to 2 000)
    #: an ``uploading`` submission younger than this may belong to a live worker: wait
    recovery_grace_seconds: float = 120.0


@dataclass
class RunReport:
    prepared: int = 0
    uploaded: int = 0
    recovered: int = 0
    finished: int = 0
    pending: int = 0  # envíos the SII is still processing
    errors: int = 0

    def busy(self) -> bool:
        return any((self.prepared, self.uploaded, self.recovered, self.finished))


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        clients: Callable[[str], SiiPort],
        envelope: Callable[[str, list[bytes]], bytes],
        *,
        config: WorkerConfig | None = None,
        now: Callable[[], datetime] = utcnow,
        after_pass: Callable[[], Any] | None = None,
    ) -> None:
        """``clients(company_id)`` gives the SII client for a company, ``envelope(company_id,
        dtes)`` builds and signs its EnvioDTE."""
        self.engine = engine
        self.clients = clients
        self.envelope = envelope
        self.config = config or WorkerConfig()
        self.now = now
        self.after_pass = after_pass

    # -------------------------------------------------------------------- one pass

    def run_once(self) -> RunReport:
        report = RunReport()
        for company_id in store.companies_with_work(self.engine):
            try:
                self._company(company_id, report)
            except Exception:  # one company's failure must not stall the others
                report.errors += 1
                log.exception("outbox pass failed for company %s", company_id)
        if self.after_pass is not None:
            self.after_pass()  # webhooks for the changes this pass made
        return report

    def run_forever(
        self, *, interval: float = 5.0, stop: Callable[[], bool] = lambda: False
    ) -> None:
        while not stop():
            if not self.run_once().busy():
                time.sleep(interval)

    def _company(self, company_id: str, report: RunReport) -> None:
        client = self.clients(company_id)
        self._recover(company_id, client, report)
        self._prepare(company_id, report)
        for sub in store.open_submissions(self.engine, company_id, "prepared"):
            self._upload(sub, client, report)
        for sub in store.open_submissions(self.engine, company_id, "uploaded"):
            self._poll(sub, client, report)

    # -------------------------------------------------------------------- steps

    def _prepare(self, company_id: str, report: RunReport) -> None:
        for boleta in (False, True):  # boletas travel in EnvioBOLETA, on another service
            while True:
                batch = store.queued_documents(
                    self.engine, company_id, self.config.batch_size, boleta=boleta
                )
                if not batch:
                    break
                envio = self.envelope(company_id, [xml for _, xml in batch])
                ids = [d for d, _ in batch]
                if not store.create_submission(self.engine, company_id, ids, envio, boleta=boleta):
                    return  # another worker took them: it will carry on
                report.prepared += 1

    def _upload(self, sub: store.Submission, client: SiiPort, report: RunReport) -> None:
        from dte_core.sii.errors import (
            SiiAuthError,
            SiiRejectedError,
            SiiUnavailableError,
            UploadOutcomeUnknownError,
        )
        from dte_core.sii.transport import NotSentError

        if not store.mark_uploading(self.engine, sub):
            return
        try:
            track_id = client.upload(sub.envio, boleta=sub.boleta)
        except SiiRejectedError as exc:
            # DTEUpload refused the file: nothing was registered, and the same bytes would be
            # refused again, so the documents are rejected with the SII's reason.
            detail = {"status": exc.status, "reason": exc.message, "details": list(exc.details)}
            results = {doc: (REJECTED, None, detail) for doc in sub.document_ids}
            store.finish(self.engine, sub, results, sii_estado=None, expected="uploading")
            report.finished += 1
            return
        except (NotSentError, SiiUnavailableError, SiiAuthError) as exc:
            store.back_to_prepared(self.engine, sub, f"not sent: {exc}")
            report.errors += 1
            return
        except UploadOutcomeUnknownError:
            report.errors += 1  # stays "uploading": the next pass checks before re-sending
            return
        store.mark_uploaded(self.engine, sub, track_id)
        report.uploaded += 1

    def _recover(self, company_id: str, client: SiiPort, report: RunReport) -> None:
        cutoff = self.now() - timedelta(seconds=self.config.recovery_grace_seconds)
        for sub in store.open_submissions(self.engine, company_id, "uploading"):
            if sub.updated_at is not None and _aware(sub.updated_at) > _aware(cutoff):
                continue
            held = client.held(sub.envio, boleta=sub.boleta)
            if not any(code is not None for code in held.values()):
                store.back_to_prepared(self.engine, sub, "the SII holds none of its documents")
                report.recovered += 1
                continue
            # the SII has the envelope but its track id was lost with the worker: settle each
            # document by its own status instead of uploading anything again
            store.mark_uploaded(self.engine, sub, None)
            self._finish_by_documents(store.reload(self.engine, sub.id), held)
            report.recovered += 1

    def _poll(self, sub: store.Submission, client: SiiPort, report: RunReport) -> None:
        if sub.track_id is None:
            self._finish_by_documents(sub, client.held(sub.envio, boleta=sub.boleta))
            report.finished += 1
            return
        company = get_company(self.engine, sub.company_id)
        assert company is not None
        outcome = client.outcome(
            sub.track_id, sub.envio, boleta=sub.boleta, rut_company=company.rut
        )
        if not outcome.final:
            report.pending += 1
            return
        keys = store.document_keys(self.engine, sub)
        base = {"estado": outcome.estado, "track_id": sub.track_id}
        results: dict[str, tuple[str, str | None, Any]] = {}
        for key, doc in keys.items():
            if outcome.rejected:
                results[doc] = (REJECTED, outcome.estado, {**base, "glosa": outcome.glosa})
            else:
                state, code, detail = outcome.results.get(key, (ACCEPTED, outcome.estado, None))
                results[doc] = (state, code, {**base, **(detail or {})})
        store.finish(self.engine, sub, results, sii_estado=outcome.estado)
        report.finished += 1

    def _finish_by_documents(self, sub: store.Submission, held: dict[Key, str | None]) -> None:
        keys = store.document_keys(self.engine, sub)
        results: dict[str, tuple[str, str | None, Any]] = {}
        for key, doc in keys.items():
            code = held.get(key)
            detail = {"estado": code, "track_id": sub.track_id, "settled_by": "document status"}
            results[doc] = (ACCEPTED, code, detail) if code else (REJECTED, None, detail)
        store.finish(self.engine, sub, results, sii_estado=None)


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

"""The task code both runners share: classify one range of a job's items and record it.

A range is re-runnable: only items still pending are read, results are written with a
conditional UPDATE in one transaction per range, and the job finishes exactly once. A document
that cannot be classified (unreadable XML, addressed to another company, an engine error) fails
alone with its error; a failure of the database or the context propagates, so the task is retried
and nothing is recorded half-way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from ai_service.context.models import ReceivedInvoice
from ai_service.jobs import repository as repo
from ai_service.jobs.models import ChunkOutcome
from ai_service.repositories.companies import Company, get_company
from ai_service.services.engines import EngineCache
from ai_service.usecases.common import ContextMismatchError
from dte_core.errors import DteError

log = logging.getLogger(__name__)


class NoContextError(RuntimeError):
    code = "no_context"


class Classifiers:
    """Each company's classifier in this process: the service's per-company engines
    (:class:`EngineCache`), kept warm and taught new decisions in place."""

    def __init__(self, engine: Engine, cache: EngineCache | None = None) -> None:
        self.engine = engine
        self.cache = cache or EngineCache(engine)
        self._companies: dict[str, Company] = {}

    def for_company(self, company_id: str) -> Callable[[ReceivedInvoice], dict[str, Any]]:
        company = self._companies.get(company_id) or get_company(self.engine, company_id)
        if company is None:
            raise LookupError(f"company {company_id} does not exist")
        self._companies[company_id] = company
        entries = self.cache.get(company)
        if not entries.context.accounts:
            raise NoContextError(
                "the company has no chart of accounts: load it with PUT /v1/context"
            )
        classifier = entries.get("classifier")

        def classify(invoice: ReceivedInvoice) -> dict[str, Any]:
            # the engine fills lazy caches on its first queries and learns in place under this
            # lock: one call at a time per company and process
            with entries.lock:
                result = classifier.classify(invoice)
            return dict(result.model_dump(mode="json"))

        return classify


def _outcome(
    seq: int, xml: bytes, classify: Callable[[ReceivedInvoice], dict[str, Any]]
) -> repo.ItemOutcome:
    try:
        invoice = ReceivedInvoice.from_xml(xml)
        return repo.ItemOutcome(seq, result=classify(invoice))
    except (DteError, ContextMismatchError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return repo.ItemOutcome(
            seq, error_code=exc.code or "invalid_document", error_message=message
        )
    except Exception as exc:  # a poisoned document must not take its neighbours down
        log.exception("classifying item %s failed", seq)
        return repo.ItemOutcome(
            seq,
            error_code="classification_error",
            error_message=f"the engine failed on this document ({type(exc).__name__})",
        )


def process_range(
    engine: Engine, classifiers: Classifiers, job_id: str, lo: int, hi: int
) -> ChunkOutcome:
    """Classify the pending items with ``lo <= seq < hi`` of ``job_id`` and record them."""
    company_id = repo.company_of_job(engine, job_id)
    if company_id is None:
        log.warning("job %s does not exist (deleted?); dropping its task", job_id)
        return ChunkOutcome(0, 0, False)
    pending = repo.pending_documents(engine, company_id, job_id, lo, hi)
    done = failed = 0
    if pending:
        try:
            classify = classifiers.for_company(company_id)
        except NoContextError as exc:
            outcomes = [
                repo.ItemOutcome(p.seq, error_code=exc.code, error_message=str(exc))
                for p in pending
            ]
        else:
            outcomes = [_outcome(p.seq, p.xml, classify) for p in pending]
        done, failed = repo.record_outcomes(engine, company_id, job_id, outcomes)
    finished = repo.try_finish(engine, company_id, job_id)
    return ChunkOutcome(done + failed, failed, finished)


def ranges(total: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + chunk, total)) for lo in range(0, total, chunk)]

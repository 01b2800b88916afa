"""Eval tasks on received invoices: classification, project matching, PO reconciliation,
anomaly detection. Each company's engine is built once per run from its past context; the
streaming engines (PO reconciliation, anomalies) take in each generated document after it is
judged, as in production; hard cases are judged after the stream and not taken in."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ai_service.context.models import CompanyContext, ReceivedInvoice
from ai_service.llm.base import LLMClient
from ai_service.llm.prompts import PromptRegistry
from ai_service.usecases.classification import ClassifierConfig, ExpenseClassifier
from ai_service.usecases.common import UseCaseResult
from ai_service.usecases.llm_assist import (
    ClassificationOutput,
    ProjectMatchOutput,
    assist_classification,
    assist_project,
)
from ai_service.usecases.project_matching import MatcherConfig, ProjectMatcher
from evals import companies
from evals.cases import Case
from evals.scoring import labelled
from evals.tasks import (
    EvalTask,
    Gate,
    Metered,
    Prediction,
    company_id,
    register,
    stamp,
    timed_local,
)

NO_PROJECT = "(none)"


@lru_cache(maxsize=64)
def _invoice(raw: str) -> ReceivedInvoice:
    return ReceivedInvoice.model_validate_json(raw)


def invoice_of(case: Case) -> ReceivedInvoice:
    return _invoice(json.dumps(case.input["invoice"], sort_keys=True))


def document_view(invoice: ReceivedInvoice) -> dict[str, Any]:
    """The invoice as the prompts show it (SII element names)."""
    return {
        "TipoDTE": invoice.tipo_dte,
        "Folio": invoice.folio,
        "FchEmis": invoice.fecha.isoformat(),
        "RUTEmisor": str(invoice.emisor_rut),
        "RznSoc": invoice.emisor_name,
        "GiroEmis": invoice.emisor_giro,
        "MntNeto": invoice.neto,
        "MntExe": invoice.exento,
        "IVA": invoice.iva,
        "MntTotal": invoice.total,
        "Detalle": [
            {
                "NroLinDet": ln.line_no,
                "NmbItem": ln.name,
                "DscItem": ln.description,
                "QtyItem": None if ln.quantity is None else str(ln.quantity),
                "PrcItem": None if ln.unit_price is None else str(ln.unit_price),
                "MontoItem": ln.amount,
            }
            for ln in invoice.lines
        ],
        "Referencia": [
            {"TpoDocRef": r.tipo_doc_ref, "FolioRef": r.folio_ref, "RazonRef": r.razon_ref}
            for r in invoice.references
        ],
        "DirDest": invoice.delivery_address,
        "CmnaDest": invoice.delivery_comuna,
    }


def _ranked(result: UseCaseResult[str]) -> Prediction:
    ranked = [c.value for c in result.candidates]
    return Prediction(
        label=result.decision,
        confidence=result.confidence,
        ranked=ranked,
        data={"abstained": result.abstained},
    )


# ----------------------------------------------------------------- the LLM's second opinion


def _assisted(section: dict[str, Any], local: Prediction) -> Prediction:
    """The prediction after the production second opinion (``ai_service.usecases.llm_assist``):
    the local engine's unless it abstained and the LLM gave a valid answer."""
    if section.get("engine", "local") == "local" or section.get("fallback_reason"):
        return Prediction(
            label=local.label,
            confidence=local.confidence,
            ranked=list(local.ranked),
            data={"abstained": local.data.get("abstained"), "asked": "engine" in section},
        )
    decision = section.get("decision")
    label = decision if decision is not None else NO_PROJECT
    ranked = [label, *[r for r in local.ranked if r != label]]
    return Prediction(
        label=None if section.get("abstained") else label,
        confidence=float(section["confidence"]),
        ranked=ranked,
        data={"abstained": bool(section.get("abstained")), "asked": True},
    )


# ---------------------------------------------------------------------------- classification


class ClassificationRunner:
    def __init__(self, company: str) -> None:
        self.context: CompanyContext = companies.past_context(company)
        self.engine = ExpenseClassifier(self.context)

    def local(self, case: Case) -> Prediction:
        return timed_local(lambda: _ranked(self.engine.classify(invoice_of(case)).invoice))

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        """As production asks: only where the classifier abstains (the LLM's second opinion)."""
        started = time.perf_counter()
        invoice = invoice_of(case)
        result = self.engine.classify(invoice)
        metered = Metered(client)
        answer = assist_classification(
            result.model_dump(mode="json"),
            invoice,
            self.context,
            llm=metered,
            prompts=prompts,
            company_id=company_id(case),
        )
        prediction = _assisted(answer["invoice"], _ranked(result.invoice))
        return stamp(prediction, metered.last, started)

    def after(self, case: Case) -> None:
        return None


def score_classification(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    expected = [c.expected["account_code"] for c in cases]
    return labelled(cases, preds, expected, threshold=ClassifierConfig().threshold)


register(
    EvalTask(
        name="classification",
        prompt="classification",
        output_model=ClassificationOutput,
        runner=ClassificationRunner,
        score=score_classification,
        gates=(Gate("accuracy"), Gate("macro_f1"), Gate("ece", lower_is_better=True)),
        description="expense account of received invoices (invoice level)",
    )
)


# ------------------------------------------------------------------------- project matching


class ProjectRunner:
    def __init__(self, company: str) -> None:
        self.context = companies.past_context(company)
        self.engine = ProjectMatcher(self.context)

    def local(self, case: Case) -> Prediction:
        return timed_local(lambda: _ranked(self.engine.match(invoice_of(case)).result))

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        """As production asks: only where the matcher abstains."""
        started = time.perf_counter()
        invoice = invoice_of(case)
        result = self.engine.match(invoice)
        metered = Metered(client)
        answer = assist_project(
            result.model_dump(mode="json"),
            invoice,
            self.context,
            llm=metered,
            prompts=prompts,
            company_id=company_id(case),
        )
        local = _ranked(result.result)
        local.ranked = [r if r is not None else NO_PROJECT for r in local.ranked]
        prediction = _assisted(answer["result"], local)
        return stamp(prediction, metered.last, started)

    def after(self, case: Case) -> None:
        return None


def score_projects(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    expected = [c.expected["project_code"] or NO_PROJECT for c in cases]
    return labelled(cases, preds, expected, threshold=MatcherConfig().threshold)


register(
    EvalTask(
        name="project_matching",
        prompt="project_matching",
        output_model=ProjectMatchOutput,
        runner=ProjectRunner,
        score=score_projects,
        gates=(Gate("accuracy"), Gate("macro_f1"), Gate("ece", lower_is_better=True)),
        description="project (analytic account) of received invoices",
    )
)

"""The LLM as a second opinion where the local engine abstains (classification, projects).

The local engines answer first. Only when one abstains (its calibrated confidence is below
the company's threshold) is the configured LLM asked, with the same candidates and evidence
the engine saw; its answer must name an account or project that exists in the company's
context, or it is discarded for the local one with ``fallback_reason``. So configuring an LLM
can turn a "needs review" into an answer, never a confident local answer into a worse one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ai_service.context.models import CompanyContext, ReceivedInvoice


class ClassificationOutput(BaseModel):
    """``prompts/classification/schema.json``."""

    account_code: str
    analytic_tags: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    rationale: str


class ProjectMatchOutput(BaseModel):
    """``prompts/project_matching/schema.json``."""

    project_id: str | None
    confidence: float = Field(ge=0, le=1)
    evidence: list[str] = Field(default_factory=list)
    rationale: str


def _document(invoice: ReceivedInvoice) -> dict[str, Any]:
    return {
        "tipo_dte": invoice.tipo_dte,
        "folio": invoice.folio,
        "fecha": invoice.fecha.isoformat(),
        "rut_emisor": str(invoice.emisor_rut),
        "emisor": invoice.emisor_name,
        "giro_emisor": invoice.emisor_giro,
        "items": [
            {"NmbItem": ln.name, "DscItem": ln.description, "MontoItem": ln.amount}
            for ln in invoice.lines
        ],
        "referencias": [
            {"TpoDocRef": r.tipo_doc_ref, "FolioRef": r.folio_ref} for r in invoice.references
        ],
        "direccion_entrega": invoice.delivery_address,
        "comuna_entrega": invoice.delivery_comuna,
        "total": invoice.total,
    }


def _second_opinion(
    section: dict[str, Any],
    *,
    task: str,
    variables: dict[str, Any],
    schema: type[BaseModel],
    local_output: BaseModel,
    pick: str,
    allowed: set[str | None],
    llm: Any,
    prompts: Any,
    company_id: str,
) -> dict[str, Any]:
    from ai_service.llm.base import LocalEngine

    result = llm.complete(
        task,
        prompts.render(task, variables),
        schema,
        company_id=company_id,
        local=LocalEngine("local", lambda: local_output),
    )
    out = dict(section)
    if result.fallback_reason is not None:
        out["fallback_reason"] = result.fallback_reason
        return out
    chosen = getattr(result.output, pick)
    if chosen not in allowed:
        out["fallback_reason"] = "invalid_output"  # an invented account or project
        return out
    confidence = float(result.output.confidence)
    threshold = float(section.get("threshold", 0))
    out.update(
        decision=chosen,
        confidence=confidence,
        engine=str(result.engine),
        fallback_reason=None,
        abstained=confidence < threshold,
        needs_review=confidence < threshold,
        evidence=[
            *section.get("evidence", []),
            {
                "kind": "llm_rationale",
                "ref": None,
                "detail": result.output.rationale,
                "score": confidence,
            },
        ],
    )
    return out


def assist_classification(
    answer: dict[str, Any],
    invoice: ReceivedInvoice,
    context: CompanyContext,
    *,
    llm: Any,
    prompts: Any,
    company_id: str,
) -> dict[str, Any]:
    """``answer`` is the classifier's dumped result (``{"invoice": ..., "lines": ...}``)."""
    section = answer.get("invoice", {})
    if llm is None or not section.get("abstained"):
        return answer
    accounts = [{"code": a.code, "name": a.name} for a in context.accounts]
    local = ClassificationOutput(
        account_code=section.get("decision") or "",
        confidence=float(section.get("confidence", 0)),
        rationale="motor local",
    )
    assisted = _second_opinion(
        section,
        task="classification",
        variables={
            "document": _document(invoice),
            "accounts": accounts,
            "corrections": [
                e for e in section.get("evidence", []) if e.get("kind") != "llm_rationale"
            ],
        },
        schema=ClassificationOutput,
        local_output=local,
        pick="account_code",
        allowed={a["code"] for a in accounts},
        llm=llm,
        prompts=prompts,
        company_id=company_id,
    )
    return {**answer, "invoice": assisted}


def assist_project(
    answer: dict[str, Any],
    invoice: ReceivedInvoice,
    context: CompanyContext,
    *,
    llm: Any,
    prompts: Any,
    company_id: str,
) -> dict[str, Any]:
    """``answer`` is the matcher's dumped result (``{"invoice_key": ..., "result": ...}``)."""
    section = answer.get("result", {})
    if llm is None or not section.get("abstained"):
        return answer
    projects = [
        {"id": p.code, "name": p.name, "address": p.address, "comuna": p.comuna, "client": p.client}
        for p in context.projects
    ]
    local = ProjectMatchOutput(
        project_id=section.get("decision"),
        confidence=float(section.get("confidence", 0)),
        rationale="motor local",
    )
    assisted = _second_opinion(
        section,
        task="project_matching",
        variables={"document": _document(invoice), "projects": projects},
        schema=ProjectMatchOutput,
        local_output=local,
        pick="project_id",
        allowed={p["id"] for p in projects} | {None},
        llm=llm,
        prompts=prompts,
        company_id=company_id,
    )
    return {**answer, "result": assisted}

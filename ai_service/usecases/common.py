"""What every use case returns: the result envelope, its evidence and candidates, and the company
scope check. Pydantic only, cheap to import; the local engines' numeric pieces live in
:mod:`ai_service.usecases.scoring`."""

from __future__ import annotations

from typing import Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ai_service.context.models import CompanyContext, ReceivedInvoice

T = TypeVar("T")
Engine = Literal["local", "anthropic", "ollama"]


class Evidence(BaseModel):
    """One reason behind a decision, pointing at what Odoo holds (an invoice key, a PO number)."""

    model_config = ConfigDict(frozen=True)

    kind: str  # similar_decision, supplier_prior, purchase_order, guia_despacho, ...
    ref: str | None = None
    detail: str
    score: float


class Candidate(BaseModel, Generic[T]):
    model_config = ConfigDict(frozen=True)

    value: T
    score: float  # calibrated probability


class UseCaseResult(BaseModel, Generic[T]):
    """The envelope of every use case. ``decision`` is None when the engine abstains
    (confidence below ``threshold``); the candidates still show its best guesses."""

    decision: T | None
    confidence: float = Field(ge=0, le=1)
    candidates: list[Candidate[T]] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    engine: Engine = "local"
    fallback_reason: str | None = None
    threshold: float
    abstained: bool
    needs_review: bool

    @classmethod
    def decide(
        cls,
        candidates: list[Candidate[T]],
        threshold: float,
        evidence: list[Evidence],
        fallback_reason: str | None = None,
    ) -> UseCaseResult[T]:
        best = candidates[0] if candidates else None
        confidence = best.score if best else 0.0
        abstained = best is None or confidence < threshold
        return cls(
            decision=None if abstained or best is None else best.value,
            confidence=confidence,
            candidates=candidates,
            evidence=evidence,
            fallback_reason=fallback_reason,
            threshold=threshold,
            abstained=abstained,
            needs_review=abstained,
        )


class ContextMismatchError(ValueError):
    """The invoice is addressed to another company than the context's: every query is scoped
    by company."""

    code = "context_mismatch"


def check_scope(context: CompanyContext, invoice: ReceivedInvoice) -> None:
    if invoice.receptor_rut != context.company_rut:
        raise ContextMismatchError(
            f"invoice {invoice.key} is addressed to {invoice.receptor_rut}, not to "
            f"{context.company_rut}: use that company's context"
        )


#: The LLM path is wired later; a client given now is recorded, not called.
LLM_NOT_WIRED = "llm_path_not_wired"


class SupportsLLM(Protocol):
    """Placeholder for ai_service.llm's client; the local engines never require one."""

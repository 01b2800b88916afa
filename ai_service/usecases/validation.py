"""Validation before sending: a deterministic rule engine over a document about to be issued.

Input is the SII-named JSON the CLI and the API take (``Encabezado``/``Detalle``/...), plus an
optional :class:`IssuingContext` (the company's RUT, its CAFs, what it already issued). Every
rule runs on what it can read, even when :func:`dte_core.models.parse_documento` rejects the
document, so the user sees every problem at once, each with its rule id, the field in SII names
and a suggested fix. The findings never come from an LLM; :func:`explain` may ask one to phrase
them for the Odoo user and falls back to a local phrasing.

The context and the document's facts are in :mod:`~ai_service.usecases.validation_context`;
the rules in ``validation_rules`` (RUTs, parties, texts), ``validation_documents`` (CAF and
folios, dates, tipos), ``validation_amounts`` (arithmetic) and ``validation_references``
(notas and what they modify, duplicates). Rule ids are API: never rename one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from ai_service.usecases.validation_context import (
    CafSummary,
    Facts,
    InMemoryHistory,
    IssuedDocument,
    IssuedHistory,
    IssuingContext,
    ValidationPolicy,
)
from dte_core.errors import FieldError

if TYPE_CHECKING:
    from ai_service.llm.base import LLMClient, LLMResult
    from ai_service.llm.prompts import PromptRegistry

__all__ = [
    "CafSummary",
    "Finding",
    "InMemoryHistory",
    "IssuedDocument",
    "IssuedHistory",
    "IssuingContext",
    "ValidationExplanation",
    "ValidationPolicy",
    "ValidationResult",
    "explain",
    "rules",
    "validate_document",
]

Severity = Literal["error", "warning"]
Decision = Literal["ok", "blocked", "warnings"]
#: Same values as :data:`ai_service.usecases.common.Engine` (not imported: that module pulls in
#: scikit-learn, which the validation path does not need).
EngineName = Literal["local", "anthropic", "ollama"]

ENGINE_VERSION = "validation-rules-v1"
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------- results


class Finding(BaseModel):
    """One problem: which rule, how bad, where (dotted SII path, 0-based list indexes)."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity
    field: str
    message: str
    suggested_fix: str | None = None


class ValidationResult(BaseModel):
    """``blocked`` when any error (the SII would reject it, or it must not be sent);
    ``warnings`` when only warnings (a counterpart may claim); ``ok`` otherwise.
    ``confidence`` is the share of rules that ran: rules needing context that was not given
    (CAFs, history, company) are listed in ``rules_skipped``."""

    model_config = ConfigDict(frozen=True)

    decision: Decision
    findings: list[Finding]
    engine: EngineName = "local"
    confidence: float
    rules_run: int
    rules_skipped: list[str] = []
    rules_failed: list[str] = []  # rules that raised (logged): a defect, never a finding

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def rule_ids(self) -> set[str]:
        return {f.rule_id for f in self.findings}


# --------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Hit:
    """What a rule reports; the engine turns it into a :class:`Finding`."""

    field: str
    message: str
    fix: str | None = None
    severity: Severity | None = None  # None: the rule's default


Check = Callable[[Facts], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    check: Check
    needs: frozenset[str] = frozenset()


_REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str, severity: Severity, title: str, *, needs: Iterable[str] = ()
) -> Callable[[Check], Check]:
    """Register a check under a stable id (ids are API: never rename one)."""

    def register(check: Check) -> Check:
        if rule_id in _REGISTRY:
            raise ValueError(f"rule {rule_id} registered twice")
        _REGISTRY[rule_id] = Rule(rule_id, severity, title, check, frozenset(needs))
        return check

    return register


@cache
def rules() -> tuple[Rule, ...]:
    """Every rule, in report order (the schema fallback last: it skips fields already told).
    Sorted once: every rule registers when its module is imported, just below."""
    from ai_service.usecases import (  # registering is importing
        validation_amounts,
        validation_documents,
        validation_references,
        validation_rules,
    )

    modules = [
        m.__name__
        for m in (validation_rules, validation_documents, validation_amounts, validation_references)
    ]

    def order(r: Rule) -> tuple[bool, int]:
        module = r.check.__module__
        return r.id == SCHEMA_RULE, modules.index(module) if module in modules else -1

    return tuple(sorted(_REGISTRY.values(), key=order))


SCHEMA_RULE = "SCHEMA_INVALID"


def _overlaps(path: str, reported: set[str]) -> bool:
    if path in reported:
        return True
    return any(p.startswith((path + ".", path + "[")) for p in reported) or any(
        path.startswith((p + ".", p + "[")) for p in reported
    )


@rule(SCHEMA_RULE, "error", "the document breaks the SII format (schema or dte_core rules)")
def _schema(facts: Facts) -> Iterable[Hit]:
    for err in facts.schema_errors:
        if not _overlaps(err.field, facts.reported):
            yield Hit(err.field or "Documento", f"{err.code}: {err.message}", _schema_fix(err))


def _schema_fix(err: FieldError) -> str:
    if err.code in ("required", "missing"):
        return f"fill in {err.field.rsplit('.', 1)[-1]}"
    if err.code == "extra_forbidden":
        return "remove the element or fix its name (names are the SII's, case-sensitive)"
    if err.code == "not_allowed":
        return "remove the element: this tipo does not carry it"
    return "correct the value to the SII format"


def validate_document(raw: Any, context: IssuingContext | None = None) -> ValidationResult:
    """All findings at once; never raises on bad input (that is what it reports)."""
    facts = Facts(raw, context or IssuingContext())
    findings: list[Finding] = []
    skipped: list[str] = []
    failed: list[str] = []
    registry = rules()
    for r in registry:
        if not all(facts.has(n) for n in r.needs):
            skipped.append(r.id)
            continue
        try:
            hits = list(r.check(facts))
        except Exception:
            # A rule tripping over an input nobody foresaw must not hide the other findings.
            log.exception("validation rule %s failed", r.id)
            failed.append(r.id)
            continue
        for hit in hits:
            facts.reported.add(hit.field)
            findings.append(
                Finding(
                    rule_id=r.id,
                    severity=hit.severity or r.severity,
                    field=hit.field,
                    message=hit.message,
                    suggested_fix=hit.fix,
                )
            )
    findings.sort(key=lambda f: f.severity != "error")  # stable: rule order within a severity
    if any(f.severity == "error" for f in findings):
        decision: Decision = "blocked"
    else:
        decision = "warnings" if findings else "ok"
    ran = len(registry) - len(skipped) - len(failed)
    return ValidationResult(
        decision=decision,
        findings=findings,
        confidence=round(ran / len(registry), 3),
        rules_run=ran,
        rules_skipped=skipped,
        rules_failed=failed,
    )


# --------------------------------------------------------------------------------- explain


class FixExplanation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    code: str
    explanation: str
    suggested_fix: str


class ValidationExplanation(BaseModel):
    """``prompts/validation_explain`` output: one fix per finding, same field and code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str
    fixes: list[FixExplanation]


def local_explanation(result: ValidationResult) -> ValidationExplanation:
    errors, warnings = len(result.errors), len(result.warnings)
    if result.decision == "ok":
        summary = "El documento está listo para enviarse al SII."
    elif result.decision == "blocked":
        summary = f"El documento tiene {errors} error(es) que impiden enviarlo al SII"
        summary += f" y {warnings} advertencia(s)." if warnings else "."
    else:
        summary = f"El documento puede enviarse, pero revise {warnings} advertencia(s)."
    fixes = [
        FixExplanation(
            field=f.field,
            code=f.rule_id,
            explanation=f.message,
            suggested_fix=f.suggested_fix or "revise el campo indicado",
        )
        for f in result.findings
    ]
    return ValidationExplanation(summary=summary, fixes=fixes)


def explain(
    result: ValidationResult,
    document: Any,
    *,
    llm: LLMClient | None = None,
    prompts: PromptRegistry | None = None,
    company_id: str = "",
    timeout: float | None = None,
) -> LLMResult[ValidationExplanation]:
    """Phrase the findings for the Odoo user. With no ``llm`` (or no ``prompts``) the local
    phrasing answers; an LLM answer that drops, adds or renames findings is discarded."""
    from ai_service.llm.base import Engine, LLMResult, LocalEngine

    local = LocalEngine(ENGINE_VERSION, lambda: local_explanation(result))
    if llm is None or prompts is None or not result.findings:
        return LLMResult(output=local.run(), engine=Engine("local", ENGINE_VERSION))
    errors = [f.model_dump() for f in result.findings]
    prompt = prompts.render("validation_explain", {"document": document, "errors": errors})
    answer = llm.complete(
        "validation_explain",
        prompt,
        ValidationExplanation,
        company_id=company_id,
        local=local,
        timeout=timeout,
    )
    expected = sorted((f.field, f.rule_id) for f in result.findings)
    if sorted((x.field, x.code) for x in answer.output.fixes) != expected:
        return LLMResult(
            output=local.run(),
            engine=Engine("local", ENGINE_VERSION),
            fallback_reason="explanation_mismatch",
            usage=answer.usage,
            cost_usd=answer.cost_usd,
            attempts=answer.attempts,
        )
    return answer

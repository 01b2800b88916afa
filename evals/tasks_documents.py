"""Eval tasks on documents and questions: validation before sending (findings from rules; the
LLM only phrases them), extraction from a PDF's words, and chat with required citations."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ai_service.extraction.invoice import read_invoice
from ai_service.extraction.layout import Word, build_lines
from ai_service.llm.base import LLMClient
from ai_service.llm.prompts import PromptRegistry
from ai_service.usecases import chat
from ai_service.usecases.retrieval import Retriever, build_retriever
from ai_service.usecases.validation import ValidationExplanation, explain, validate_document
from evals import companies, scorers
from evals.cases import Case
from evals.gen_documents import EXTRACTION_FIELDS
from evals.outputs import ExtractionLine, ExtractionOutput
from evals.scoring import labelled
from evals.tasks import (
    EvalTask,
    Gate,
    Metered,
    Prediction,
    complete_llm,
    register,
    stamp,
    timed_local,
)

# ------------------------------------------------------------------------------ validation


class ValidationRunner:
    def __init__(self, company: str) -> None:
        self.company = company

    def local(self, case: Case) -> Prediction:
        def run() -> Prediction:
            result = validate_document(case.input["document"])
            errors = sorted({f.rule_id for f in result.errors})
            return Prediction(
                label="blocked" if result.decision == "blocked" else "sendable",
                confidence=result.confidence,
                data={"errors": errors},
            )

        return timed_local(run)

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        started = time.perf_counter()
        result = validate_document(case.input["document"])
        severity = {f.rule_id: f.severity for f in result.findings}
        answer = explain(
            result, case.input["document"], llm=client, prompts=prompts, company_id="evals"
        )
        # what the explanation tells the user to fix: the codes it covers that block sending
        errors = sorted({f.code for f in answer.output.fixes if severity.get(f.code) == "error"})
        pred = Prediction(
            label="blocked" if errors else "sendable",
            confidence=None,
            data={"errors": errors, "fixes": len(answer.output.fixes)},
        )
        stamp(pred, answer, started)
        if not result.findings:
            pred.engine = "local/no-findings"
        return pred

    def after(self, case: Case) -> None:
        return None


def score_validation(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    expected = ["blocked" if c.expected["blocked"] else "sendable" for c in cases]
    for p in preds:
        p.confidence = None  # share of rules run, not a probability of being right
    out = labelled(cases, preds, expected, k=1)
    exact = scorers.field_exact_match(
        [{"errors": ",".join(p.data["errors"])} for p in preds],
        [{"errors": ",".join(c.expected["errors"])} for c in cases],
    )
    wanted = [(c, p) for c, p in zip(cases, preds, strict=True) if c.expected["errors"]]
    found = sum(set(c.expected["errors"]) <= set(p.data["errors"]) for c, p in wanted)
    metrics = out["metrics"]
    metrics["errors_exact_match"] = exact["all_fields"]
    metrics["expected_rule_recall"] = round(found / max(len(wanted), 1), 4)
    rules: dict[str, dict[str, int]] = {}
    for c, p in zip(cases, preds, strict=True):
        for rule in set(c.expected["errors"]) | set(p.data["errors"]):
            row = rules.setdefault(rule, {"expected": 0, "found": 0, "spurious": 0})
            row["expected"] += rule in c.expected["errors"]
            row["found"] += rule in c.expected["errors"] and rule in p.data["errors"]
            row["spurious"] += rule in p.data["errors"] and rule not in c.expected["errors"]
    out["per_rule"] = dict(sorted(rules.items()))
    return out


register(
    EvalTask(
        name="validation",
        prompt="validation_explain",
        output_model=ValidationExplanation,
        runner=ValidationRunner,
        score=score_validation,
        gates=(Gate("accuracy"), Gate("errors_exact_match"), Gate("expected_rule_recall")),
        description="blocking findings before sending (the LLM path explains them)",
    )
)


# ------------------------------------------------------------------------------ extraction

FIELD_OF_OUTPUT = {
    "rut_emisor": "rut_emisor",
    "tipo_dte": "tipo_dte",
    "folio": "folio",
    "fch_emis": "fecha_emision",
    "mnt_neto": "monto_neto",
    "iva": "iva",
    "mnt_total": "monto_total",
}


def words_of(case: Case) -> list[Word]:
    return [
        Word(w[0], float(w[1]), float(w[2]), float(w[3]), float(w[4])) for w in case.input["words"]
    ]


def text_of(case: Case) -> str:
    return "\n".join(line.text for line in build_lines(words_of(case)))


class ExtractionRunner:
    def __init__(self, company: str) -> None:
        self.company = company

    def local(self, case: Case) -> Prediction:
        def run() -> Prediction:
            result = read_invoice(build_lines(words_of(case)), engine=case.input["engine"], pages=1)
            fields = {name: result.value(name) for name in EXTRACTION_FIELDS}
            return Prediction(
                label=None,
                confidence=result.confidence,
                data={"fields": fields, "n_lines": len(result.lines)},
            )

        return timed_local(run)

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        local = self.local(case)

        def fallback() -> ExtractionOutput:
            f = local.data["fields"]
            return ExtractionOutput(
                tipo_dte=f["tipo_dte"],
                folio=f["folio"],
                fecha_emision=f["fch_emis"],
                rut_emisor=f["rut_emisor"],
                monto_neto=f["mnt_neto"],
                iva=f["iva"],
                monto_total=f["mnt_total"],
                lines=[
                    ExtractionLine(nombre="", cantidad=None, precio_unitario=None, monto=None)
                    for _ in range(local.data["n_lines"])
                ],
                confidence=local.confidence or 0.0,
            )

        out, result, started = complete_llm(
            case,
            client,
            prompts,
            prompt="extraction",
            model=ExtractionOutput,
            variables={"text": text_of(case)},
            local_output=fallback,
            engine_name="extraction-local",
        )
        dumped = out.model_dump()
        fields = {name: dumped[FIELD_OF_OUTPUT[name]] for name in EXTRACTION_FIELDS}
        if isinstance(fields["rut_emisor"], str):
            fields["rut_emisor"] = fields["rut_emisor"].upper()
        pred = Prediction(
            label=None,
            confidence=out.confidence,
            data={"fields": fields, "n_lines": len(out.lines)},
        )
        return stamp(pred, result, started)

    def after(self, case: Case) -> None:
        return None


def score_extraction(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    exact = scorers.field_exact_match(
        [p.data["fields"] for p in preds], [c.expected["fields"] for c in cases]
    )
    for c, p in zip(cases, preds, strict=True):
        right = all(
            scorers._same(p.data["fields"].get(k), v) for k, v in c.expected["fields"].items()
        )
        p.label = "all_fields_right" if right else "some_field_wrong"
        p.ranked = [p.label]
    out = labelled(cases, preds, ["all_fields_right"] * len(cases), k=1)
    metrics = out["metrics"]
    metrics["all_fields"] = exact["all_fields"]
    metrics["mean_field"] = exact["mean_field"]
    lines = [
        (c.expected["n_lines"], p.data["n_lines"])
        for c, p in zip(cases, preds, strict=True)
        if c.expected.get("n_lines") is not None
    ]
    metrics["line_count_match"] = round(sum(a == b for a, b in lines) / max(len(lines), 1), 4)
    out["per_field"] = exact["per_field"]
    out.pop("per_class", None)
    return out


register(
    EvalTask(
        name="extraction",
        prompt="extraction",
        output_model=ExtractionOutput,
        runner=ExtractionRunner,
        score=score_extraction,
        gates=(Gate("all_fields"), Gate("mean_field"), Gate("ece", lower_is_better=True)),
        description="header fields from a PDF's text layer (field-level exact match)",
    )
)


# ------------------------------------------------------------------------------------ chat


@lru_cache(maxsize=8)
def retriever_for(company: str) -> Retriever:
    return build_retriever(companies.full_context(company) if company else None)


def _chat_prediction(result: chat.ChatResult) -> Prediction:
    output = chat.ChatAnswerOutput(
        answer=result.answer,
        answerable=result.answerable,
        citations=[chat.Citation(source_id=c.id, quote=c.quote) for c in result.citations],
    )
    valid = not chat.citation_problems(output, result.retrieved)
    return Prediction(
        label=result.answerable,
        confidence=result.confidence,
        data={"cited": [c.id for c in result.citations], "quotes_valid": valid},
    )


class ChatRunner:
    def __init__(self, company: str) -> None:
        self.retriever = retriever_for(company)

    def local(self, case: Case) -> Prediction:
        return timed_local(
            lambda: _chat_prediction(chat.answer(case.input["question"], self.retriever))
        )

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        started = time.perf_counter()
        metered = Metered(client)
        result = chat.answer(
            case.input["question"],
            self.retriever,
            llm=metered,
            prompt=prompts.template("chat"),
            company_id=case.company or "evals",
        )
        pred = stamp(_chat_prediction(result), metered.last, started)
        if result.fallback_reason:
            pred.fallback_reason = result.fallback_reason
        return pred

    def after(self, case: Case) -> None:
        return None


def score_chat(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    expected = [bool(c.expected["answerable"]) for c in cases]
    cites = scorers.citations(
        [p.data["cited"] for p in preds],
        [c.expected["required_citations"] for c in cases],
        [bool(p.label) for p in preds],
        expected,
        [bool(p.data["quotes_valid"]) for p in preds],
    )
    for p in preds:
        p.ranked = [p.label]
    out = labelled(cases, preds, expected, k=1)
    out["metrics"].update(cites)
    return out


register(
    EvalTask(
        name="chat",
        prompt="chat",
        output_model=chat.ChatAnswerOutput,
        runner=ChatRunner,
        score=score_chat,
        gates=(Gate("required_cited"), Gate("quotes_valid"), Gate("refusal_accuracy")),
        description="answers citing the sources that hold them; refusals",
    )
)

"""Expense classification: quality floors on held-out generated companies, calibration,
abstention, learning from corrections, determinism and company isolation."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ai_service.context import AccountingDecision, LineDecision
from ai_service.synth import SyntheticCompany
from ai_service.usecases.classification import ClassifierConfig, ExpenseClassifier
from ai_service.usecases.common import ContextMismatchError
from ai_service.usecases.scoring import CharNgramEncoder, expected_calibration_error

from .conftest import KINDS

# measured on seed 20261: accuracy 0.95-0.99, macro-F1 0.93-0.98, pooled ECE ~0.02-0.03
ACCURACY_FLOOR = 0.92
MACRO_F1_FLOOR = 0.88
ECE_CEILING = 0.07


@pytest.fixture(scope="module")
def evaluated(companies: dict[str, SyntheticCompany]) -> dict[str, list[tuple[str, float, str]]]:
    """Per kind: (predicted account, calibrated confidence, true account) of unseen invoices."""
    out = {}
    for kind, company in companies.items():
        context, future = company.split(0.7)
        engine = ExpenseClassifier(context)
        rows = []
        for doc in future:
            best = engine.classify(doc.invoice).invoice.candidates[0]
            rows.append((best.value, best.score, doc.label.account_code))
        out[kind] = rows
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_accuracy_and_macro_f1_floors(
    evaluated: dict[str, list[tuple[str, float, str]]], kind: str
) -> None:
    rows = evaluated[kind]
    predicted, truth = [r[0] for r in rows], [r[2] for r in rows]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert len(rows) > 150
    assert accuracy >= ACCURACY_FLOOR
    assert f1_score(truth, predicted, average="macro") >= MACRO_F1_FLOOR


def test_confidence_is_calibrated_and_abstaining_raises_precision(
    evaluated: dict[str, list[tuple[str, float, str]]],
) -> None:
    rows = [r for kind in KINDS for r in evaluated[kind]]
    confidence = np.asarray([r[1] for r in rows])
    correct = np.asarray([r[0] == r[2] for r in rows])
    assert expected_calibration_error(confidence, correct) <= ECE_CEILING
    kept = confidence >= ClassifierConfig().threshold
    assert 0.5 < kept.mean() < 1.0, "the engine abstains on some, not all"
    assert correct[kept].mean() > correct.mean()
    assert correct[kept].mean() >= 0.97
    # low confidence really is less often right
    assert correct[~kept].mean() < correct[kept].mean() - 0.1


def test_abstaining_result_has_no_decision_but_keeps_candidates(
    companies: dict[str, SyntheticCompany],
) -> None:
    context, future = companies["restaurant"].split(0.7)
    engine = ExpenseClassifier(context, config=ClassifierConfig(threshold=0.999))
    result = engine.classify(future[0].invoice).invoice
    assert result.abstained and result.needs_review and result.decision is None
    assert result.candidates and result.confidence == result.candidates[0].score < 0.999
    assert result.engine == "local" and result.fallback_reason is None


def test_evidence_names_past_decisions_and_the_supplier_prior(
    companies: dict[str, SyntheticCompany],
) -> None:
    context, future = companies["construction"].split(0.7)
    engine = ExpenseClassifier(context)
    doc = next(d for d in future if d.invoice.emisor_rut in {s.rut for s in context.suppliers})
    result = engine.classify(doc.invoice)
    kinds = {e.kind for e in result.invoice.evidence}
    assert kinds == {"similar_decision", "supplier_prior"}
    known = {d.invoice_key for d in context.decisions}
    refs = [e.ref for e in result.invoice.evidence if e.kind == "similar_decision"]
    assert refs and set(refs) <= known
    sims = [e.score for e in result.invoice.evidence if e.kind == "similar_decision"]
    assert sims == sorted(sims, reverse=True)
    assert [ln.line_no for ln in result.lines] == [ln.line_no for ln in doc.invoice.lines]


def _correct(decision_key: str, account: str, lines: list[int]) -> AccountingDecision:
    return AccountingDecision(
        invoice_key=decision_key,
        decided_at=datetime(2030, 1, 1),
        account_code=account,
        lines=[LineDecision(line_no=n, account_code=account) for n in lines],
    )


def test_a_correction_changes_the_next_answer_without_retraining(
    companies: dict[str, SyntheticCompany],
) -> None:
    context, future = companies["construction"].split(0.7)
    engine = ExpenseClassifier(context)
    # two later invoices of one supplier whose first lines read the same
    pairs = {}
    for doc in future:
        if len(doc.invoice.lines) == 1 and not doc.label.anomalies:
            key = (doc.invoice.emisor_rut, doc.invoice.lines[0].name)
            pairs.setdefault(key, []).append(doc)
    first, second = next(docs[:2] for docs in pairs.values() if len(docs) >= 2)
    before = engine.classify(second.invoice).invoice
    assert before.decision == second.label.account_code
    other = next(a.code for a in context.accounts if a.code != before.decision)
    engine.correct(first.invoice, _correct(first.invoice.key, other, [1]))
    after = engine.classify(second.invoice).invoice
    assert after.decision == other, "the accountant's correction wins for the same wording"
    assert any(e.kind == "correction" and e.ref == first.invoice.key for e in after.evidence)
    # a later routine decision on such a line supersedes the correction
    engine.learn(second.invoice, _correct(second.invoice.key, before.decision, [1]))
    assert engine.classify(first.invoice).invoice.candidates[0].value == before.decision


def test_a_routine_decision_counts_at_once(companies: dict[str, SyntheticCompany]) -> None:
    context, future = companies["restaurant"].split(0.7)
    engine = ExpenseClassifier(context)
    doc = future[0]
    before = engine.classify(doc.invoice).invoice
    engine.learn(doc.invoice, _correct(doc.invoice.key, before.candidates[0].value, [1]))
    after = engine.classify(doc.invoice).invoice
    assert after.evidence[0].ref == doc.invoice.key and after.evidence[0].score > 0.99
    prior = next(e for e in after.evidence if e.kind == "supplier_prior")
    again_prior = prior
    # learning the same decision twice does not count it twice
    engine.learn(doc.invoice, _correct(doc.invoice.key, before.candidates[0].value, [1]))
    again = engine.classify(doc.invoice).invoice
    again_prior = next(e for e in again.evidence if e.kind == "supplier_prior")
    assert again_prior.detail == prior.detail


def test_same_input_same_output(companies: dict[str, SyntheticCompany]) -> None:
    context, future = companies["it_services"].split(0.7)
    one, two = ExpenseClassifier(context), ExpenseClassifier(context)
    for doc in future[:25]:
        assert one.classify(doc.invoice) == two.classify(doc.invoice)


def test_engines_only_see_their_own_company(companies: dict[str, SyntheticCompany]) -> None:
    construction, restaurant = companies["construction"], companies["restaurant"]
    ctx_a, future_a = construction.split(0.7)
    ctx_b, future_b = restaurant.split(0.7)
    engine_a, engine_b = ExpenseClassifier(ctx_a), ExpenseClassifier(ctx_b)
    with pytest.raises(ContextMismatchError):
        engine_a.classify(future_b[0].invoice)
    with pytest.raises(ContextMismatchError):
        engine_a.learn(future_b[0].invoice, _correct(future_b[0].invoice.key, "5101001", [1]))
    # the same electricity company supplies both; teaching company A changes nothing for B
    shared = {s.rut for s in ctx_a.suppliers} & {s.rut for s in ctx_b.suppliers}
    assert shared
    doc_b = next(d for d in future_b if d.invoice.emisor_rut in shared)
    before = engine_b.classify(doc_b.invoice)
    doc_a = next(d for d in future_a if d.invoice.emisor_rut == doc_b.invoice.emisor_rut)
    engine_a.learn(doc_a.invoice, _correct(doc_a.invoice.key, "5108001", [1]))
    assert engine_b.classify(doc_b.invoice) == before
    refs = {e.ref for e in before.invoice.evidence if e.kind == "similar_decision"}
    assert refs <= {d.invoice_key for d in ctx_b.decisions}
    assert {c.value for c in before.invoice.candidates} <= {a.code for a in ctx_b.accounts}


def test_an_llm_client_is_accepted_but_not_required(companies: dict[str, SyntheticCompany]) -> None:
    context, future = companies["it_services"].split(0.7)
    result = ExpenseClassifier(context, llm=object()).classify(future[0].invoice).invoice
    assert result.engine == "local" and result.fallback_reason == "llm_path_not_wired"


class DenseEncoder:
    """A stand-in for a sentence-embedding model: dense unit rows."""

    def __init__(self) -> None:
        self._inner = CharNgramEncoder(n_features=2**11)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._inner.encode(texts).toarray())


def test_a_dense_encoder_can_be_plugged_in(companies: dict[str, SyntheticCompany]) -> None:
    context, future = companies["restaurant"].split(0.7)
    engine = ExpenseClassifier(context, encoder=DenseEncoder())
    hits = [
        engine.classify(d.invoice).invoice.candidates[0].value == d.label.account_code
        for d in future
    ]
    assert np.mean(hits) >= ACCURACY_FLOOR - 0.05


def test_cold_start_and_empty_invoices_abstain(companies: dict[str, SyntheticCompany]) -> None:
    company = companies["it_services"]
    empty_context = company.context.replaced(invoices=[], decisions=[])
    engine = ExpenseClassifier(empty_context)
    doc = company.documents[0]
    result = engine.classify(doc.invoice).invoice
    assert result.abstained and result.decision is None and result.confidence < 0.5
    blank = engine.classify(doc.invoice.model_copy(update={"lines": []}))
    assert blank.invoice.abstained and blank.invoice.candidates == [] and blank.lines == []


def test_an_unknown_supplier_is_classified_by_its_lines(
    companies: dict[str, SyntheticCompany],
) -> None:
    from dte_core.rut import Rut

    context, future = companies["construction"].split(0.7)
    engine = ExpenseClassifier(context)
    stranger = Rut.parse("78123456-7")
    assert stranger not in {s.rut for s in context.suppliers}
    hits = []
    for doc in future:
        invoice = doc.invoice.model_copy(
            update={"emisor_rut": stranger, "emisor_name": "Nuevo Proveedor SpA"}
        )
        result = engine.classify(invoice).invoice
        hits.append(result.candidates[0].value == doc.label.account_code)
    assert np.mean(hits) >= 0.9  # measured 0.97
    prior = next(e for e in result.evidence if e.kind == "supplier_prior")
    assert prior.detail == "no past decisions for this supplier"

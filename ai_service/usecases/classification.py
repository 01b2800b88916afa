"""Expense classification: which account the accountant would book an invoice and each of its
lines to, learnt from the company's own past decisions and updated with every new one.

Three online experts vote per line, combined in log space:

* nearest past lines (cosine over the encoder's vectors, same supplier counts more);
* a multinomial naive Bayes over hashed char n-gram counts (count updates, no retrain);
* the supplier's prior (how its past lines were booked), smoothed towards the company's mix.

A new decision *supersedes* older near-identical lines of the same supplier booked elsewhere: the
accountant's latest word on "ARR. GRUA" is what counts, so a correction changes the next answer
at once. Confidence is Platt-calibrated on the most recent part of the history, held out while
the rest is learnt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from ai_service.context.models import AccountingDecision, CompanyContext, ReceivedInvoice
from ai_service.usecases.common import (
    LLM_NOT_WIRED,
    Candidate,
    Evidence,
    SupportsLLM,
    UseCaseResult,
    check_scope,
)
from ai_service.usecases.scoring import (
    CharNgramEncoder,
    PlattCalibrator,
    RowStore,
    TextEncoder,
    calibrated_candidates,
    normalize,
)


@dataclass(frozen=True)
class ClassifierConfig:
    threshold: float = 0.8  # calibrated confidence below this -> abstain, needs_review
    k: int = 12
    knn_weight: float = 1.0
    nb_weight: float = 0.6
    supplier_weight: float = 0.5
    same_supplier_boost: float = 2.0
    supersede_similarity: float = 0.9
    #: a correction rules the same supplier's lines at least this similar to the corrected one
    precedent_similarity: float = 0.75
    precedent_weight: float = 2.5
    calibration_share: float = 0.2  # newest share of the history held out to calibrate
    nb_features: int = 2**16
    nb_alpha: float = 0.1
    nb_sharpness: float = 8.0  # NB log-likelihoods are per n-gram averages times this
    top: int = 3  # candidates returned
    #: a line less similar than this to every past line is new to the engine: the calibration,
    #: fitted on familiar lines, does not hold for it, so its confidence is capped (and lower
    #: still from a supplier never seen) and the engine abstains rather than guess
    novelty_similarity: float = 0.35
    novel_confidence_cap: float = 0.6
    novel_unknown_supplier_cap: float = 0.4


class LineClassification(BaseModel):
    line_no: int
    result: UseCaseResult[str]


class InvoiceClassification(BaseModel):
    invoice_key: str
    invoice: UseCaseResult[str]
    lines: list[LineClassification]


@dataclass
class _Raw:
    probs: np.ndarray  # lines x accounts
    amounts: np.ndarray
    neighbours: list[list[tuple[int, float]]]  # per line: (row, similarity)
    supplier_counts: np.ndarray | None

    @property
    def invoice_probs(self) -> np.ndarray:
        weights = np.abs(self.amounts) + 1.0
        return np.asarray((weights[:, None] * self.probs).sum(0) / weights.sum())


@dataclass
class _Rows:
    """Per learnt line: what it was, and whether a later decision superseded it."""

    supplier: list[str] = field(default_factory=list)
    account: list[int] = field(default_factory=list)
    invoice_key: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)
    precedent: list[bool] = field(default_factory=list)  # learnt from a correction
    #: the row's hashed n-gram counts (indices, values), to take back out when superseded
    nb_counts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def line_text(invoice: ReceivedInvoice, line_no: int) -> str:
    line = next(line for line in invoice.lines if line.line_no == line_no)
    return line.text


class ExpenseClassifier:
    """The local expense-classification engine for one company.

    Building it learns the context's whole history (1-2 s per thousand decisions on a shared
    2-core machine); afterwards :meth:`learn` and :meth:`correct` update it in place in about a
    millisecond per invoice, so a service should keep one per company and feed it new
    decisions rather than rebuild it. Not thread-safe: serialise calls that learn.
    """

    def __init__(
        self,
        context: CompanyContext,
        *,
        encoder: TextEncoder | None = None,
        config: ClassifierConfig | None = None,
        llm: SupportsLLM | None = None,
    ) -> None:
        self.context, self.config, self.llm = context, config or ClassifierConfig(), llm
        self.encoder: TextEncoder = encoder or CharNgramEncoder()
        self.accounts = [a.code for a in context.accounts]
        self.index = {code: i for i, code in enumerate(self.accounts)}
        n_classes = len(self.accounts)
        self._counter = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            n_features=self.config.nb_features,
            alternate_sign=False,
            norm=None,
            preprocessor=normalize,
            dtype=np.float64,
        )
        self._vectors = RowStore()
        self._rows = _Rows()
        self._by_supplier: dict[str, list[int]] = {}
        # the supplier's own rows again, so superseding compares against them only
        self._supplier_vectors: dict[str, RowStore] = {}
        self._by_invoice: dict[str, list[int]] = {}
        self._supplier_counts: dict[str, np.ndarray] = {}
        self._class_counts = np.zeros(n_classes)
        self._feature_counts = np.zeros((n_classes, self.config.nb_features))
        self._log_theta: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._label_array: np.ndarray | None = None
        self._precedents: dict[str, list[int]] = {}  # supplier -> rows learnt from corrections
        self._line_calibrator = PlattCalibrator()
        self._invoice_calibrator = PlattCalibrator()
        self._fit(context)

    # --- learning ----------------------------------------------------------------------------

    def _fit(self, context: CompanyContext) -> None:
        history = context.decided_invoices()
        for invoice, _ in history:
            check_scope(self.context, invoice)
        held = int(len(history) * self.config.calibration_share)
        learnt, held_out = history[: len(history) - held], history[len(history) - held :]
        # encode the whole history in one call: per-invoice calls cost a millisecond each
        texts = [ln.text for invoice, _ in history for ln in invoice.lines]
        if not texts:
            return
        vectors, counts = self.encoder.encode(texts), self._counter.transform(texts).tocsr()
        bounds, start = [], 0
        for invoice, _ in history:
            bounds.append((start, start + len(invoice.lines)))
            start += len(invoice.lines)
        for (invoice, decision), (a, b) in zip(learnt, bounds, strict=False):
            self._learn(invoice, decision, False, vectors[a:b], counts[a:b])
        line_raw, line_ok, inv_raw, inv_ok = [], [], [], []
        for invoice, decision in held_out:
            raw = self._predict(invoice)
            for line, probs in zip(invoice.lines, raw.probs, strict=True):
                line_raw.append(float(probs.max()))
                line_ok.append(
                    self.accounts[int(probs.argmax())] == decision.line_account(line.line_no)
                )
            inv = raw.invoice_probs
            inv_raw.append(float(inv.max()))
            inv_ok.append(self.accounts[int(inv.argmax())] == decision.account_code)
        self._line_calibrator.fit(line_raw, line_ok)
        self._invoice_calibrator.fit(inv_raw, inv_ok)
        for (invoice, decision), (a, b) in zip(held_out, bounds[len(learnt) :], strict=True):
            self._learn(invoice, decision, False, vectors[a:b], counts[a:b])

    def correct(self, invoice: ReceivedInvoice, decision: AccountingDecision) -> None:
        """The accountant overrode a suggestion: learn the decision and make it a precedent for
        this supplier's similar lines, so the very next similar invoice follows it (until a
        later decision on such a line says otherwise)."""
        self.learn(invoice, decision, precedent=True)

    def learn(
        self, invoice: ReceivedInvoice, decision: AccountingDecision, *, precedent: bool = False
    ) -> None:
        """Take in one routine decision now: the next call to :meth:`classify` already counts it.
        A new decision on the same invoice replaces the old one."""
        check_scope(self.context, invoice)
        texts = [ln.text for ln in invoice.lines]
        self._learn(
            invoice,
            decision,
            precedent,
            self.encoder.encode(texts),
            self._counter.transform(texts).tocsr(),
        )

    def _learn(
        self,
        invoice: ReceivedInvoice,
        decision: AccountingDecision,
        precedent: bool,
        all_vectors: Any,
        all_counts: sparse.csr_matrix,
    ) -> None:
        for row in self._by_invoice.pop(decision.invoice_key, []):
            self._deactivate(row)  # a new decision on the same invoice replaces the old one
        supplier = str(invoice.emisor_rut)
        keep = [
            (j, ln, self.index[code])
            for j, ln in enumerate(invoice.lines)
            if (code := decision.line_account(ln.line_no)) in self.index
        ]
        if not keep:
            return
        lines = [(ln, acc) for _, ln, acc in keep]
        picked = [j for j, _, _ in keep]
        if len(picked) == len(invoice.lines):
            vectors, counts = all_vectors, all_counts
        else:
            vectors, counts = all_vectors[picked], all_counts[picked]
        previous = self._by_supplier.get(supplier, [])
        if previous:
            stale = self._supplier_vectors[supplier].similarities(vectors)
            for j, (_ln, acc) in enumerate(lines):
                for col in np.flatnonzero(stale[j] >= self.config.supersede_similarity):
                    row = previous[col]
                    if self._rows.active[row] and self._rows.account[row] != acc:
                        self._deactivate(row)
        self._vectors.append(vectors)
        self._supplier_vectors.setdefault(supplier, RowStore()).append(vectors)
        prior = self._supplier_counts.setdefault(supplier, np.zeros(len(self.accounts)))
        for j, (ln, acc) in enumerate(lines):
            row = len(self._rows.account)
            self._rows.supplier.append(supplier)
            self._rows.account.append(acc)
            self._rows.invoice_key.append(decision.invoice_key)
            self._rows.text.append(ln.text)
            self._rows.active.append(True)
            self._rows.precedent.append(precedent)
            if precedent:
                self._precedents.setdefault(supplier, []).append(row)
            lo, hi = counts.indptr[j], counts.indptr[j + 1]
            indices, values = counts.indices[lo:hi], counts.data[lo:hi]
            self._rows.nb_counts.append((indices, values))
            self._by_supplier.setdefault(supplier, []).append(row)
            self._by_invoice.setdefault(decision.invoice_key, []).append(row)
            prior[acc] += 1
            self._class_counts[acc] += 1
            self._feature_counts[acc, indices] += values
        self._log_theta = None

    def _labels(self) -> np.ndarray:
        if self._label_array is None or len(self._label_array) != len(self._rows.account):
            self._label_array = np.asarray(self._rows.account)
        return self._label_array

    def _active_mask(self) -> np.ndarray:
        if self._mask is None or len(self._mask) != len(self._rows.active):
            self._mask = np.asarray(self._rows.active, dtype=float)
        return self._mask

    def _deactivate(self, row: int) -> None:
        if not self._rows.active[row]:
            return
        self._rows.active[row] = False
        self._mask = None
        acc, (indices, values) = self._rows.account[row], self._rows.nb_counts[row]
        self._supplier_counts[self._rows.supplier[row]][acc] -= 1
        self._class_counts[acc] -= 1
        self._feature_counts[acc, indices] -= values
        self._log_theta = None

    # --- predicting ----------------------------------------------------------------------------

    def _nb_log_probs(self, counts: sparse.csr_matrix) -> np.ndarray:
        if self._log_theta is None:
            smoothed = np.maximum(self._feature_counts, 0) + self.config.nb_alpha
            log_theta = np.log(smoothed) - np.log(smoothed.sum(1, keepdims=True))
            # features x classes, C-contiguous: sparse @ dense would copy a transposed view
            self._log_theta = np.ascontiguousarray(log_theta.T)
        n_grams = np.asarray(counts.sum(1)).ravel() + 1.0
        jll = np.asarray(counts @ self._log_theta) / n_grams[:, None] * self.config.nb_sharpness
        return np.asarray(jll - _logsumexp(jll))

    def _predict(self, invoice: ReceivedInvoice) -> _Raw:
        cfg, n_classes = self.config, len(self.accounts)
        texts = [ln.text for ln in invoice.lines]
        supplier = str(invoice.emisor_rut)
        scores = np.zeros((len(texts), n_classes))
        neighbours: list[list[tuple[int, float]]] = [[] for _ in texts]
        total = self._class_counts.sum()
        company_prior = (self._class_counts + 1) / (total + n_classes)
        if len(self._vectors):
            sims = self._vectors.similarities(self.encoder.encode(texts))
            sims *= self._active_mask()
            rows_supplier = self._by_supplier.get(supplier, [])
            weight = np.ones(sims.shape[1])
            weight[rows_supplier] = cfg.same_supplier_boost
            labels = self._labels()
            k = min(cfg.k, sims.shape[1])
            for i in range(len(texts)):
                top = np.argpartition(-sims[i], k - 1)[:k]
                top = top[sims[i, top] > 0.05]
                votes = np.bincount(labels[top], sims[i, top] ** 2 * weight[top], n_classes)
                p_knn = (votes + 0.3 * company_prior) / (votes.sum() + 0.3)
                scores[i] += cfg.knn_weight * np.log(p_knn)
                order = top[np.argsort(-sims[i, top], kind="stable")]
                neighbours[i] = [(int(r), float(sims[i, r])) for r in order[:3]]
                rule = self._precedent(sims[i], self._precedents.get(supplier, []))
                if rule is not None:
                    p_rule = np.full(n_classes, 0.15 / max(n_classes - 1, 1))
                    p_rule[self._rows.account[rule]] = 0.85
                    scores[i] += cfg.precedent_weight * np.log(p_rule)
                    if rule not in dict(neighbours[i]):
                        neighbours[i] = [(rule, float(sims[i, rule])), *neighbours[i][:2]]
            scores += cfg.nb_weight * self._nb_log_probs(self._counter.transform(texts).tocsr())
        counts = self._supplier_counts.get(supplier)
        if counts is not None and counts.sum() > 0:
            p_sup = (np.maximum(counts, 0) + 2 * company_prior) / (counts.sum() + 2)
            scores += cfg.supplier_weight * np.log(p_sup)
        else:
            scores += cfg.supplier_weight * np.log(company_prior)
        probs = np.exp(scores - _logsumexp(scores))
        amounts = np.asarray([ln.amount for ln in invoice.lines], dtype=float)
        return _Raw(probs, amounts, neighbours, counts)

    def _precedent(self, sims: np.ndarray, rows: list[int]) -> int | None:
        """The most similar active correction among this supplier's, if similar enough."""
        best, best_sim = None, self.config.precedent_similarity
        for row in rows:
            if self._rows.active[row] and sims[row] >= best_sim:
                best, best_sim = row, float(sims[row])
        return best

    def classify(self, invoice: ReceivedInvoice) -> InvoiceClassification:
        """Suggest the account of the invoice (the one carrying most of its amount) and of each
        line, with calibrated confidence and the past decisions that support it."""
        check_scope(self.context, invoice)
        reason = LLM_NOT_WIRED if self.llm is not None else None
        if not invoice.lines:  # nothing to read: abstain rather than guess from the supplier
            empty = UseCaseResult[str].decide([], self.config.threshold, [], reason)
            return InvoiceClassification(invoice_key=invoice.key, invoice=empty, lines=[])
        raw = self._predict(invoice)
        supplier_evidence = self._supplier_evidence(invoice, raw.supplier_counts)
        caps = [self._novelty_cap(raw, i) for i in range(len(invoice.lines))]
        lines = []
        for i, line in enumerate(invoice.lines):
            evidence = self._neighbour_evidence(raw.neighbours[i]) + supplier_evidence
            result = UseCaseResult[str].decide(
                self._candidates(raw.probs[i], self._line_calibrator, caps[i]),
                self.config.threshold,
                evidence,
                reason,
            )
            lines.append(LineClassification(line_no=line.line_no, result=result))
        main = int(np.argmax(raw.amounts)) if len(raw.amounts) else 0
        invoice_result = UseCaseResult[str].decide(
            self._candidates(raw.invoice_probs, self._invoice_calibrator, caps[main]),
            self.config.threshold,
            self._neighbour_evidence(raw.neighbours[main]) + supplier_evidence,
            reason,
        )
        return InvoiceClassification(invoice_key=invoice.key, invoice=invoice_result, lines=lines)

    def _novelty_cap(self, raw: _Raw, line: int) -> float:
        nearest = raw.neighbours[line][0][1] if raw.neighbours[line] else 0.0
        if nearest >= self.config.novelty_similarity:
            return 1.0
        known = raw.supplier_counts is not None and raw.supplier_counts.sum() > 0
        return self.config.novel_confidence_cap if known else self.config.novel_unknown_supplier_cap

    def _candidates(
        self, probs: np.ndarray, calibrator: PlattCalibrator, cap: float = 1.0
    ) -> list[Candidate[str]]:
        return calibrated_candidates(self.accounts, probs, calibrator, self.config.top, cap)

    def _neighbour_evidence(self, neighbours: Sequence[tuple[int, float]]) -> list[Evidence]:
        return [
            Evidence(
                # a correction is shown as such: it outranks routine decisions
                kind="correction" if self._rows.precedent[row] else "similar_decision",
                ref=self._rows.invoice_key[row],
                detail=f"{self._rows.text[row]!r} booked to "
                f"{self.accounts[self._rows.account[row]]}",
                score=round(sim, 4),
            )
            for row, sim in neighbours
        ]

    def _supplier_evidence(
        self, invoice: ReceivedInvoice, counts: np.ndarray | None
    ) -> list[Evidence]:
        if counts is None or counts.sum() <= 0:
            return [
                Evidence(
                    kind="supplier_prior",
                    ref=str(invoice.emisor_rut),
                    detail="no past decisions for this supplier",
                    score=0.0,
                )
            ]
        best = int(np.argmax(counts))
        share = float(counts[best] / counts.sum())
        return [
            Evidence(
                kind="supplier_prior",
                ref=str(invoice.emisor_rut),
                detail=f"{int(counts.sum())} past lines of {invoice.emisor_name}, "
                f"{share:.0%} booked to {self.accounts[best]}",
                score=round(share, 4),
            )
        ]


def _logsumexp(x: np.ndarray) -> np.ndarray:
    peak = x.max(axis=-1, keepdims=True)
    return np.asarray(peak + np.log(np.exp(x - peak).sum(axis=-1, keepdims=True)))

"""Project matching: which project (analytic account) a received invoice belongs to.

Evidence, strongest first, each a log-space score per project:

* references: an orden de compra (TpoDocRef 801) names a PO of one project; a guía de despacho
  (52) names a receipt, hence a PO, hence a project;
* the delivery address and comuna (Transporte/DirDest, CmnaDest) against each project's;
* what the invoice says about where it goes (descriptions, delivery address, RazonRef) against
  the project's name and client, and against the same text of past invoices booked to it
  (so aliases like "OBRA QUILIN" are learnt);
* the supplier's history across projects; projects not active on the invoice date are penalised.

Scores go through a softmax; the top-1 probability is Platt-calibrated on held-out history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from ai_service.context.models import (
    TPO_DOC_REF_GUIA_DESPACHO,
    TPO_DOC_REF_ORDEN_COMPRA,
    AccountingDecision,
    CompanyContext,
    ReceivedInvoice,
)
from ai_service.usecases.common import (
    LLM_NOT_WIRED,
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
    similarities,
)


@dataclass(frozen=True)
class MatcherConfig:
    threshold: float = 0.8
    top: int = 3
    po_weight: float = 5.0
    guia_weight: float = 4.0
    address_weight: float = 7.0
    address_floor: float = 0.35  # cosine below this says nothing about the address
    comuna_weight: float = 1.2
    text_weight: float = 5.0
    text_floor: float = 0.2
    knn_weight: float = 1.2
    knn_k: int = 10
    supplier_weight: float = 0.8
    inactive_penalty: float = 4.0
    calibration_share: float = 0.2


class ProjectMatch(BaseModel):
    invoice_key: str
    result: UseCaseResult[str]


def destination_text(invoice: ReceivedInvoice) -> str:
    """What an invoice says about where it goes, leaving out item names (the same cement goes to
    every site)."""
    parts = [ln.description for ln in invoice.lines if ln.description]
    parts += [r.razon_ref for r in invoice.references if r.razon_ref]
    if invoice.delivery_address:
        parts.append(invoice.delivery_address)
    return " ".join(parts)


class ProjectMatcher:
    """The local project-matching engine for one company. Like the classifier, keep one per
    company and feed it decisions with :meth:`learn`; not thread-safe while learning."""

    def __init__(
        self,
        context: CompanyContext,
        *,
        encoder: TextEncoder | None = None,
        config: MatcherConfig | None = None,
        llm: SupportsLLM | None = None,
    ) -> None:
        self.context, self.config, self.llm = context, config or MatcherConfig(), llm
        self.encoder: TextEncoder = encoder or CharNgramEncoder()
        self.projects = list(context.projects)
        self.codes = [p.code for p in self.projects]
        self.index = {code: i for i, code in enumerate(self.codes)}
        self._project_text = self.encoder.encode(
            [" ".join(filter(None, (p.name, p.client, p.address))) for p in self.projects]
        )
        self._project_address = self.encoder.encode([p.address or p.name for p in self.projects])
        self._comunas = [normalize(p.comuna or "") for p in self.projects]
        self._memory = RowStore()
        self._memory_project: list[int] = []
        self._memory_key: list[str] = []
        self._memory_row: dict[str, int] = {}
        self._supplier_counts: dict[str, np.ndarray] = {}
        self._project_counts = np.zeros(len(self.projects))
        self._calibrator = PlattCalibrator()
        self._fit(context)

    def _fit(self, context: CompanyContext) -> None:
        history = [(i, d) for i, d in context.decided_invoices() if d.project_code in self.index]
        held = int(len(history) * self.config.calibration_share)
        learnt, held_out = history[: len(history) - held], history[len(history) - held :]
        for invoice, _ in history:
            check_scope(self.context, invoice)
        # encode the whole history in one call: per-invoice calls cost a millisecond each
        texts = [destination_text(invoice) or "-" for invoice, _ in history]
        rows: Any = self.encoder.encode(texts) if texts else None
        for j, (invoice, decision) in enumerate(learnt):
            self._learn(invoice, decision, rows[j : j + 1])
        raw, ok = [], []
        for invoice, decision in held_out:
            probs, _ = self._score(invoice)
            raw.append(float(probs.max()))
            ok.append(self.codes[int(probs.argmax())] == decision.project_code)
        self._calibrator.fit(raw, ok)
        for j, (invoice, decision) in enumerate(held_out, start=len(learnt)):
            self._learn(invoice, decision, rows[j : j + 1])

    def learn(self, invoice: ReceivedInvoice, decision: AccountingDecision) -> None:
        """Take in one decision now; a new decision on the same invoice replaces the old one."""
        check_scope(self.context, invoice)
        self._learn(invoice, decision, None)

    def _learn(self, invoice: ReceivedInvoice, decision: AccountingDecision, row: Any) -> None:
        """``row``: the invoice's encoded destination text, if already encoded."""
        if decision.project_code not in self.index:
            return
        project = self.index[decision.project_code]
        supplier = str(invoice.emisor_rut)
        counts = self._supplier_counts.setdefault(supplier, np.zeros(len(self.projects)))
        if decision.invoice_key in self._memory_row:
            at = self._memory_row[decision.invoice_key]
            old = self._memory_project[at]
            counts[old] -= 1
            self._project_counts[old] -= 1
            self._memory_project[at] = project
        else:
            self._memory_row[decision.invoice_key] = len(self._memory_project)
            if row is None:
                row = self.encoder.encode([destination_text(invoice) or "-"])
            self._memory.append(row)
            self._memory_project.append(project)
            self._memory_key.append(decision.invoice_key)
        counts[project] += 1
        self._project_counts[project] += 1

    # --- scoring -------------------------------------------------------------------------------

    def _score(self, invoice: ReceivedInvoice) -> tuple[np.ndarray, list[Evidence]]:
        cfg, n = self.config, len(self.projects)
        score = np.zeros(n)
        evidence: list[Evidence] = []
        supplier = str(invoice.emisor_rut)
        for ref in invoice.references_of(TPO_DOC_REF_ORDEN_COMPRA):
            po = self.context.po_by_number.get(ref.folio_ref.strip())
            if po is not None and po.project_code in self.index:
                same = str(po.supplier_rut) == supplier
                weight = cfg.po_weight if same else cfg.po_weight / 2
                score[self.index[po.project_code]] += weight
                evidence.append(
                    Evidence(
                        kind="purchase_order",
                        ref=po.number,
                        detail=f"OC {po.number} is for project {po.project_code}"
                        + ("" if same else " (issued to another supplier)"),
                        score=weight,
                    )
                )
        for ref in invoice.references_of(TPO_DOC_REF_GUIA_DESPACHO):
            if not ref.folio_ref.strip().isdigit():
                continue
            for receipt in self.context.receipts_by_guia.get((supplier, int(ref.folio_ref)), []):
                po = self.context.po_by_number.get(receipt.po_number)
                if po is not None and po.project_code in self.index:
                    score[self.index[po.project_code]] += cfg.guia_weight
                    evidence.append(
                        Evidence(
                            kind="guia_despacho",
                            ref=ref.folio_ref,
                            detail=f"guía {ref.folio_ref} was received as {receipt.number} "
                            f"against OC {po.number} of project {po.project_code}",
                            score=cfg.guia_weight,
                        )
                    )
        # the address and the destination text in one encoder call (each costs a millisecond)
        text = destination_text(invoice)
        queries = [t for t in (invoice.delivery_address, text) if t]
        encoded: Any = self.encoder.encode(queries) if queries else None
        if invoice.delivery_address:
            sims = similarities(self._project_address, encoded[0:1])[0]
            gain = cfg.address_weight * np.maximum(sims - cfg.address_floor, 0)
            score += gain
            best = int(np.argmax(sims))
            if gain[best] > 0:
                evidence.append(
                    Evidence(
                        kind="delivery_address",
                        ref=self.codes[best],
                        detail=f"delivered to {invoice.delivery_address!r}, "
                        f"project address {self.projects[best].address!r}",
                        score=round(float(sims[best]), 4),
                    )
                )
        if invoice.delivery_comuna:
            comuna = normalize(invoice.delivery_comuna)
            match = np.asarray([c == comuna for c in self._comunas], dtype=float)
            score += cfg.comuna_weight * match
            if match.any():
                evidence.append(
                    Evidence(
                        kind="delivery_comuna",
                        ref=invoice.delivery_comuna,
                        detail=f"comuna {invoice.delivery_comuna} is that of "
                        + ", ".join(self.codes[i] for i in np.flatnonzero(match)),
                        score=cfg.comuna_weight,
                    )
                )
        if text:
            query = encoded[len(queries) - 1 :]
            sims = similarities(self._project_text, query)[0]
            gain = cfg.text_weight * np.maximum(sims - cfg.text_floor, 0)
            score += gain
            best = int(np.argmax(sims))
            if gain[best] > 0:
                evidence.append(
                    Evidence(
                        kind="project_text",
                        ref=self.codes[best],
                        detail=f"{text!r} resembles project {self.projects[best].name!r}",
                        score=round(float(sims[best]), 4),
                    )
                )
            score += self._knn(query, evidence)
        counts = self._supplier_counts.get(supplier)
        prior = (self._project_counts + 1) / (self._project_counts.sum() + n)
        if counts is not None and counts.sum() > 0:
            p_sup = (np.maximum(counts, 0) + prior) / (counts.sum() + 1)
            score += cfg.supplier_weight * np.log(p_sup)
            best = int(np.argmax(counts))
            evidence.append(
                Evidence(
                    kind="supplier_history",
                    ref=supplier,
                    detail=f"{int(counts.sum())} past invoices of {invoice.emisor_name}, "
                    f"{counts[best] / counts.sum():.0%} to {self.codes[best]}",
                    score=round(float(counts[best] / counts.sum()), 4),
                )
            )
        else:
            score += cfg.supplier_weight * np.log(prior)
        inactive = np.asarray([not p.active_on(invoice.fecha) for p in self.projects], dtype=float)
        score -= cfg.inactive_penalty * inactive
        probs = np.exp(score - score.max())
        return probs / probs.sum(), evidence

    def _knn(self, query: object, evidence: list[Evidence]) -> np.ndarray:
        n = len(self.projects)
        if not len(self._memory):
            return np.zeros(n)
        sims = self._memory.similarities(query)[0]
        k = min(self.config.knn_k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[sims[top] > 0.3]
        if not len(top):
            return np.zeros(n)
        labels = np.asarray(self._memory_project)[top]
        votes = np.bincount(labels, sims[top] ** 2, n)
        prior = (self._project_counts + 1) / (self._project_counts.sum() + n)
        nearest = top[np.argsort(-sims[top], kind="stable")][:2]
        for row in nearest:
            evidence.append(
                Evidence(
                    kind="similar_invoice",
                    ref=self._memory_key[row],
                    detail=f"a past invoice with similar destination went to "
                    f"{self.codes[self._memory_project[row]]}",
                    score=round(float(sims[row]), 4),
                )
            )
        return np.asarray(
            self.config.knn_weight * np.log((votes + 0.3 * prior) / (votes.sum() + 0.3))
        )

    def match(self, invoice: ReceivedInvoice) -> ProjectMatch:
        """Rank the company's projects for this invoice (top-k, calibrated top-1)."""
        check_scope(self.context, invoice)
        probs, evidence = self._score(invoice)
        candidates = calibrated_candidates(self.codes, probs, self._calibrator, self.config.top)
        reason = LLM_NOT_WIRED if self.llm is not None else None
        result = UseCaseResult[str].decide(candidates, self.config.threshold, evidence, reason)
        return ProjectMatch(invoice_key=invoice.key, result=result)

"""The local engines of each company, kept warm and taught new decisions in place.

Building a classifier learns the whole history (seconds for thousands of decisions); learning
one decision takes a millisecond. So each process keeps one set of engines per company and,
when the company's context version moves, fetches only the items written since: new
decisions (and the invoices they book) are learnt in place, so a correction changes the next
answer at once, in every process, without a retrain job. Anything else that changed
(accounts, projects, POs, a deletion) rebuilds the engines from the reloaded context.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ai_service.context.models import AccountingDecision, CompanyContext, ReceivedInvoice
from ai_service.repositories import context as repo
from ai_service.repositories.companies import Company

#: Kinds a version change may bring without forcing a rebuild.
_LEARNABLE = frozenset({"decision", "invoice"})


@dataclass
class CompanyEngines:
    company_id: str
    version: int
    context: CompanyContext
    lock: threading.Lock = field(default_factory=threading.Lock)
    _built: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """Engines are built on first use (a company may never ask for some of them)."""
        with self.lock:
            if name not in self._built:
                self._built[name] = _BUILDERS[name](self.context)
            return self._built[name]

    def learn(
        self,
        invoices: list[ReceivedInvoice],
        decisions: list[AccountingDecision],
        version: int,
    ) -> None:
        """Take new invoices and decisions into the context, and teach the engines built so
        far each decision whose invoice is known."""
        new_invoices = {inv.key: inv for inv in invoices}
        new_decisions = {d.invoice_key: d for d in decisions}
        with self.lock:
            context = self.context.replaced(
                invoices=[i for i in self.context.invoices if i.key not in new_invoices]
                + list(new_invoices.values()),
                decisions=[d for d in self.context.decisions if d.invoice_key not in new_decisions]
                + list(new_decisions.values()),
            )
            known = context.invoice_by_key
            pairs = [(known[d.invoice_key], d) for d in decisions if d.invoice_key in known]
            classifier, matcher = self._built.get("classifier"), self._built.get("matcher")
            for invoice, decision in pairs:
                # a decision that arrives after the engine was built is the accountant's latest
                # word on that supplier's lines: a precedent, not one vote among many
                if classifier is not None:
                    classifier.correct(invoice, decision)
                if matcher is not None:
                    matcher.learn(invoice, decision)
            # history-indexed engines are cheap: rebuild them from the new context when asked
            for name in ("anomalies", "reconciler", "retriever"):
                self._built.pop(name, None)
            self.context = context
            self.version = version


def _classifier(context: CompanyContext) -> Any:
    from ai_service.usecases.classification import ExpenseClassifier

    return ExpenseClassifier(context)


def _matcher(context: CompanyContext) -> Any:
    from ai_service.usecases.project_matching import ProjectMatcher

    return ProjectMatcher(context)


def _anomalies(context: CompanyContext) -> Any:
    from ai_service.usecases.anomalies import AnomalyDetector

    return AnomalyDetector(context)


def _reconciler(context: CompanyContext) -> Any:
    from ai_service.usecases.po_reconciliation import PurchaseOrderReconciler

    return PurchaseOrderReconciler(context)


def _retriever(context: CompanyContext) -> Any:
    from ai_service.usecases.retrieval import build_retriever

    return build_retriever(context)


_BUILDERS = {
    "classifier": _classifier,
    "matcher": _matcher,
    "anomalies": _anomalies,
    "reconciler": _reconciler,
    "retriever": _retriever,
}


class EngineCache:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._entries: dict[str, CompanyEngines] = {}
        self._lock = threading.Lock()

    def get(self, company: Company) -> CompanyEngines:
        version = repo.version(self._engine, company.id)
        entry = self._entries.get(company.id)
        if entry is not None and entry.version == version:
            return entry
        with self._lock:
            entry = self._entries.get(company.id)
            if entry is not None and entry.version == version:
                return entry
            if entry is not None and self._catch_up(entry, version):
                return entry
            context = repo.load(self._engine, company.id, company.rut, company.name)
            entry = CompanyEngines(company.id, version, context)
            self._entries[company.id] = entry
            return entry

    def _catch_up(self, entry: CompanyEngines, version: int) -> bool:
        """Learn what changed since ``entry.version`` in place; False when a rebuild is due."""
        changed = repo.changed_since(self._engine, entry.company_id, entry.version)
        if not changed or any(kind not in _LEARNABLE for kind, _ in changed):
            return False
        invoices = [ReceivedInvoice.model_validate(d) for k, d in changed if k == "invoice"]
        decisions = [AccountingDecision.model_validate(d) for k, d in changed if k == "decision"]
        decided = {d.invoice_key for d in decisions}
        if any(inv.key not in decided for inv in invoices):
            return False  # invoices without decisions change the history: rebuild
        entry.learn(invoices, decisions, version)
        return True

"""Suggestions for the document on screen in Odoo, from the engines' results.

For a received invoice: the likely account and project, a missing purchase-order reference,
a possible duplicate and any other anomaly. For a document being issued: its validation
findings. Each suggestion says what to do, how sure the engine is and why; abstaining
engines contribute nothing rather than a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ai_service.context.models import ReceivedInvoice

_DUPLICATES = {"exact_duplicate", "fuzzy_duplicate"}


@dataclass
class Suggestion:
    kind: str  # account, project, missing_reference, possible_duplicate, anomaly, validation
    message: str
    confidence: float
    engine: str
    value: Any = None
    evidence: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def for_received(analysis: dict[str, Any], invoice: ReceivedInvoice) -> list[Suggestion]:
    """``analysis`` is :func:`ai_service.usecases.analyze.analyze`'s output for ``invoice``."""
    out: list[Suggestion] = []
    accounts = analysis["classification"].get("invoice", {})
    if accounts.get("decision") and not accounts.get("abstained"):
        out.append(
            Suggestion(
                "account",
                f"Contabilizar en la cuenta {accounts['decision']}",
                accounts["confidence"],
                accounts["engine"],
                accounts["decision"],
                accounts["evidence"][:3],
            )
        )
    project = analysis["project"].get("result", {})
    if project.get("decision") and not project.get("abstained"):
        out.append(
            Suggestion(
                "project",
                f"Asignar al proyecto {project['decision']}",
                project["confidence"],
                project["engine"],
                project["decision"],
                project["evidence"][:3],
            )
        )
    po = analysis["purchase_order"]
    reconciliation = po.get("decision") or {}
    if reconciliation.get("outcome") == "no_po" and not invoice.references_of("801"):
        out.append(
            Suggestion(
                "missing_reference",
                "La factura no referencia una orden de compra (Referencia TpoDocRef 801): "
                "pida al proveedor el número de OC o vincúlela a mano",
                po["confidence"],
                po["engine"],
                None,
                po["evidence"][:3],
            )
        )
    elif reconciliation.get("outcome") not in (None, "matched_exact", "no_po"):
        out.append(
            Suggestion(
                "purchase_order",
                reconciliation.get("message") or reconciliation["outcome"],
                po["confidence"],
                po["engine"],
                reconciliation.get("outcome"),
                reconciliation.get("lines", [])[:5],
            )
        )
    anomalies = analysis["anomalies"]
    for alert in (anomalies.get("decision") or {}).get("alerts", []):
        duplicate = alert["type"] in _DUPLICATES
        out.append(
            Suggestion(
                "possible_duplicate" if duplicate else "anomaly",
                alert["message"],
                alert["confidence"],
                anomalies["engine"],
                alert.get("duplicate_of") if duplicate else alert["type"],
                alert.get("evidence", [])[:3],
            )
        )
    return out


def for_issuing(validation: Any) -> list[Suggestion]:
    """Suggestions from a :class:`ai_service.usecases.validation.ValidationResult`."""
    return [
        Suggestion(
            "validation",
            f"{f.field}: {f.message}" + (f" — {f.suggested_fix}" if f.suggested_fix else ""),
            1.0,
            validation.engine,
            {"rule_id": f.rule_id, "severity": str(f.severity), "field": f.field},
        )
        for f in validation.findings
    ]

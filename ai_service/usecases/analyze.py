"""One call for a received document: classification, project, purchase order and anomalies.

Each section is its engine's full result (decision, calibrated confidence, evidence, engine,
abstention); a section that cannot run says why instead of failing the others.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ai_service.context.models import ReceivedInvoice

SECTIONS = ("classification", "project", "purchase_order", "anomalies")


def _section(run: Any) -> dict[str, Any]:
    try:
        result = run()
    except Exception as exc:  # one engine's defect must not hide the other answers
        return {"error": {"code": type(exc).__name__, "message": str(exc)}}
    dumped: dict[str, Any] = result.model_dump(mode="json")
    return dumped


def analyze(
    engines: Any, invoice: ReceivedInvoice, *, received_on: date | None = None
) -> dict[str, Any]:
    """``engines`` is an :class:`ai_service.services.engines.CompanyEngines`."""
    from ai_service.usecases.common import check_scope

    check_scope(engines.context, invoice)  # a wrong company is the caller's error, not a section's
    return {
        "document": {
            "key": invoice.key,
            "emisor_rut": str(invoice.emisor_rut),
            "tipo_dte": invoice.tipo_dte,
            "folio": invoice.folio,
            "fecha": invoice.fecha.isoformat(),
            "total": invoice.total,
        },
        "classification": _section(lambda: engines.get("classifier").classify(invoice)),
        "project": _section(lambda: engines.get("matcher").match(invoice)),
        "purchase_order": _section(lambda: engines.get("reconciler").reconcile(invoice)),
        "anomalies": _section(
            lambda: engines.get("anomalies").check(invoice, received_on=received_on)
        ),
    }

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
    engines: Any,
    invoice: ReceivedInvoice,
    *,
    received_on: date | None = None,
    llm: Any = None,
    prompts: Any = None,
    company_id: str = "",
) -> dict[str, Any]:
    """``engines`` is an :class:`ai_service.services.engines.CompanyEngines`; with ``llm`` (and
    ``prompts``) abstentions of the classifier and the matcher get a checked second opinion."""
    from ai_service.usecases.common import check_scope
    from ai_service.usecases.llm_assist import assist_classification, assist_project

    check_scope(engines.context, invoice)  # a wrong company is the caller's error, not a section's
    out = {
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
    if llm is not None and prompts is not None:
        assist = {"llm": llm, "prompts": prompts, "company_id": company_id}
        if "error" not in out["classification"]:
            out["classification"] = assist_classification(
                out["classification"], invoice, engines.context, **assist
            )
        if "error" not in out["project"]:
            out["project"] = assist_project(out["project"], invoice, engines.context, **assist)
    return out

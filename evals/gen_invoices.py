"""Cases of the invoice tasks (classification, project matching, PO reconciliation, anomaly
detection) from the generated companies' later documents, plus hand-written hard cases.

A hard case (``evals/datasets/hard/<task>.jsonl``) names a real document of a company (the
``nth`` later, or earlier, document of a supplier) and edits it the way real invoices go wrong:
a retyped or abbreviated item name, a missing reference, the delivery address written another
way, a partial delivery, a near-duplicate of a document already booked. The truth is the base
document's label unless the hard case states it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ai_service.context.models import ReceivedInvoice
from ai_service.synth import AnomalyKind, SyntheticInvoice
from evals import companies
from evals.cases import Case

INVOICE_TASKS = ("classification", "project_matching", "po_reconciliation", "anomalies")
#: classification and project matching keep a share of the later documents (stateless engines);
#: PO reconciliation and anomalies see the whole stream (their engines learn each document)
KEEP: dict[str, Callable[[int], bool]] = {
    "classification": lambda n: n % 2 == 0,
    "project_matching": lambda n: n % 3 != 0,
}


def invoice_json(invoice: ReceivedInvoice) -> dict[str, Any]:
    data: dict[str, Any] = invoice.model_dump(mode="json", exclude_defaults=True)
    return data


def _every(n: int) -> bool:
    return True


def expected_for(task: str, doc: SyntheticInvoice) -> dict[str, Any]:
    label = doc.label
    if task == "classification":
        return {
            "account_code": label.account_code,
            "lines": {str(ln.line_no): ln.account_code for ln in label.lines},
        }
    if task == "project_matching":
        return {"project_code": label.project_code}
    if task == "po_reconciliation":
        links = {
            str(ln.line_no): f"{ln.po_number}:{ln.po_line_no}"
            for ln in label.lines
            if ln.po_number is not None
        }
        return {
            "purchase_orders": sorted({v.split(":")[0] for v in links.values()}),
            "lines": links,
            "over_invoiced": AnomalyKind.QTY_OVER_PO in doc.anomaly_kinds,
        }
    if task == "anomalies":
        return {"kinds": sorted(k.value for k in doc.anomaly_kinds)}
    raise ValueError(task)


def _case(task: str, kind: str, doc: SyntheticInvoice, split: str = "test") -> Case:
    data: dict[str, Any] = {"invoice": invoice_json(doc.invoice)}
    if task in ("anomalies", "po_reconciliation"):
        data["received_on"] = doc.received_at.isoformat()
    return Case(
        id=f"{task}:{doc.id}",
        input=data,
        expected=expected_for(task, doc),
        meta={"company": kind, "split": split, "tags": []},
    )


def generated_cases(task: str) -> Iterator[Case]:
    keep = KEEP.get(task, _every)
    for kind in companies.KINDS:
        for n, doc in enumerate(companies.future_documents(kind)):
            if keep(n):
                yield _case(task, kind, doc)


# ---------------------------------------------------------------------------- hard cases


def load_specs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("//"):
            out.append(json.loads(line))
    return out


def _base(spec: dict[str, Any]) -> SyntheticInvoice:
    kind, base = spec["company"], spec["base"]
    pool: list[SyntheticInvoice]
    if base.get("from") == "past":
        cut = int(len(companies.company(kind).documents) * companies.SPLIT)
        pool = list(companies.company(kind).documents[:cut])
    else:
        pool = list(companies.future_documents(kind))
    wanted = base["supplier"].lower()
    matches = [
        d
        for d in pool
        if wanted in d.invoice.emisor_name.lower()
        and not d.label.anomalies
        and d.invoice.tipo_dte in (33, 34)
        and (base.get("with_po") is None or bool(d.invoice.references) == base["with_po"])
        and base.get("line_contains", "").lower() in d.invoice.lines[0].name.lower()
    ]
    if len(matches) <= base.get("nth", 0):
        raise ValueError(f"hard case {spec['id']}: no document #{base.get('nth', 0)} of {wanted}")
    chosen: SyntheticInvoice = matches[base.get("nth", 0)]
    return chosen


def _money(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def retype_address(address: str) -> str:
    """The same address as another clerk types it: upper case, no accents, "AVDA", a note."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", address.upper())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = folded.replace("AVENIDA ", "AVDA ").replace("AV. ", "AVDA ").replace("AVDA. ", "AVDA ")
    return f"{folded} - ENTREGA EN PORTERIA"


def apply_edit(invoice: ReceivedInvoice, edit: dict[str, Any]) -> ReceivedInvoice:
    data = invoice.model_dump(mode="python")
    lines = data["lines"]
    for no, name in edit.get("line_names", {}).items():
        lines[int(no) - 1]["name"] = name
    for no, text in edit.get("descriptions", {}).items():
        lines[int(no) - 1]["description"] = text
    for no, factor in edit.get("quantity_factor", {}).items():
        line = lines[int(no) - 1]
        qty = (Decimal(line["quantity"] or 1) * Decimal(str(factor))).quantize(Decimal(1))
        line["quantity"] = max(qty, Decimal(1))
        line["amount"] = _money(line["quantity"] * Decimal(line["unit_price"] or 0))
    if edit.get("drop_references"):
        data["references"] = []
    if edit.get("address_style") == "retyped" and data["delivery_address"]:
        data["delivery_address"] = retype_address(data["delivery_address"])
    if "delivery_address" in edit:
        data["delivery_address"] = edit["delivery_address"]
    if "emisor_name" in edit:
        data["emisor_name"] = edit["emisor_name"]
    if "folio" in edit:
        data["folio"] = edit["folio"]
    if "folio_delta" in edit:
        data["folio"] = data["folio"] + edit["folio_delta"]
    if "days_later" in edit:
        data["fecha"] = data["fecha"] + timedelta(days=edit["days_later"])
    if "quantity_factor" in edit:
        amounts = sum(ln["amount"] for ln in lines)
        if data["neto"]:
            data["neto"] = amounts - data["exento"]
            data["iva"] = _money(Decimal(data["neto"]) * Decimal("0.19"))
        else:
            data["exento"] = amounts
        data["total"] = data["neto"] + data["iva"] + data["exento"]
    return ReceivedInvoice.model_validate(data)


def hard_cases(task: str, specs_dir: Path) -> Iterator[Case]:
    for spec in load_specs(specs_dir / f"{task}.jsonl"):
        doc = _base(spec)
        invoice = apply_edit(doc.invoice, spec.get("edit", {}))
        expected = expected_for(task, doc)
        if task == "anomalies":
            expected = {"kinds": []}
        expected.update(spec.get("expected", {}))
        data: dict[str, Any] = {"invoice": invoice_json(invoice)}
        if task in ("anomalies", "po_reconciliation"):
            received = date.fromisoformat(spec.get("received_on", doc.received_at.isoformat()))
            data["received_on"] = max(received, invoice.fecha).isoformat()
        yield Case(
            id=spec["id"],
            input=data,
            expected=expected,
            meta={"company": spec["company"], "split": "hard", "tags": spec.get("tags", [])},
        )

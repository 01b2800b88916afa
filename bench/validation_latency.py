"""Latency of validation before sending (``validate_document``): p50/p95 per call for typical
documents with a full issuing context (CAFs, 5.000 issued documents), next to
``parse_documento`` alone measured in the same run (the floor any validation pays). Goal: p95 at
most 25 ms.

Run: ``.venv/bin/python bench/validation_latency.py [--calls 500]``.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from ai_service.usecases.validation import (
    CafSummary,
    InMemoryHistory,
    IssuedDocument,
    IssuingContext,
    validate_document,
)
from dte_core.models import parse_documento
from dte_core.rut import check_digit

EMISOR, RECEPTOR = "76086428-5", "77777777-7"
TODAY = date.today()


def factura(tipo: int = 33, lines: int = 3) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Encabezado": {
            "IdDoc": {"TipoDTE": tipo, "FchEmis": TODAY.isoformat()},
            "Emisor": {
                "RUTEmisor": EMISOR,
                "RznSoc": "Empresa Demo SpA",
                "GiroEmis": "Servicios informaticos",
                "Acteco": [620200],
                "DirOrigen": "Av. Apoquindo 4501",
                "CmnaOrigen": "Las Condes",
            },
            "Receptor": {
                "RUTRecep": RECEPTOR,
                "RznSocRecep": "Cliente Ltda",
                "GiroRecep": "Comercio",
                "DirRecep": "San Diego 2222",
                "CmnaRecep": "Santiago",
            },
        },
        "Detalle": [
            {"NmbItem": f"Item {i}", "QtyItem": 2, "PrcItem": 4500 + i} for i in range(lines)
        ],
    }
    if tipo == 61:
        doc["Referencia"] = [
            {"TpoDocRef": "33", "FolioRef": "1", "FchRef": TODAY.isoformat(), "CodRef": 3}
        ]
    return doc


def percentiles(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    other = f"76543210-{check_digit(76543210)}"
    history = InMemoryHistory(
        IssuedDocument(33, i, RECEPTOR if i % 2 else other, TODAY - timedelta(days=i % 90), i)
        for i in range(1, 5001)
    )
    cafs = [
        CafSummary(t, 1, 10_000, TODAY - timedelta(days=10), remaining=5000, rut_emisor=EMISOR)
        for t in (33, 34, 52, 56, 61)
    ]
    ctx = IssuingContext(company_rut=EMISOR, cafs=cafs, history=history, today=TODAY)
    broken = factura()
    broken["Encabezado"]["Receptor"].update(RUTRecep="77777777-8", CmnaRecep="Providenca")
    broken["Detalle"][0]["MontoItem"] = 1
    cases = {
        "factura 33, 3 lines, valid": factura(),
        "factura 33, 3 lines, 3 errors": broken,
        "factura 33, 60 lines": factura(lines=60),
        "nota 61 with history": factura(61),
    }
    print(f"{'document':32s} {'validate p50':>12s} {'p95':>8s} {'parse p50':>10s} {'ratio':>6s}")
    for name, doc in cases.items():
        p50, p95 = percentiles(lambda d=doc: validate_document(copy.deepcopy(d), ctx), args.calls)
        base, _ = percentiles(lambda d=doc: copy.deepcopy(d), args.calls)
        parse50, _ = percentiles(lambda d=doc: _parse(copy.deepcopy(d)), args.calls)
        p50, p95, parse50 = p50 - base, p95 - base, parse50 - base
        ratio = p50 / parse50 if parse50 > 0 else float("nan")
        print(f"{name:32s} {p50:10.2f}ms {p95:6.2f}ms {parse50:8.2f}ms {ratio:5.1f}x")


def _parse(doc: dict[str, Any]) -> object:
    try:
        return parse_documento(doc)
    except Exception as exc:  # the broken document is rejected: that is what is timed
        return exc


if __name__ == "__main__":
    main()

"""Latency of the anomaly and PO-reconciliation engines per document against a history of a few
thousand received invoices, next to one plain linear scan of that history (what an unindexed
duplicate check would cost per call), measured in the same run.

Run: ``.venv/bin/python bench/anomaly_po_latency.py --invoices 4000``. Goal: p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ai_service.synth import generate_company
from ai_service.usecases.anomalies import AnomalyDetector
from ai_service.usecases.po_reconciliation import PurchaseOrderReconciler


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=4000)
    parser.add_argument("--kind", default="construction")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    company = generate_company(args.kind, args.seed, n_invoices=args.invoices, months=36)
    context, future = company.split(0.9)
    print(f"history: {len(context.invoices)} invoices, {len(context.purchase_orders)} POs")

    started = time.perf_counter()
    detector = AnomalyDetector(context)
    reconciler = PurchaseOrderReconciler(context)
    print(f"index build (both engines): {(time.perf_counter() - started) * 1000:.0f} ms")

    anomaly_ms, po_ms, scan_ms = [], [], []
    for doc in future:
        t0 = time.perf_counter()
        detector.check(doc.invoice, received_on=doc.received_at)
        t1 = time.perf_counter()
        reconciler.reconcile(doc.invoice)
        t2 = time.perf_counter()
        key, total = doc.invoice.key, doc.invoice.total
        _ = [inv for inv in context.invoices if inv.key == key or inv.total == total]
        t3 = time.perf_counter()
        anomaly_ms.append((t1 - t0) * 1000)
        po_ms.append((t2 - t1) * 1000)
        scan_ms.append((t3 - t2) * 1000)
        if doc.label.decided:
            detector.record(doc.invoice)
            reconciler.record(doc.invoice)

    scan = statistics.median(scan_ms)
    for name, values in (("anomalies", anomaly_ms), ("po reconciliation", po_ms)):
        print(
            f"{name:18s} n={len(values)} p50={statistics.median(values):.2f} ms "
            f"p95={percentile(values, 0.95):.2f} ms max={max(values):.2f} ms "
            f"(p50 = {statistics.median(values) / scan:.3f}x one linear scan of the history)"
        )
    print(f"one linear scan of the history: p50={scan:.2f} ms")


if __name__ == "__main__":
    main()

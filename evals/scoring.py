"""Task-level scoring built from :mod:`evals.scorers`: what each task reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals import scorers
from evals.cases import Case
from evals.tasks import Prediction


def labelled(
    cases: Sequence[Case],
    predictions: Sequence[Prediction],
    expected: Sequence[Any],
    *,
    threshold: float | None = None,
    k: int = 3,
) -> dict[str, Any]:
    """Single-label tasks: accuracy, macro-F1 and its per-class table, confusion matrix, top-k,
    precision/recall at the abstention threshold, ECE and the reliability diagram."""
    best = [p.ranked[0] if p.ranked else p.label for p in predictions]
    decided = [p.label for p in predictions]
    metrics: dict[str, Any] = {
        "n": len(cases),
        "accuracy": round(scorers.accuracy(best, expected), 4),
        "macro_f1": round(scorers.macro_f1(best, expected), 4),
        f"top_{k}": round(
            scorers.top_k([p.ranked or [p.label] for p in predictions], expected, k), 4
        ),
    }
    out: dict[str, Any] = {
        "metrics": metrics,
        "per_class": scorers.per_class(best, expected),
        "confusion": scorers.confusion(best, expected),
        # per case, moved into the cases by the runner
        "expected_labels": [_plain(e) for e in expected],
        "scored_labels": [_plain(b) for b in best],
    }
    confidence = [p.confidence for p in predictions]
    if all(c is not None for c in confidence):
        conf = [float(c) for c in confidence if c is not None]
        correct = [b == e for b, e in zip(best, expected, strict=True)]
        metrics["ece"] = scorers.expected_calibration_error(conf, correct)
        out["reliability"] = scorers.reliability(conf, correct)
        if threshold is not None:
            at = scorers.abstention(best, conf, expected, threshold)
            metrics["coverage"] = at["coverage"]
            metrics["precision_at_threshold"] = at["precision"]
            metrics["recall_at_threshold"] = at["recall"]
            metrics["threshold"] = threshold
    metrics["decided_accuracy"] = round(scorers.accuracy(decided, expected), 4)
    hard = [i for i, c in enumerate(cases) if c.split == "hard"]
    if hard:
        metrics["hard_accuracy"] = round(
            scorers.accuracy([best[i] for i in hard], [expected[i] for i in hard]), 4
        )
    return out


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def accounting(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Tokens, cost, latency and fallbacks over a run."""
    latencies = sorted(p.latency_ms for p in predictions)

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

    costs = [p.cost_usd for p in predictions]
    fallbacks: dict[str, int] = {}
    for p in predictions:
        if p.fallback_reason:
            fallbacks[p.fallback_reason] = fallbacks.get(p.fallback_reason, 0) + 1
    return {
        "input_tokens": sum(p.input_tokens for p in predictions),
        "output_tokens": sum(p.output_tokens for p in predictions),
        "cost_usd": None if any(c is None for c in costs) else round(sum(c or 0 for c in costs), 6),
        "latency_ms_p50": pct(0.5) if latencies else 0.0,
        "latency_ms_p95": pct(0.95) if latencies else 0.0,
        "latency_ms_total": round(sum(latencies), 3),
        "fallbacks": dict(sorted(fallbacks.items())),
    }

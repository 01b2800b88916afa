"""Deterministic scorers. Each returns plain JSON-able numbers; each has a version string, and
:data:`SCORER_VERSION` (part of every eval fingerprint) changes whenever one of them does.

Labels are strings; ``None`` as a prediction means the engine abstained (or found nothing).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

VERSIONS = {
    "accuracy": "accuracy-v1",
    "macro_f1": "macro-f1-v1",
    "abstention": "abstention-v1",
    "top_k": "top-k-v1",
    "field_exact_match": "field-exact-v1",
    "ece": "ece-10bin-v1",
    "citations": "citations-v1",
}
SCORER_VERSION = "scorers-1:" + ",".join(f"{k}={v}" for k, v in sorted(VERSIONS.items()))


def accuracy(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Share of exact matches (an abstention counts as wrong)."""
    if not expected:
        return 0.0
    hits = sum(bool(p == e) for p, e in zip(predicted, expected, strict=True))
    return hits / len(expected)


def _safe(n: float, d: float) -> float:
    return n / d if d else 0.0


def per_class(predicted: Sequence[Any], expected: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class seen in the truth or the predictions.
    Abstentions (None) are a miss for recall and never a class of their own."""
    classes = sorted({str(e) for e in expected} | {str(p) for p in predicted if p is not None})
    table = {}
    for c in classes:
        tp = sum(str(p) == c and str(e) == c for p, e in zip(predicted, expected, strict=True))
        fp = sum(
            p is not None and str(p) == c and str(e) != c
            for p, e in zip(predicted, expected, strict=True)
        )
        support = sum(str(e) == c for e in expected)
        precision, recall = _safe(tp, tp + fp), _safe(tp, support)
        table[c] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(_safe(2 * precision * recall, precision + recall), 4),
            "support": support,
        }
    return table


def macro_f1(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Unweighted mean F1 over the classes present in the truth."""
    table = per_class(predicted, expected)
    truth = {str(e) for e in expected}
    scores = [row["f1"] for c, row in table.items() if c in truth]
    return sum(scores) / len(scores) if scores else 0.0


def confusion(predicted: Sequence[Any], expected: Sequence[Any]) -> dict[str, dict[str, int]]:
    """expected -> predicted -> count; abstentions under "(abstained)"."""
    out: dict[str, Counter[str]] = {}
    for p, e in zip(predicted, expected, strict=True):
        out.setdefault(str(e), Counter())["(abstained)" if p is None else str(p)] += 1
    return {e: dict(sorted(c.items())) for e, c in sorted(out.items())}


def abstention(
    best: Sequence[Any],
    confidence: Sequence[float],
    expected: Sequence[Any],
    threshold: float,
) -> dict[str, float]:
    """Precision and recall of the decisions made at ``threshold``: precision over the cases
    answered (confidence >= threshold), recall = right answers over all cases, plus coverage."""
    kept = [c >= threshold for c in confidence]
    right = [b == e for b, e in zip(best, expected, strict=True)]
    answered = sum(kept)
    correct_kept = sum(k and r for k, r in zip(kept, right, strict=True))
    return {
        "threshold": threshold,
        "coverage": round(_safe(answered, len(kept)), 4),
        "precision": round(_safe(correct_kept, answered), 4),
        "recall": round(_safe(correct_kept, len(kept)), 4),
    }


def top_k(ranked: Sequence[Sequence[Any]], expected: Sequence[Any], k: int) -> float:
    """Share of cases whose truth is among the first ``k`` candidates."""
    if not expected:
        return 0.0
    return sum(e in list(r)[:k] for r, e in zip(ranked, expected, strict=True)) / len(expected)


def field_exact_match(
    predicted: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per field, the share of cases where the prediction equals the truth (a missing value is
    ``None``; a truth of ``None`` is matched by ``None`` or 0), and the share of cases with
    every field right."""
    fields = sorted({k for e in expected for k in e})
    per_field = {}
    for f in fields:
        hits = [_same(p.get(f), e.get(f)) for p, e in zip(predicted, expected, strict=True)]
        per_field[f] = round(_safe(sum(hits), len(hits)), 4)
    whole = [
        all(_same(p.get(f), e.get(f)) for f in e) for p, e in zip(predicted, expected, strict=True)
    ]
    return {
        "per_field": per_field,
        "all_fields": round(_safe(sum(whole), len(whole)), 4),
        "mean_field": round(_safe(sum(per_field.values()), len(per_field)), 4),
    }


def _same(got: Any, want: Any) -> bool:
    if want is None:
        return got in (None, 0, "")
    return bool(got == want)


def reliability(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> list[dict[str, float]]:
    """Per equal-width bin: mean confidence, accuracy and count (the reliability diagram)."""
    edges = [i / bins for i in range(bins + 1)]
    rows = []
    for low, high in itertools.pairwise(edges):
        idx = [i for i, c in enumerate(confidence) if (low < c <= high) or (low == 0 and c == 0)]
        if idx:
            rows.append(
                {
                    "low": low,
                    "high": high,
                    "confidence": round(sum(confidence[i] for i in idx) / len(idx), 4),
                    "accuracy": round(sum(correct[i] for i in idx) / len(idx), 4),
                    "count": len(idx),
                }
            )
    return rows


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE over equal-width bins: sum of |accuracy - confidence| weighted by bin share."""
    n = len(confidence)
    if not n:
        return 0.0
    total = sum(
        row["count"] / n * abs(row["accuracy"] - row["confidence"])
        for row in reliability(confidence, correct, bins)
    )
    return round(total, 4)


def citations(
    cited: Sequence[Sequence[str]],
    required: Sequence[Sequence[str]],
    answerable_pred: Sequence[bool],
    answerable_true: Sequence[bool],
    quotes_valid: Sequence[bool],
) -> dict[str, float]:
    """Citation correctness: of answerable questions, the share citing every required source
    (and the mean share of required sources cited); of all answers, the share whose quotes are
    verbatim in the cited sources; refusal accuracy on unanswerable ones."""
    answerable = [i for i, a in enumerate(answerable_true) if a]
    unanswerable = [i for i, a in enumerate(answerable_true) if not a]
    full = [set(required[i]) <= set(cited[i]) and answerable_pred[i] for i in answerable]
    share = [
        _safe(len(set(required[i]) & set(cited[i])), len(set(required[i]))) if required[i] else 1.0
        for i in answerable
    ]
    return {
        "required_cited": round(_safe(sum(full), len(full)), 4),
        "required_recall": round(_safe(sum(share), len(share)), 4),
        "quotes_valid": round(_safe(sum(quotes_valid), len(quotes_valid)), 4),
        "refusal_accuracy": round(
            _safe(sum(not answerable_pred[i] for i in unanswerable), len(unanswerable)), 4
        ),
        "answerable_accuracy": round(accuracy(answerable_pred, answerable_true), 4),
    }

"""Scorers on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evals import scorers


def test_accuracy_and_macro_f1_with_per_class_table() -> None:
    expected = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", None, "a"]
    assert scorers.accuracy(predicted, expected) == pytest.approx(3 / 6)
    table = scorers.per_class(predicted, expected)
    # a: tp 2, fp 1 (the c), support 3 -> p 2/3 r 2/3; b: tp 1 fp 1 support 2 -> p .5 r .5
    assert table["a"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    assert table["b"]["f1"] == 0.5 and table["c"]["f1"] == 0.0
    assert scorers.macro_f1(predicted, expected) == pytest.approx((0.6667 + 0.5 + 0) / 3)
    matrix = scorers.confusion(predicted, expected)
    assert matrix["b"] == {"(abstained)": 1, "b": 1}


def test_precision_and_recall_at_the_abstention_threshold() -> None:
    best = ["a", "b", "a", "c"]
    expected = ["a", "a", "a", "c"]
    confidence = [0.9, 0.95, 0.5, 0.85]
    at = scorers.abstention(best, confidence, expected, threshold=0.8)
    assert at == {"threshold": 0.8, "coverage": 0.75, "precision": 0.6667, "recall": 0.5}


def test_top_k() -> None:
    ranked = [["a", "b", "c"], ["b", "c", "a"], ["c", "b", "d"]]
    assert scorers.top_k(ranked, ["a", "a", "a"], 1) == pytest.approx(1 / 3)
    assert scorers.top_k(ranked, ["a", "a", "a"], 3) == pytest.approx(2 / 3)


def test_field_exact_match() -> None:
    expected: list[dict[str, int | None]] = [{"folio": 1, "iva": None}, {"folio": 2, "iva": 19}]
    predicted = [{"folio": 1, "iva": 0}, {"folio": 3, "iva": 19}]
    out = scorers.field_exact_match(predicted, expected)
    assert out["per_field"] == {"folio": 0.5, "iva": 1.0}
    assert out["all_fields"] == 0.5 and out["mean_field"] == 0.75


def _numpy_ece(conf: np.ndarray, hit: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - hit[mask].mean())
    assert len(edges) == bins + 1
    return float(total)


def test_ece_agrees_with_an_independent_computation() -> None:
    assert scorers.expected_calibration_error(
        [0.9, 0.9, 0.3, 0.3], [True, False, False, False]
    ) == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)
    rng = np.random.default_rng(7)
    conf = rng.uniform(0, 1, 500).round(4)
    hit = rng.uniform(0, 1, 500) < conf
    assert scorers.expected_calibration_error(list(conf), list(hit)) == pytest.approx(
        _numpy_ece(conf, hit), abs=1e-3
    )
    bins = scorers.reliability(list(conf), list(hit))
    assert sum(b["count"] for b in bins) == 500


def test_citation_correctness() -> None:
    out = scorers.citations(
        cited=[["s1", "s2"], ["s3"], [], ["s9"]],
        required=[["s1"], ["s1"], [], []],
        answerable_pred=[True, True, False, True],
        answerable_true=[True, True, False, False],
        quotes_valid=[True, False, True, True],
    )
    assert out["required_cited"] == 0.5
    assert out["quotes_valid"] == 0.75
    assert out["refusal_accuracy"] == 0.5
    assert out["answerable_accuracy"] == 0.75


def test_every_scorer_has_a_version_in_the_fingerprinted_string() -> None:
    for name, version in scorers.VERSIONS.items():
        assert f"{name}={version}" in scorers.SCORER_VERSION

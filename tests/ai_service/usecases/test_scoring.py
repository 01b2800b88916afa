"""The numeric pieces the local engines share."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from ai_service.usecases.scoring import (
    CharNgramEncoder,
    PlattCalibrator,
    RowStore,
    calibrated_candidates,
    expected_calibration_error,
    normalize,
)


def test_normalize_folds_case_accents_and_punctuation() -> None:
    assert normalize("CEM. PORTLAND 25KG") == "cem portland 25kg"
    assert normalize("Cañería  Ñuñoa/Grúa") == "caneria nunoa grua"


def test_char_ngrams_see_through_abbreviations_and_typos() -> None:
    enc = CharNgramEncoder()
    rows = enc.encode(["Servicio arriendo grúa", "SERV. ARRIENDO GRUA", "Resma papel carta"])
    sims = (rows @ rows.T).toarray()
    assert np.allclose(np.diag(sims), 1.0, atol=1e-5)
    assert sims[0, 1] > 0.7 > 0.2 > sims[0, 2]


@pytest.mark.parametrize("dense", [False, True])
def test_row_store_matches_a_full_product_across_merges(dense: bool) -> None:
    rng = np.random.default_rng(0)
    store = RowStore(merge_every=4)
    blocks = [rng.random((rng.integers(1, 4), 6)) for _ in range(11)]
    queries = rng.random((3, 6))
    for i, block in enumerate(blocks):
        store.append(block if dense else sparse.csr_matrix(block))
        full = np.vstack(blocks[: i + 1])
        got = store.similarities(queries if dense else sparse.csr_matrix(queries))
        assert np.allclose(got, queries @ full.T)
        assert len(store) == full.shape[0]
    assert RowStore().similarities(np.zeros((2, 6))).shape == (2, 0)


def test_ece_of_known_cases() -> None:
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)


def test_platt_scaling_repairs_overconfidence() -> None:
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.5, 1.0, 2000)
    logit = np.log(raw / (1 - raw))
    truth = 1 / (1 + np.exp(-(0.5 * logit - 1.0)))  # right 27-74 % of the time, claims 50-100 %
    correct = rng.random(2000) < truth
    calibrator = PlattCalibrator().fit(raw, correct)
    calibrated = [calibrator(r) for r in raw]
    assert expected_calibration_error(raw, correct) > 0.25
    assert expected_calibration_error(calibrated, correct) < 0.04
    assert PlattCalibrator().fit([0.9] * 5, [True] * 5)(0.9) == pytest.approx(0.9)


def test_calibrated_candidates_rank_and_share_the_rest() -> None:
    probs = np.asarray([0.1, 0.6, 0.05, 0.25])
    shrink = PlattCalibrator(a=1.0, b=-np.log(3.0))  # odds / 3: 0.6 -> 1/3
    ranked = calibrated_candidates(["a", "b", "c", "d"], probs, shrink, top=3)
    assert [c.value for c in ranked] == ["b", "d", "a"]
    assert ranked[0].score == pytest.approx(1 / 3, abs=1e-4)
    # the runners-up split the remaining 2/3 in their raw proportions (0.25 : 0.1)
    assert ranked[1].score == pytest.approx(2 / 3 * 0.25 / 0.35, abs=1e-4)
    assert ranked[2].score == pytest.approx(2 / 3 * 0.1 / 0.35, abs=1e-4)
    capped = calibrated_candidates(["a", "b", "c", "d"], probs, PlattCalibrator(), top=2, cap=0.5)
    assert [c.score for c in capped] == [0.5, 0.5]
    assert [c.value for c in calibrated_candidates(["x"], np.asarray([1.0]), shrink, 3)] == ["x"]

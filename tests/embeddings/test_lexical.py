"""Character n-gram features: folding, abbreviation expansion, typo tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.errors import InvalidInputError
from embeddings.lexical import CharNgramFeaturizer, fold, normalize_text


def test_fold_lowercases_and_removes_accents() -> None:
    assert fold("Mantención Ñuñoa ÁÉÍÓÚÜ") == "mantencion nunoa aeiouu"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ARR. OFIC. PROVIDENCIA", "arriendo oficina providencia"),
        ("Mant. Preventiva, 2 HH", "mantencion preventiva 2 horas hombre"),
        ("serv.transp/despacho", "servicio transporte despacho"),
        ("  Rep. bomba  ", "rep bomba"),  # ambiguous abbreviations are left alone
    ],
)
def test_normalize_expands_invoice_abbreviations(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized


def test_normalize_without_abbreviations() -> None:
    assert normalize_text("Arr. Ofic.", abbreviations=None) == "arr ofic"


def test_accents_and_case_do_not_change_features() -> None:
    featurizer = CharNgramFeaturizer()
    sim = featurizer.similarity(["CAMIÓN MANTENCIÓN"], ["camion mantencion"])
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_typos_stay_closer_than_other_words() -> None:
    featurizer = CharNgramFeaturizer()
    sim = featurizer.similarity(
        ["mantension camioneta"], ["mantención de camionetas", "combustible"]
    )
    assert sim[0, 0] > 0.4
    assert sim[0, 1] < 0.05


def test_abbreviation_expansion_helps_matching() -> None:
    query, target = ["arr. bodega"], ["arriendo de bodegas"]
    expanded = CharNgramFeaturizer().similarity(query, target)[0, 0]
    literal = CharNgramFeaturizer(expand_abbreviations=False).similarity(query, target)[0, 0]
    assert expanded > literal


def test_rows_are_unit_length_or_zero() -> None:
    matrix = CharNgramFeaturizer().transform(["arriendo", "!!!"])
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1.0, 0.0], atol=1e-6)


def test_idf_downweights_ngrams_shared_by_all_candidates() -> None:
    candidates = ["servicio de aseo", "servicio de flete", "servicio de hosting"]
    plain = CharNgramFeaturizer()
    weighted = CharNgramFeaturizer().fit_idf(candidates)
    assert weighted.uses_idf and not plain.uses_idf
    # "servicio" is in every candidate: with IDF it counts less against the distinct word.
    query = ["servicio flete"]
    assert (
        weighted.similarity(query, candidates)[0, 1] - weighted.similarity(query, candidates)[0, 0]
        > plain.similarity(query, candidates)[0, 1] - plain.similarity(query, candidates)[0, 0]
    )


def test_rejects_non_text() -> None:
    with pytest.raises(InvalidInputError):
        CharNgramFeaturizer().transform("arriendo")

"""Numeric pieces the local engines share: text normalisation, the text-encoder protocol (hashed
char n-grams by default, a sentence-embedding model later), a growing row store for
nearest-neighbour search, Platt calibration and the expected calibration error."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from ai_service.usecases.common import Candidate

# --- text ---------------------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation as spaces ("CEM. PORTLAND 25KG": "cem portland 25kg")."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", folded).strip()


class TextEncoder(Protocol):
    """Turns texts into rows with unit L2 norm, so a dot product is a cosine similarity.
    Sparse (char n-grams) or dense (a sentence embedding model) both work."""

    def encode(self, texts: Sequence[str]) -> Any: ...


class CharNgramEncoder:
    """Hashed character 2-4-grams within word boundaries: robust to typos, abbreviations and
    dropped accents, stateless (no vocabulary to fit), so learning online costs nothing."""

    def __init__(self, n_features: int = 2**18) -> None:
        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            n_features=n_features,
            alternate_sign=False,
            norm="l2",
            preprocessor=normalize,
            dtype=np.float32,
        )

    def encode(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self._vectorizer.transform(list(texts)).tocsr()


def similarities(matrix: Any, queries: Any) -> np.ndarray:
    """Cosine similarities (rows of ``queries`` x rows of ``matrix``) as a dense array."""
    product = queries @ matrix.T
    return np.asarray(product.toarray() if sparse.issparse(product) else product, dtype=np.float64)


class RowStore:
    """Encoded rows that grow one decision at a time. New rows wait in a short list and are
    merged into the main matrix every ``merge_every`` appends, so learning n rows restacks
    O(n^2 / merge_every) rows instead of O(n^2), and queries never transpose the main matrix
    twice."""

    def __init__(self, merge_every: int = 32) -> None:
        self.merge_every = merge_every
        self._matrix: Any = None
        self._transposed: Any = None  # cached: transposing per query costs more than the product
        self._pending: list[Any] = []

    def append(self, rows: Any) -> None:
        self._pending.append(rows)

    def __len__(self) -> int:
        stacked = 0 if self._matrix is None else int(self._matrix.shape[0])
        return stacked + sum(int(p.shape[0]) for p in self._pending)

    @staticmethod
    def _stack(parts: list[Any]) -> Any:
        dense = not sparse.issparse(parts[0])
        return np.vstack(parts) if dense else sparse.vstack(parts, format="csr")

    @staticmethod
    def _transpose(matrix: Any) -> Any:
        return matrix.T.tocsr() if sparse.issparse(matrix) else np.ascontiguousarray(matrix.T)

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = ([self._matrix] if self._matrix is not None else []) + self._pending
        self._matrix, self._pending = self._stack(parts), []
        self._transposed = self._transpose(self._matrix)

    @property
    def matrix(self) -> Any:
        if self._pending:
            self._merge()
        return self._matrix

    def similarities(self, queries: Any) -> np.ndarray:
        """Cosine similarities of each query row to every stored row (queries x rows)."""
        if len(self._pending) >= self.merge_every or self._matrix is None:
            self._merge()
        if self._matrix is None:
            return np.zeros((queries.shape[0], 0))
        blocks = [queries @ self._transposed]
        if self._pending:
            # the few pending rows times the queries, transposed: cheaper than transposing rows
            blocks.append((self._stack(self._pending) @ queries.T).T)
        dense = [np.asarray(b.toarray() if sparse.issparse(b) else b) for b in blocks]
        return np.asarray(np.hstack(dense), dtype=np.float64)


# --- calibration ----------------------------------------------------------------------------------


class PlattCalibrator:
    """Maps a raw score in (0, 1) to the probability of being right, fitted on held-out
    predictions: logistic regression on the raw score's log-odds (Platt scaling)."""

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a, self.b = a, b

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-4, 1 - 1e-4)
        return np.asarray(np.log(p / (1 - p)))

    def fit(self, raw: Sequence[float], correct: Sequence[bool]) -> PlattCalibrator:
        y = np.asarray(correct, dtype=float)
        if len(y) < 20 or y.min() == y.max():
            return self  # too little held-out evidence: keep the identity map
        from sklearn.linear_model import LogisticRegression

        x = self._logit(np.asarray(raw, dtype=float)).reshape(-1, 1)
        model = LogisticRegression(C=10.0).fit(x, y)
        self.a, self.b = float(model.coef_[0][0]), float(model.intercept_[0])
        return self

    def __call__(self, raw: float) -> float:
        z = self.a * float(self._logit(np.asarray([raw]))[0]) + self.b
        return 1 / (1 + math.exp(-z))


def calibrated_candidates(
    values: Sequence[str],
    probs: np.ndarray,
    calibrator: PlattCalibrator,
    top: int,
    cap: float = 1.0,
) -> list[Candidate[str]]:
    """The ``top`` values by raw probability: the best scored by ``calibrator`` (at most
    ``cap``), the runners-up sharing what it leaves in their raw proportions."""
    order = np.argsort(-probs, kind="stable")[:top]
    best = min(calibrator(float(probs[order[0]])), cap)
    rest = float(probs[order[1:]].sum()) or 1.0
    out = [Candidate[str](value=values[order[0]], score=round(best, 4))]
    for i in order[1:]:
        out.append(
            Candidate[str](value=values[i], score=round((1 - best) * float(probs[i]) / rest, 4))
        )
    return out


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width bins."""
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        mask = (conf > low) & (conf <= high) if low > 0 else (conf >= low) & (conf <= high)
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - hit[mask].mean())
    return float(total)

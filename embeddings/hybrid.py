"""Hybrid similarity: a weighted sum of embedding cosine and character n-gram cosine.

The weight is measured, not guessed: ``measure()`` sweeps it over the labelled Spanish set in
``embeddings/data/spanish_matching_v1.json`` (96 invoice lines → 20 expense categories or 12
project descriptions), choosing it on the even-numbered queries and reporting the odd-numbered
ones separately, so the held-out figure is not fitted to itself. Run it with
``dte-ai index evaluate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder, check_texts
from embeddings.errors import InvalidInputError
from embeddings.lexical import CharNgramFeaturizer

#: Chosen by ``measure()`` on the dev half of spanish_matching_v1 with the bundled
#: all-MiniLM-L6-v2; see the module docstring. Re-measure when the model changes.
DEFAULT_EMBEDDING_WEIGHT = 0.25

EVAL_SET_PATH = Path(__file__).resolve().parent / "data" / "spanish_matching_v1.json"
WEIGHT_GRID = tuple(round(step * 0.05, 2) for step in range(21))


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise InvalidInputError(f"embedding_weight must be between 0 and 1, got {weight}")
    return float(weight)


def combine(
    embedding_scores: np.ndarray, lexical_scores: np.ndarray, embedding_weight: float
) -> np.ndarray:
    """``w * embedding + (1 - w) * lexical``; both inputs are cosines of the same shape."""
    weight = check_weight(embedding_weight)
    if embedding_scores.shape != lexical_scores.shape:
        raise InvalidInputError(
            f"score shapes differ: {embedding_scores.shape} vs {lexical_scores.shape}"
        )
    return weight * embedding_scores + (1.0 - weight) * lexical_scores


@dataclass(frozen=True)
class ScoredCandidate:
    index: int
    score: float
    embedding_score: float
    lexical_score: float


class HybridScorer:
    """Scores queries against candidates with an encoder and a character n-gram featurizer."""

    def __init__(
        self,
        encoder: Encoder,
        lexical: CharNgramFeaturizer | None = None,
        *,
        embedding_weight: float = DEFAULT_EMBEDDING_WEIGHT,
    ) -> None:
        self.encoder = encoder
        self.lexical = lexical if lexical is not None else CharNgramFeaturizer()
        self.embedding_weight = check_weight(embedding_weight)

    def embedding_similarity(self, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        left = self.encoder.encode(check_texts(queries))
        right = self.encoder.encode(check_texts(candidates))
        return np.asarray(left @ right.T, dtype=np.float32)

    def lexical_similarity(self, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        return self.lexical.similarity(queries, candidates)

    def similarity(self, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        return combine(
            self.embedding_similarity(queries, candidates),
            self.lexical_similarity(queries, candidates),
            self.embedding_weight,
        )

    def rank(
        self, query: str, candidates: Sequence[str], k: int | None = None
    ) -> list[ScoredCandidate]:
        """Candidates best first (ties keep input order), at most ``k`` of them."""
        if not candidates:
            return []
        embedding = self.embedding_similarity([query], candidates)[0]
        lexical = self.lexical_similarity([query], candidates)[0]
        scores = combine(embedding, lexical, self.embedding_weight)
        order = np.argsort(-scores, kind="stable")[: k if k is not None else len(candidates)]
        return [
            ScoredCandidate(int(i), float(scores[i]), float(embedding[i]), float(lexical[i]))
            for i in order
        ]


@dataclass(frozen=True)
class RankingMetrics:
    top1: float
    mrr: float
    queries: int


def ranking_metrics(scores: np.ndarray, expected: Sequence[int]) -> RankingMetrics:
    """Top-1 accuracy and mean reciprocal rank; a tie with the right answer counts against it."""
    if scores.shape[0] != len(expected):
        raise InvalidInputError("one expected index per query row is needed")
    if not expected:
        return RankingMetrics(0.0, 0.0, 0)
    rows = np.arange(len(expected))
    right = scores[rows, np.asarray(expected)]
    beaten_by = (scores >= right[:, None]).sum(axis=1) - 1  # candidates scoring at least as high
    ranks = beaten_by + 1
    return RankingMetrics(
        top1=float(np.mean(ranks == 1)), mrr=float(np.mean(1.0 / ranks)), queries=len(expected)
    )


@dataclass(frozen=True)
class EvalTask:
    name: str
    candidate_ids: tuple[str, ...]
    candidate_texts: tuple[str, ...]
    query_texts: tuple[str, ...]
    expected: tuple[int, ...]


def load_eval_set(path: Path = EVAL_SET_PATH) -> list[EvalTask]:
    data = json.loads(path.read_text(encoding="utf-8"))
    tasks = []
    for task in data["tasks"]:
        ids = tuple(c["id"] for c in task["candidates"])
        position = {cid: i for i, cid in enumerate(ids)}
        tasks.append(
            EvalTask(
                name=task["name"],
                candidate_ids=ids,
                candidate_texts=tuple(c["text"] for c in task["candidates"]),
                query_texts=tuple(q["text"] for q in task["queries"]),
                expected=tuple(position[q["expected"]] for q in task["queries"]),
            )
        )
    return tasks


@dataclass
class _TaskScores:
    embedding: np.ndarray
    lexical: np.ndarray
    expected: tuple[int, ...]


@dataclass
class Measurement:
    """Pooled (micro-averaged over all queries of all tasks) metrics per configuration."""

    chosen_weight: float
    dev: dict[str, RankingMetrics] = field(default_factory=dict)
    test: dict[str, RankingMetrics] = field(default_factory=dict)
    full: dict[str, RankingMetrics] = field(default_factory=dict)
    sweep: dict[float, RankingMetrics] = field(default_factory=dict)


def _pooled(parts: list[_TaskScores], weight: float, rows: str) -> RankingMetrics:
    top1_sum = mrr_sum = 0.0
    count = 0
    for part in parts:
        n = len(part.expected)
        picked = [i for i in range(n) if rows == "all" or (i % 2 == 0) == (rows == "dev")]
        if not picked:
            continue
        scores = combine(part.embedding[picked], part.lexical[picked], weight)
        metrics = ranking_metrics(scores, [part.expected[i] for i in picked])
        top1_sum += metrics.top1 * metrics.queries
        mrr_sum += metrics.mrr * metrics.queries
        count += metrics.queries
    return RankingMetrics(top1_sum / count, mrr_sum / count, count)


def measure(
    scorer: HybridScorer,
    tasks: Sequence[EvalTask] | None = None,
    *,
    idf: bool = False,
) -> Measurement:
    """Embedding-only (w=1), lexical-only (w=0) and the best hybrid weight chosen on dev.

    With ``idf`` the featurizer is re-fitted on each task's candidates (what a per-company
    index can do); without it the hashed features are used as they are.
    """
    parts = []
    for task in tasks if tasks is not None else load_eval_set():
        lexical = scorer.lexical
        if idf:  # a fresh featurizer: the scorer's own stays as the caller configured it
            lexical = CharNgramFeaturizer(
                ngram_range=lexical.ngram_range,
                expand_abbreviations=lexical.expand_abbreviations,
            ).fit_idf(task.candidate_texts)
        parts.append(
            _TaskScores(
                embedding=scorer.embedding_similarity(task.query_texts, task.candidate_texts),
                lexical=lexical.similarity(task.query_texts, task.candidate_texts),
                expected=task.expected,
            )
        )
    dev_sweep = {w: _pooled(parts, w, "dev") for w in WEIGHT_GRID}
    # Best dev MRR, then top-1; among equals the weight nearest 0.5 (the least extreme choice).
    chosen = max(WEIGHT_GRID, key=lambda w: (dev_sweep[w].mrr, dev_sweep[w].top1, -abs(w - 0.5)))
    result = Measurement(chosen_weight=chosen, sweep=dev_sweep)
    configs = {"embedding": 1.0, "lexical": 0.0, "hybrid": chosen}
    if scorer.embedding_weight not in configs.values():
        configs["hybrid_default"] = scorer.embedding_weight
    for label, weight in configs.items():
        result.dev[label] = _pooled(parts, weight, "dev")
        result.test[label] = _pooled(parts, weight, "test")
        result.full[label] = _pooled(parts, weight, "all")
    return result

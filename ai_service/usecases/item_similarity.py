"""How alike two item wordings are, the way suppliers' ERPs print them: upper or lower case,
accents dropped, abbreviations ("Serv.", "ARR."), the odd typo. Shared by the anomaly rules
(grouping a supplier's price history per item) and purchase-order reconciliation (invoice line
to PO line).

Pure Python on purpose: a few dozen comparisons per call, no model to load.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TOKEN = re.compile(r"[a-z]+|\d+(?:[.,]\d+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation as spaces: ``"CEM. Pórtland 25KG"`` ->
    ``"cem portland 25 kg"`` (digits and letters split, so ``25KG`` equals ``25 kg``)."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)
    )
    return " ".join(_TOKEN.findall(plain))


@lru_cache(maxsize=8192)
def _features(text: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    norm = normalize(text)
    padded = f" {norm} "
    grams = frozenset(padded[i : i + 3] for i in range(len(padded) - 2))
    words = frozenset(w for w in norm.split() if not w[0].isdigit())
    numbers = frozenset(n.replace(",", ".") for n in _NUMBER.findall(norm))
    return grams, words, numbers


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def _prefix_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the shorter word set that has a partner sharing its first three letters: an
    abbreviation ("retroexc", "arr") keeps the start of the word it shortens."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not small:
        return 0.0
    hits = sum(1 for w in small if any(v.startswith(w[:3]) or w.startswith(v[:3]) for v in large))
    return hits / len(small)


def numbers_conflict(a: str, b: str) -> bool:
    """True when both wordings carry sizes and they differ ("fierro 12 mm" vs "fierro 8 mm"):
    distinct products that text similarity alone would merge."""
    na, nb = _features(a)[2], _features(b)[2]
    return bool(na) and bool(nb) and not (na <= nb or nb <= na)


def text_similarity(a: str, b: str) -> float:
    """0..1: character trigrams (robust to typos) blended with word-prefix overlap (robust to
    abbreviations); a conflict of sizes halves it."""
    ga, wa, _ = _features(a)
    gb, wb, _ = _features(b)
    score = 0.6 * _dice(ga, gb) + 0.4 * _prefix_overlap(wa, wb)
    if numbers_conflict(a, b):
        score *= 0.5
    return score

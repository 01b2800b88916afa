"""Words with positions -> visual lines -> segments (runs of words without a column gap).

Both engines (the PDF text layer and Tesseract) yield words with boxes; the field parser only
sees segments, so it reads a label and the value printed after it, or in the next column of the
same line, whatever the layout and whichever engine read it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from statistics import median


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    page: int = 0
    #: OCR only: Tesseract's (block, paragraph, line), which keeps a column's line together.
    group: tuple[int, int, int] | None = None

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass
class Segment:
    words: list[Word]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def norm(self) -> str:
        return normalize(self.text)

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return self.words[-1].x1

    @property
    def top(self) -> float:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self.words)

    @property
    def page(self) -> int:
        return self.words[0].page


@dataclass
class Line:
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def norm(self) -> str:
        return normalize(self.text)

    @property
    def top(self) -> float:
        return min(s.top for s in self.segments)

    @property
    def bottom(self) -> float:
        return max(s.bottom for s in self.segments)

    @property
    def page(self) -> int:
        return self.segments[0].page


def normalize(text: str) -> str:
    """Upper case, no accents, ``º``/``°`` kept as ``°``: labels compare the same however typed."""
    text = text.replace("º", "°").replace("ª", "A")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def build_lines(words: list[Word], *, gap_factor: float = 1.6) -> list[Line]:
    """Group one page's words into segments, and segments into visual lines.

    A segment is a run of words with no column gap (``gap_factor`` times the median word
    height: wider than a space, narrower than the gap between a label and a value column).
    Words from the text layer are grouped by their vertical overlap; OCR words keep the line
    Tesseract's layout analysis gave them, so a tilted scan does not mix columns.
    """
    if not words:
        return []
    height = median(w.height for w in words) or 1.0
    if all(w.group is not None for w in words):
        runs: list[list[Word]] = []
        for word in sorted(words, key=lambda w: (w.group or (0, 0, 0), w.x0)):
            if runs and runs[-1][-1].group == word.group:
                runs[-1].append(word)
            else:
                runs.append([word])
    else:
        runs = _rows(words, height)
    segments: list[Segment] = []
    for run in runs:
        current: list[Word] = [run[0]]
        for word in run[1:]:
            if word.x0 - current[-1].x1 > gap_factor * height:
                segments.append(Segment(current))
                current = []
            current.append(word)
        segments.append(Segment(current))
    return _lines(segments, height)


def _center(item: Word | Segment) -> float:
    return (item.top + item.bottom) / 2


def _rows(words: list[Word], height: float) -> list[list[Word]]:
    rows: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.page, _center(w))):
        if rows:
            last = rows[-1]
            if last[0].page == word.page and abs(_center(word) - _center(last[0])) <= height / 2:
                last.append(word)
                continue
        rows.append([word])
    for row in rows:
        row.sort(key=lambda w: w.x0)
    return rows


def _lines(segments: list[Segment], height: float) -> list[Line]:
    lines: list[Line] = []
    for segment in sorted(segments, key=lambda s: (s.page, _center(s))):
        if lines:
            first = lines[-1].segments[0]
            if first.page == segment.page and abs(_center(segment) - _center(first)) <= height / 2:
                lines[-1].segments.append(segment)
                continue
        lines.append(Line([segment]))
    for line in lines:
        line.segments.sort(key=lambda s: s.x0)
    return lines

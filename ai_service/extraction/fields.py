"""Invoice header fields from segments: RUTs, tipo, folio, fecha and the totals.

Rules a Chilean invoice follows whatever its layout: the emisor's RUT sits in the box with the
document name and the folio; amounts use dots for thousands; a label ("Monto Neto", "Neto",
"I.V.A.", "Total a pagar") is followed by its value on the same line or printed under it.
Every RUT must pass its check digit (:class:`dte_core.rut.Rut`); OCR confusions (O for 0, l
for 1) are repaired only when the repaired RUT then passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

from ai_service.extraction.layout import Line, Segment
from ai_service.extraction.result import Source
from dte_core.errors import InvalidRutError
from dte_core.rut import Rut

_RUT = re.compile(r"(?<![\d.,])(\d{1,2}[.,]?\d{3}[.,]?\d{3})\s?-\s?([0-9K])(?![0-9A-Z])")
_OCR_DIGITS: Final = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "|": "1",
                                    "S": "5", "B": "8", "Z": "2", "G": "6", "T": "7"})  # fmt: skip
_NUMBER = re.compile(r"^\$?(-?(?:\d{1,3}(?:[.,]\d{3})+|\d+)(?:,\d{1,4})?)$")
_FOLIO_ALONE = re.compile(r"^(?:FOLIO\s*)?N\s*[°O0*?%]{0,2}\s*[.:]?\s*(\d{1,10})$")
_FOLIO_LABEL = re.compile(r"\bFOLIO\b\s*(?:N\s*[°O0*?%]{0,2}\s*\.?)?\s*:?\s*(\d{1,10})\b")
#: Document names as letters only (OCR splits words and accents: "CR ÉDITO"), most specific first.
_TIPOS: Final = (
    (61, ("NOTADECREDITO",)),
    (56, ("NOTADEDEBITO",)),
    (34, ("FACTURANOAFECTA", "FACTURAEXENTA")),
    (46, ("FACTURADECOMPRA",)),
    (52, ("GUIADEDESPACHO",)),
    (41, ("BOLETANOAFECTA", "BOLETAEXENTA")),
    (39, ("BOLETA",)),
    (33, ("FACTURA",)),
)
_MESES: Final = {
    month: number
    for number, month in enumerate(
        ("ENERO", "FEBRERO", "MARZO", "ABRIL", "MAYO", "JUNIO", "JULIO", "AGOSTO"), start=1
    )
} | {"SEPTIEMBRE": 9, "SETIEMBRE": 9, "OCTUBRE": 10, "NOVIEMBRE": 11, "DICIEMBRE": 12}
_DATE_DMY = re.compile(r"(?<!\d)(\d{1,2})\s?[/.-]\s?(\d{1,2})\s?[/.-]\s?(\d{4})(?!\d)")
_DATE_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_DATE_WORDS = re.compile(r"(?<!\d)(\d{1,2})\s+DE\s+([A-Z]{3,10})\s+(?:DE|DEL)\s+(\d{4})(?!\d)")
#: Amount labels in the order they are tried: "Monto no afecto o exento de IVA" is exento.
AMOUNT_LABELS: Final = (
    ("mnt_exe", re.compile(r"\bEXENTO\b|\bNO\s+AFECTO\b")),
    ("mnt_neto", re.compile(r"\bNETO\b|\bAFECTO\b")),
    ("iva", re.compile(r"\bI\.?\s?V\.?\s?A\b\.?")),
    ("mnt_total", re.compile(r"(?<!SUB)(?<!SUB-)(?<!SUB )\bTOTAL\b")),
)
TABLE_HEADER_WORDS: Final = frozenset(
    [
        "CODIGO",
        "DESCRIPCION",
        "DETALLE",
        "ITEM",
        "PRODUCTO",
        "GLOSA",
        "CANTIDAD",
        "CANT",
        "PRECIO",
        "UNITARIO",
        "VALOR",
        "MONTO",
        "UNIDAD",
        "P.UNIT",
        "TOTAL",
    ]
)


@dataclass
class Found:
    """One value read from the document and how it was found."""

    value: str | int | None
    source: Source
    raw: str
    segment: Segment | None = None


def parse_number(token: str) -> Decimal | None:
    """``1.234.567`` / ``1,234,567`` -> 1234567; ``2,5`` -> 2.5 (comma decimals, as in Chile)."""
    match = _NUMBER.match(token.strip().rstrip(":;)"))
    if not match:
        return None
    text = match.group(1)
    if re.search(r",\d{1,2}$", text) or re.search(r",\d{4}$", text):
        integral, fraction = text.rsplit(",", 1)
        text = integral.replace(".", "").replace(",", "") + "." + fraction
    else:
        text = text.replace(".", "").replace(",", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def amounts_in(text: str) -> list[Decimal]:
    """Numbers in a text, skipping percentages (``IVA 19%``) and stray currency signs."""
    tokens = text.replace("$ ", "$").split()
    found = []
    for i, token in enumerate(tokens):
        if token.endswith("%") or (i + 1 < len(tokens) and tokens[i + 1].startswith("%")):
            continue
        number = parse_number(token)
        if number is not None:
            found.append(number)
    return found


# ------------------------------------------------------------------------------------ RUTs
@dataclass
class RutCandidate:
    rut: Rut
    segment: Segment
    line_no: int
    repaired: bool
    role: str | None


def _ruts_in(text: str) -> list[tuple[Rut, bool]]:
    out: list[tuple[Rut, bool]] = []
    for candidate, repaired in ((text, False), (text.translate(_OCR_DIGITS), True)):
        for match in _RUT.finditer(candidate):
            try:
                rut = Rut.parse(f"{match.group(1).replace(',', '.')}-{match.group(2)}")
            except InvalidRutError:
                continue
            if all(rut != r for r, _ in out):
                out.append((rut, repaired))
        if out:
            break
    return out


def _role(line: Line, segment: Segment) -> str | None:
    index = line.segments.index(segment)
    context = " ".join(s.norm for s in line.segments[max(0, index - 1) : index + 1])
    if "EMISOR" in context:
        return "emisor"
    if re.search(r"RECEP|CLIENTE|SENOR|COMPRADOR|DESTINATARIO", context):
        return "receptor"
    return None


def rut_candidates(lines: Sequence[Line]) -> list[RutCandidate]:
    out = []
    for line_no, line in enumerate(lines):
        for segment in line.segments:
            for rut, repaired in _ruts_in(segment.norm):
                out.append(RutCandidate(rut, segment, line_no, repaired, _role(line, segment)))
    return out


def line_has_valid_rut(line: Line) -> bool:
    return bool(_ruts_in(line.norm))


def invalid_rut_texts(lines: Sequence[Line]) -> list[str]:
    """RUT-shaped texts that fail their check digit even after OCR repairs."""
    bad = []
    for line in lines:
        for match in _RUT.finditer(line.norm):
            if not _ruts_in(match.group(0)):
                bad.append(match.group(0))
    return bad


def pick_ruts(
    candidates: Sequence[RutCandidate], anchor: Segment | None
) -> tuple[RutCandidate | None, RutCandidate | None]:
    """(emisor, receptor): labelled ones first, else the emisor is the RUT in the folio box."""
    emisor = next((c for c in candidates if c.role == "emisor"), None)
    if emisor is None and candidates:
        if anchor is not None:
            emisor = min(candidates, key=lambda c: _distance(c.segment, anchor))
        else:
            emisor = candidates[0]
    others = [c for c in candidates if emisor is None or c.rut != emisor.rut]
    receptor = next((c for c in others if c.role == "receptor"), None)
    if receptor is None and others:
        receptor = others[0]
    return emisor, receptor


def _distance(a: Segment, b: Segment) -> float:
    if a.page != b.page:
        return 1e9
    height = max(b.bottom - b.top, 1.0)
    dy = abs((a.top + a.bottom) / 2 - (b.top + b.bottom) / 2) / height
    dx = abs((a.x0 + a.x1) / 2 - (b.x0 + b.x1) / 2) / height
    return dy + 0.5 * dx


# ------------------------------------------------------------------------- tipo and folio
def _letters(text: str) -> str:
    return re.sub(r"[^A-Z]", "", text)


def _below(lines: Sequence[Line], line_no: int, segment: Segment) -> Segment | None:
    """The segment printed right under ``segment`` (the second line of a wrapped title)."""
    height = segment.bottom - segment.top
    for line in lines[line_no + 1 : line_no + 3]:
        if line.page != segment.page or line.top - segment.bottom > 2 * height:
            return None
        for other in line.segments:
            if other.x0 < segment.x1 and other.x1 > segment.x0:
                return other
    return None


def find_tipo(lines: Sequence[Line]) -> Found | None:
    """The document name that best looks like the box title (short, near the top, ELECTRÓNICA)."""
    best: tuple[float, Found] | None = None
    for line_no, line in enumerate(lines):
        if line.page != 0:
            break
        for seg_no, segment in enumerate(line.segments):
            below = _below(lines, line_no, segment)
            own = _letters(segment.norm)
            window = own + (_letters(below.norm) if below else "")
            for tipo, names in _TIPOS:
                # the name must start in this segment (it may wrap onto the one below)
                name = next((n for n in names if -1 < window.find(n) < len(own)), None)
                if name is None:
                    continue
                electronic = "ELECTRONIC" in window
                score = len(name) / max(len(window), 1) + electronic
                score -= line_no / max(len(lines), 1) + 0.1 * seg_no
                if best is None or score > best[0]:
                    best = (score, Found(tipo, "label", segment.text, segment))
                break
    return best[1] if best else None


def find_folio(lines: Sequence[Line], anchor: Segment | None) -> Found | None:
    """``N° 123`` / ``Folio: 123`` nearest the title; a bare number right under it if the
    ``N°`` did not survive OCR."""
    candidates: list[tuple[float, Found]] = []
    for line in lines:
        for index, segment in enumerate(line.segments):
            text = segment.norm
            match = _FOLIO_ALONE.match(text) or _FOLIO_LABEL.search(text)
            if match is None and re.fullmatch(r"FOLIO\s*(N\s*[°O0*?%]{0,2}\.?)?:?", text):
                nxt = line.segments[index + 1] if index + 1 < len(line.segments) else None
                match = re.fullmatch(r"(\d{1,10})", nxt.norm) if nxt else None
            penalty = 0.0
            if match is None and anchor is not None and segment.top > anchor.top:
                match = re.fullmatch(r"[^\dA-Z]{0,2}(\d{1,10})", text)
                penalty = 1.5
            if match:
                found = Found(
                    int(match.group(1)),
                    "label" if not penalty else "position",
                    segment.text,
                    segment,
                )
                distance = _distance(segment, anchor) if anchor is not None else len(candidates)
                candidates.append((distance + penalty, found))
    if not candidates:
        return None
    distance, found = min(candidates, key=lambda item: item[0])
    return found if found.source == "label" or distance < 6 else None


# ----------------------------------------------------------------------------------- fecha
def _dates(text: str) -> list[date]:
    found: list[date] = []
    for match in _DATE_ISO.finditer(text):
        found += _date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    for match in _DATE_DMY.finditer(text):
        found += _date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    for match in _DATE_WORDS.finditer(text):
        month = _MESES.get(match.group(2)) or next(
            (n for name, n in _MESES.items() if name.startswith(match.group(2)[:3])), None
        )
        if month:
            found += _date(int(match.group(3)), month, int(match.group(1)))
    return found


def _date(year: int, month: int, day: int) -> list[date]:
    try:
        return [date(year, month, day)]
    except ValueError:
        return []


def find_fecha(lines: Sequence[Line]) -> Found | None:
    """The emission date: a date labelled "Fecha (de) Emisión", else the first unlabelled one."""
    labelled: list[tuple[int, Found]] = []
    first: Found | None = None
    for line in lines:
        for index, segment in enumerate(line.segments):
            text = segment.norm
            following = " ".join(s.norm for s in line.segments[index + 1 : index + 2])
            if "VENC" in text or "REF" in text:
                continue
            if "FECHA" in text or "EMISION" in text:
                tail = text[text.find("FECHA") :] if "FECHA" in text else text
                dates = _dates(tail) or _dates(following)
                if dates:
                    rank = 0 if "EMISION" in text else 1
                    labelled.append((rank, Found(dates[0].isoformat(), "label", segment.text)))
            elif first is None and "DEL" not in text and (dates := _dates(text)):
                first = Found(dates[0].isoformat(), "position", segment.text)
    if labelled:
        return min(labelled, key=lambda item: item[0])[1]
    return first


# --------------------------------------------------------------------------------- amounts
def is_table_header(line: Line) -> bool:
    words = {w.strip(".:") for w in line.norm.split()}
    return len(words & TABLE_HEADER_WORDS) >= 3


def find_amounts(lines: Sequence[Line]) -> dict[str, Found]:
    """Each totals field: same-line values beat values printed under the label; then lowest."""
    best: dict[str, tuple[tuple[int, int, float], Found]] = {}
    for line_no, line in enumerate(lines):
        header = is_table_header(line)
        for index, segment in enumerate(line.segments):
            kind, label_end = _label_of(segment.norm)
            if kind is None:
                continue
            values = amounts_in(segment.norm[label_end:])
            rank = 0
            if not values:
                for right in line.segments[index + 1 :]:
                    if _label_of(right.norm)[0] is not None:
                        break
                    if values := amounts_in(right.text)[:1]:
                        break
            if not values and not header:
                values, rank = _value_below(lines, line_no, segment), 1
            if not values:
                continue
            key = (rank, -line.page, -segment.top)
            found = Found(int(values[-1]), "label", segment.text, segment)
            if kind not in best or key < best[kind][0]:
                best[kind] = (key, found)
    return {kind: found for kind, (_, found) in best.items()}


def _label_of(text: str) -> tuple[str | None, int]:
    for kind, pattern in AMOUNT_LABELS:
        match = pattern.search(text)
        if match:
            return kind, match.end()
    return None, 0


def _value_below(lines: Sequence[Line], line_no: int, label: Segment) -> list[Decimal]:
    if len(label.text.split()) > 6:  # a label, not a sentence
        return []
    height = label.bottom - label.top
    for line in lines[line_no + 1 : line_no + 3]:
        if line.page != label.page or line.top - label.bottom > 2 * height:
            break
        for segment in line.segments:
            overlaps = segment.x0 < label.x1 + height and segment.x1 > label.x0 - height
            values = amounts_in(segment.text) if overlaps else []
            if values and _label_of(segment.norm)[0] is None:
                return values[:1]
    return []

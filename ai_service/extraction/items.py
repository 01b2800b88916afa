"""Detail lines: the rows between the table header (Descripción, Cantidad, Precio, Valor) and
the totals, on every page the table continues on.

The header says which column is which and where it stands; each word of a row goes to the
column it sits under, so a quantity printed before the description, a unit beside the quantity
or a number inside a description ("Cable 2,5 mm") land where they belong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from ai_service.extraction.fields import amounts_in, is_table_header, parse_number
from ai_service.extraction.layout import Line, Word, normalize

_TOTALS_START = re.compile(
    r"^(?:MONTO\s+|SUB\s?-?\s?)?(?:NETO|EXENTO|NO\s+AFECTO|TOTAL|I\.?\s?V\.?\s?A\b|AFECTO"
    r"|DESCUENTO\s+GLOBAL)"
)
_SECTION_END = re.compile(r"\bREFERENCIAS?\b|\bTIMBRE\b|\bOBSERVACION|\bCONTINUA EN\b")
_PERCENT = re.compile(r"^(\d{1,3}(?:[.,]\d{1,2})?)\s?%$")
_HEADER_KINDS: Final = (
    ("code", re.compile(r"^(?:CODIGO|COD\.?|SKU)$")),
    ("disc", re.compile(r"^(?:%|DESC\.?|DESCUENTO|DSCTO\.?|%\s?DESC\.?)$")),
    ("price", re.compile(r"^(?:PRECIO|UNITARIO|UNIT\.?|P\.?\s?UNIT\.?|P\.)$")),
    ("qty", re.compile(r"^(?:CANTIDAD|CANT\.?|QTY)$")),
    ("unit", re.compile(r"^(?:UNIDAD|UM|U\.M\.|UNID\.?)$")),
    ("desc", re.compile(r"^(?:DESCRIPCION|DETALLE|ITEM|PRODUCTO|GLOSA|CONCEPTO|ARTICULO)$")),
    ("amount", re.compile(r"^(?:VALOR|TOTAL|MONTO|SUBTOTAL|IMPORTE)$")),
)
_NUMERIC_KINDS: Final = frozenset({"code", "disc", "price", "qty", "amount"})


@dataclass
class ItemRow:
    descripcion: str
    cantidad: Decimal | None
    precio_unitario: Decimal | None
    descuento_pct: Decimal | None
    monto: int

    @property
    def consistent(self) -> bool | None:
        """Whether cantidad x precio (less the discount) gives the line amount."""
        if self.cantidad is None or self.precio_unitario is None:
            return None
        gross = self.cantidad * self.precio_unitario
        if self.descuento_pct:
            gross -= gross * self.descuento_pct / 100
        return abs(gross.quantize(Decimal(1), rounding=ROUND_HALF_UP) - self.monto) <= 1


@dataclass
class Column:
    kind: str
    x0: float
    x1: float
    height: float

    def distance(self, word: Word) -> float:
        center = (word.x0 + word.x1) / 2
        if self.x0 - self.height <= center <= self.x1 + self.height:
            return 0.0
        return min(abs(center - self.x0), abs(center - self.x1))


def header_columns(line: Line) -> list[Column]:
    columns: list[Column] = []
    words = [w for s in line.segments for w in s.words]
    for n, word in enumerate(words):
        text = normalize(word.text).strip(":")
        kind = next((k for k, pattern in _HEADER_KINDS if pattern.match(text)), None)
        if kind is None:
            continue
        following = normalize(words[n + 1].text) if n + 1 < len(words) else ""
        if kind == "amount" and following.startswith("UNIT"):
            kind = "price"  # "Valor Unitario"
        gap = word.x0 - columns[-1].x1 if columns else 0.0
        if columns and columns[-1].kind == kind and gap < 2 * word.height:
            columns[-1].x1 = word.x1
        else:
            columns.append(Column(kind, word.x0, word.x1, word.height))
    return columns


def find_items(lines: Sequence[Line]) -> list[ItemRow]:
    items: list[ItemRow] = []
    columns: list[Column] | None = None
    for line in lines:
        if is_table_header(line):
            columns = header_columns(line)
            continue
        if columns is None:
            continue
        if any(_TOTALS_START.match(s.norm) for s in line.segments) or _SECTION_END.search(
            line.norm
        ):
            columns = None
            continue
        row = _parse_row(line, columns)
        if row is not None:
            items.append(row)
    return items


def _number(word: Word) -> tuple[str, Decimal] | None:
    if percent := _PERCENT.match(word.text):
        value = parse_number(percent.group(1))
        return ("disc", value) if value is not None else None
    found = amounts_in(word.text)
    return ("number", found[0]) if len(found) == 1 else None


def _parse_row(line: Line, columns: Sequence[Column]) -> ItemRow | None:
    numeric = [c for c in columns if c.kind in _NUMERIC_KINDS]
    cells: dict[str, list[Decimal]] = {}
    description: list[str] = []
    for word in (w for s in line.segments for w in s.words):
        if word.text in ("$", "CLP", "CLP$"):
            continue
        number = _number(word)
        if number is not None and numeric:
            kind, value = number
            nearest = min(numeric, key=lambda c: c.distance(word))
            # far from every numeric column: a number inside the description
            if kind == "number" and nearest.distance(word) > 4 * nearest.height:
                description.append(word.text)
                continue
            cells.setdefault("disc" if kind == "disc" else nearest.kind, []).append(value)
            continue
        placed = min(columns, key=lambda c: c.distance(word)) if columns else None
        if placed is not None and placed.kind in ("unit", "code") and placed.distance(word) == 0:
            continue
        description.append(word.text)
    if not description or not cells:
        return None  # a continuation of the previous description, or a stray number
    amount = cells.get("amount") or []
    monto = amount[-1] if amount else None
    if monto is None:
        rest = [v for k in ("price", "qty") for v in cells.get(k, [])]
        if not rest:
            return None
        monto = rest.pop()
    qty, price, disc = (_first(cells, kind) for kind in ("qty", "price", "disc"))
    if qty is None and price is not None and price == monto:
        qty = Decimal(1)
    if price is None and qty and disc is None and Decimal(int(monto)) % qty == 0:
        price = Decimal(int(monto)) / qty
    row = ItemRow(" ".join(description), qty, price, disc, int(monto))
    if row.consistent is not True and price and not disc and monto % price == 0:
        # small digits are what OCR drops or misreads: the two amounts give the quantity
        row.cantidad = Decimal(int(monto)) / price
    return row


def _first(cells: dict[str, list[Decimal]], kind: str) -> Decimal | None:
    values = cells.get(kind)
    return values[0] if values else None

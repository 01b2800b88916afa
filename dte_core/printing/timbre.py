"""The timbre: the TED as a PDF417 symbol, sized and coded as the SII requires (error
correction level 5, modules at least 0.17 mm, rows 3 modules high, at most 9 x 4 cm)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

import pdf417gen
from pdf417gen.compaction import compact
from PIL import Image
from reportlab.lib.units import cm, mm

from dte_core.errors import InvalidDocumentError

#: SII: error correction level 5 for the timbre's PDF417.
TIMBRE_SECURITY_LEVEL: Final = 5
TIMBRE_MAX_W: Final = 9 * cm
TIMBRE_MAX_H: Final = 4 * cm
TIMBRE_LEFT: Final = 2 * cm
_MIN_MODULE: Final = 0.17 * mm  # SII: narrowest element X >= 0.0067 in
ROW_RATIO: Final = 3  # SII: row height 3X


def timbre_codes(payload: bytes) -> list[list[int]]:
    """The PDF417 codeword rows of the timbre, at SII level 5, in the shape that fits 9 x 4 cm
    with the widest modules."""
    # data + length descriptor + error correction; only the padding depends on the columns
    count = len(list(compact(payload))) + 1 + 2 ** (TIMBRE_SECURITY_LEVEL + 1)
    shapes = [
        (_module(columns, -(-count // columns)), columns)
        for columns in range(1, 31)
        if 3 <= -(-count // columns) <= 90  # PDF417 symbols have 3 to 90 rows
    ]
    if not shapes or max(shapes)[0] < _MIN_MODULE:
        raise InvalidDocumentError(
            f"the TED ({len(payload)} bytes) does not fit the SII's 9 x 4 cm timbre",
            code="ted_too_large",
        )
    columns = max(shapes)[1]
    codes: list[list[int]] = pdf417gen.encode(
        payload, columns=columns, security_level=TIMBRE_SECURITY_LEVEL
    )
    return codes


def _module(columns: int, rows: int) -> float:
    # start, left and right row indicators, stop: 4 codewords of 17 modules (+1 for stop)
    width_modules = (columns + 4) * 17 + 1
    return float(min(TIMBRE_MAX_W / width_modules, TIMBRE_MAX_H / (rows * ROW_RATIO)))


def timbre_image(codes: Sequence[Sequence[int]]) -> Image.Image:
    """The PDF417 symbol as a greyscale image, one pixel per module and per row."""
    image = Image.new("L", (len(codes[0]) * 17 + 1, len(codes)), 255)
    for row_no, row in enumerate(codes):
        for start, length in _runs(row):
            image.paste(0, (start, row_no, start + length, row_no + 1))
    return image


def _runs(row: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Dark module runs of one PDF417 row as (start module, length): fewer, cleaner rects."""
    bits = "".join(format(value, "b") for value in row)
    start = -1
    for i, bit in enumerate(bits + "0"):
        if bit == "1" and start < 0:
            start = i
        elif bit == "0" and start >= 0:
            yield start, i - start
            start = -1


def module_size(codes: Sequence[Sequence[int]]) -> float:
    """Width of one module (points) when the symbol fills the SII's 9 x 4 cm box."""
    return _module(len(codes[0]) - 4, len(codes))

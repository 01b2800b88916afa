"""What a printed DTE needs besides the XML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from reportlab.lib.pagesizes import LETTER


@dataclass(frozen=True)
class PrintOptions:
    """What the XML does not hold: the SII resolution authorising the emisor and its office."""

    resolucion_numero: int
    resolucion_fecha: date
    oficina_sii: str
    #: Prints "CEDIBLE" (the copy for factoring) bottom-right.
    cedible: bool = False
    page_size: tuple[float, float] = LETTER

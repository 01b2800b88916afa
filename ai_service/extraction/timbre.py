"""The printed timbre (PDF417 of the TED) read back from the page image with zxing-cpp.

The TED's ``DD`` block carries the SII's own copy of RUT emisor, tipo, folio, fecha, RUT
receptor and total, signed with the CAF key: when the barcode can be read, those values are
certain, and a printed value that disagrees with them is a misread or an edited PDF.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from dte_core.caf import SiiKeyring
from dte_core.errors import DteError
from dte_core.rut import Rut
from dte_core.ted import verify_ted
from dte_core.xmlsafe import local_name, parse_untrusted

_MAX_TED_BYTES: Final = 16 * 1024  # a TED is under 1 KiB; a PDF417 holds at most ~1.1 KiB


@dataclass(frozen=True)
class Timbre:
    values: dict[str, str | int]
    #: FRMT verifies with the CAF key the TED carries: DD is what the emisor stamped.
    signature_valid: bool
    #: The CAF inside carries the SII's signature (the stamp was authorised by the SII).
    caf_valid: bool


def decode_pdf417(image: Any) -> list[bytes]:
    import zxingcpp

    return [
        barcode.bytes
        for barcode in zxingcpp.read_barcodes(
            image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.PDF417)
        )
        if barcode.valid
    ]


def parse_timbre(payload: bytes) -> Timbre | None:
    """The DD values of a TED payload, or None when the barcode holds something else."""
    try:
        ted = parse_untrusted(payload, max_bytes=_MAX_TED_BYTES)
    except DteError:
        return None
    dd = ted.find("{*}DD")
    if local_name(ted) != "TED" or dd is None:
        return None
    values: dict[str, str | int] = {}
    for tag, name in (("RE", "rut_emisor"), ("RR", "rut_receptor")):
        with suppress(DteError):
            values[name] = str(Rut.parse(_text(dd, tag)))
    for tag, name in (("TD", "tipo_dte"), ("F", "folio"), ("MNT", "mnt_total")):
        if _text(dd, tag).isdigit():
            values[name] = int(_text(dd, tag))
    if fecha := _text(dd, "FE"):
        values["fch_emis"] = fecha
    check = verify_ted(ted, keyring=SiiKeyring.default())
    return Timbre(values, check.frmt_valid, check.caf_valid)


def _text(el: etree._Element, tag: str) -> str:
    return (el.findtext(f"{{*}}{tag}") or "").strip()


def read_timbre(pages: list[list[Any]]) -> Timbre | None:
    """The first TED found, last page first (the SII prints it once, at the end); each page
    comes as one or more renderings of it to try."""
    for renderings in reversed(pages):
        for image in renderings:
            for payload in decode_pdf417(image):
                if (timbre := parse_timbre(payload)) is not None:
                    return timbre
    return None

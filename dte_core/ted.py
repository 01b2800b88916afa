"""TED (Timbre Electrónico del DTE): the CAF-key stamp printed as a PDF417 barcode.

``DD`` summarises the document and embeds the CAF; ``FRMT`` is SHA1withRSA with the CAF's
private key over the SII serialisation of ``DD`` (:func:`dte_core.xmlsafe.sii_bytes`).
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from dte_core.caf import Caf, SiiKeyring, same_rut
from dte_core.errors import CafError, FieldError, InvalidDocumentError
from dte_core.xmlsafe import sii_bytes

#: Boletas may omit RznSocRecep; their schema (EnvioBOLETA_v11) lets DD/RSR be empty.
BOLETA_TIPOS: Final = frozenset({39, 41})
_TEXT_LIMIT: Final = 40  # RSR and IT1 are xs:string maxLength 40 in DTE_v10 and EnvioBOLETA_v11

_RE = "Encabezado/Emisor/RUTEmisor"
_TD = "Encabezado/IdDoc/TipoDTE"
_F = "Encabezado/IdDoc/Folio"
_FE = "Encabezado/IdDoc/FchEmis"
_RR = "Encabezado/Receptor/RUTRecep"
_RSR = "Encabezado/Receptor/RznSocRecep"
_MNT = "Encabezado/Totales/MntTotal"
_IT1 = "Detalle/NmbItem"


def _find(el: etree._Element, path: str) -> etree._Element | None:
    return el.find("/".join(f"{{*}}{part}" for part in path.split("/")))


def _value(el: etree._Element, path: str) -> str | None:
    found = _find(el, path)
    if found is None or found.text is None or not found.text.strip():
        return None
    return found.text.strip()


def _amount(text: str) -> int:
    """``MntTotal`` as DD/MNT wants it (xs:unsignedLong); export totals may carry decimals."""
    return int(Decimal(text).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _dd_values(documento: etree._Element) -> dict[str, str]:
    missing: list[FieldError] = []

    def required(path: str) -> str:
        value = _value(documento, path)
        if value is None:
            missing.append(FieldError(path.replace("/", "."), "required", "needed for the TED"))
            return ""
        return value

    values = {
        "RE": required(_RE),
        "TD": required(_TD),
        "F": required(_F),
        "FE": required(_FE),
        "RR": required(_RR),
        "MNT": required(_MNT),
        "IT1": required(_IT1)[:_TEXT_LIMIT],
    }
    rsr = _value(documento, _RSR)
    if rsr is None and values["TD"].isdigit() and int(values["TD"]) not in BOLETA_TIPOS:
        required(_RSR)
    values["RSR"] = (rsr or "")[:_TEXT_LIMIT]
    if missing:
        raise InvalidDocumentError(
            "cannot stamp the document: fields the TED needs are missing", fields=missing
        )
    try:
        values["MNT"] = str(_amount(values["MNT"]))
    except InvalidOperation as exc:
        raise InvalidDocumentError(
            f"Totales/MntTotal {values['MNT']!r} is not an amount",
            fields=[FieldError(_MNT.replace("/", "."), "invalid", "not an amount")],
        ) from exc
    return values


def build_ted(documento: etree._Element, caf: Caf, *, timestamp: datetime) -> etree._Element:
    """Stamp a built ``<Documento>``: return ``<TED>`` in the document's namespace."""
    values = _dd_values(documento)
    tipo, folio = int(values["TD"]), int(values["F"])
    if caf.private_key is None:
        raise CafError(
            "the CAF has no private key (<RSASK> is missing or redacted) so it cannot stamp "
            "documents; use the original file downloaded from the SII",
            code="caf_no_private_key",
        )
    if caf.tipo_dte != tipo:
        raise CafError(
            f"the CAF grants tipo {caf.tipo_dte}, the document is tipo {tipo}",
            code="caf_wrong_tipo",
        )
    if not caf.covers(folio):
        raise CafError(
            f"folio {folio} is outside the CAF range {caf.folio_desde}-{caf.folio_hasta}",
            code="folio_out_of_range",
        )
    if not same_rut(values["RE"], caf.rut_emisor):
        raise CafError(
            f"the CAF belongs to emisor {caf.rut_emisor}, the document to {values['RE']}",
            code="caf_wrong_emisor",
        )

    ns = etree.QName(documento).namespace

    def q(name: str) -> str:
        return f"{{{ns}}}{name}" if ns else name

    # A default-namespace declaration (not ns0:) so the TED reads like the SII's when alone.
    ted = etree.Element(q("TED"), nsmap={None: ns} if ns else None)  # type: ignore[dict-item]
    ted.set("version", "1.0")
    dd = etree.SubElement(ted, q("DD"))
    for name in ("RE", "TD", "F", "FE", "RR", "RSR", "MNT", "IT1"):
        etree.SubElement(dd, q(name)).text = values[name] or None
    caf_el = copy.deepcopy(caf.caf_element)
    for node in caf_el.iter():
        if isinstance(node.tag, str):
            node.tag = q(node.tag)
    dd.append(caf_el)
    etree.SubElement(dd, q("TSTED")).text = timestamp.strftime("%Y-%m-%dT%H:%M:%S")
    signature = caf.private_key.sign(sii_bytes(dd), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    frmt = etree.SubElement(ted, q("FRMT"))
    frmt.set("algoritmo", "SHA1withRSA")
    frmt.text = base64.b64encode(signature).decode("ascii")
    return ted


@dataclass(frozen=True)
class TedCheck:
    valid: bool
    frmt_valid: bool
    caf_valid: bool
    caf_key: str | None
    matches_document: bool | None
    errors: tuple[str, ...]


def _same_number(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return a == b


def _caf_consistency(dd: etree._Element, caf: Caf) -> list[str]:
    errors: list[str] = []
    re_, td, f = _value(dd, "RE") or "", _value(dd, "TD") or "", _value(dd, "F") or ""
    if not same_rut(re_, caf.rut_emisor):
        errors.append(f"DD/RE {re_} != CAF/DA/RE {caf.rut_emisor}")
    if not _same_number(td, str(caf.tipo_dte)):
        errors.append(f"DD/TD {td} != CAF/DA/TD {caf.tipo_dte}")
    if not (f.isascii() and f.isdigit() and caf.covers(int(f))):
        errors.append(f"DD/F {f} is outside the CAF range {caf.folio_desde}-{caf.folio_hasta}")
    return errors


def _same_amount(stamped: str, actual: str) -> bool:
    try:
        return Decimal(stamped) == _amount(actual)
    except InvalidOperation:
        return False


def _same_text(stamped: str, actual: str) -> bool:
    return stamped == actual


_DOCUMENT_FIELDS: Final = (
    ("RE", _RE, same_rut),
    ("TD", _TD, _same_number),
    ("F", _F, _same_number),
    ("FE", _FE, _same_text),
    ("RR", _RR, same_rut),
    ("MNT", _MNT, _same_amount),
)


def _document_mismatches(dd: etree._Element, documento: etree._Element) -> list[str]:
    errors: list[str] = []
    for name, path, same in _DOCUMENT_FIELDS:
        stamped, actual = _value(dd, name), _value(documento, path)
        if stamped is None or actual is None or not same(stamped, actual):
            errors.append(f"DD/{name} {stamped} != {path.removeprefix('Encabezado/')} {actual}")
    return errors


def verify_ted(
    ted: etree._Element, *, documento: etree._Element | None = None, keyring: SiiKeyring
) -> TedCheck:
    """Check the stamp: FRMT with the CAF key, the CAF with the SII key, and the document."""
    errors: list[str] = []
    dd, frmt = _find(ted, "DD"), _find(ted, "FRMT")
    caf_el = _find(dd, "CAF") if dd is not None else None
    if dd is None or frmt is None or caf_el is None:
        return TedCheck(False, False, False, None, None, ("the TED lacks DD, FRMT or DD/CAF",))
    try:
        caf = Caf.from_element(caf_el)
    except CafError as exc:
        return TedCheck(False, False, False, None, None, (f"unreadable CAF: {exc.message}",))

    frmt_valid = False
    try:
        signature = base64.b64decode("".join((frmt.text or "").split()), validate=True)
        caf.public_key.verify(signature, sii_bytes(dd), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        frmt_valid = True
    except binascii.Error:
        errors.append("FRMT is not base64")
    except InvalidSignature:
        errors.append("FRMT does not verify with the CAF key: the stamped data (DD) was altered")

    caf_key: str | None = None
    try:
        caf_key = caf.verify(keyring)
    except CafError as exc:
        errors.append(exc.message)

    consistency = _caf_consistency(dd, caf)
    errors.extend(consistency)
    matches: bool | None = None
    if documento is not None:
        mismatches = _document_mismatches(dd, documento)
        errors.extend(mismatches)
        matches = not mismatches and not consistency
    valid = frmt_valid and caf_key is not None and not consistency and matches is not False
    return TedCheck(valid, frmt_valid, caf_key is not None, caf_key, matches, tuple(errors))


def pdf417_payload(ted: etree._Element) -> bytes:
    """What the PDF417 barcode encodes: the TED in the SII serialisation (ISO-8859-1)."""
    return sii_bytes(ted)

"""EnvioDTE / EnvioBOLETA: the signed envelope that carries DTEs to the SII (or to a receptor)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from lxml import etree

from dte_core import xsd
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.rut import Rut
from dte_core.signing import CompanyCertificate, sign_element
from dte_core.xmlsafe import SII_NS, XSI_NS, parse_untrusted

BOLETA_TYPES = frozenset({39, 41})
#: The SII publishes these caps; the schemas encode them as maxOccurs.
MAX_DTE_PER_ENVIO = 2000
MAX_DTE_PER_ENVIO_BOLETA = 500
#: The SII's own RUT: the receptor of every envío sent to it (and of all EnvioBOLETA).
SII_RUT = "60803000-K"
NSMAP: dict[str | None, str] = {None: SII_NS, "xsi": XSI_NS}
_XML_DECLARATION = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'


@dataclass(frozen=True)
class Caratula:
    """The envelope's cover: who sends what to whom, under which SII resolution."""

    rut_emisor: str
    rut_envia: str
    rut_receptor: str
    fch_resol: date
    nro_resol: int


def serialize(root: etree._Element) -> bytes:
    """ISO-8859-1 bytes with the declaration the SII's examples use (double quotes)."""
    body = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=False)
    return _XML_DECLARATION + cast(bytes, body)


def _sii(tag: str) -> str:
    return f"{{{SII_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: object) -> etree._Element:
    el = etree.SubElement(parent, _sii(tag))
    el.text = str(text)
    return el


def _as_element(dte: bytes | etree._Element) -> etree._Element:
    return parse_untrusted(dte) if isinstance(dte, bytes) else copy.deepcopy(dte)


def build_envio(
    dtes: Sequence[bytes | etree._Element],
    caratula: Caratula,
    certificate: CompanyCertificate,
    *,
    timestamp: datetime,
) -> bytes:
    """Envelope already-signed DTEs, sign the SetDTE and return schema-valid ISO-8859-1 bytes.

    Each DTE keeps its own signature: DTEs are signed standalone with the same two namespace
    declarations the envelope root carries, so inclusive C14N of every ``Documento`` is the
    same inside and outside the envelope.
    """
    elements = [_as_element(d) for d in dtes]
    if not elements:
        raise InvalidDocumentError(
            "an envío needs at least one document",
            fields=[FieldError("Documentos", "empty", "give at least one document")],
        )
    tipos = [
        int(el.findtext(f"{{{SII_NS}}}Documento/{{*}}Encabezado/{{*}}IdDoc/{{*}}TipoDTE") or 0)
        for el in elements
    ]
    emisores = [
        el.findtext(f"{{{SII_NS}}}Documento/{{*}}Encabezado/{{*}}Emisor/{{*}}RUTEmisor") or ""
        for el in elements
    ]
    check_envio(tipos, emisores, caratula, certificate)
    boleta = tipos[0] in BOLETA_TYPES

    root_tag = "EnvioBOLETA" if boleta else "EnvioDTE"
    root = etree.Element(_sii(root_tag), nsmap=NSMAP)  # type: ignore[arg-type]
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{SII_NS} {root_tag}_v1{'1' if boleta else '0'}.xsd")
    root.set("version", "1.0")
    set_dte = etree.SubElement(root, _sii("SetDTE"), ID="SetDoc")
    car = etree.SubElement(set_dte, _sii("Caratula"), version="1.0")
    _sub(car, "RutEmisor", Rut.parse(caratula.rut_emisor))
    _sub(car, "RutEnvia", Rut.parse(caratula.rut_envia))
    _sub(car, "RutReceptor", Rut.parse(SII_RUT if boleta else caratula.rut_receptor))
    _sub(car, "FchResol", caratula.fch_resol.isoformat())
    _sub(car, "NroResol", caratula.nro_resol)
    _sub(car, "TmstFirmaEnv", timestamp.strftime("%Y-%m-%dT%H:%M:%S"))
    for tipo, count in sorted(Counter(tipos).items()):
        sub = etree.SubElement(car, _sii("SubTotDTE"))
        _sub(sub, "TpoDTE", tipo)
        _sub(sub, "NroDTE", count)
    set_dte.extend(elements)
    sign_element(set_dte, certificate)
    xsd.assert_valid(root, xsd.Schema.ENVIO_BOLETA if boleta else xsd.Schema.ENVIO_DTE)
    return serialize(root)


def check_envio(
    tipos: Sequence[int],
    emisores: Sequence[str],
    caratula: Caratula,
    certificate: CompanyCertificate,
) -> None:
    """Everything about an envelope that can be checked before any folio is allocated."""
    errors: list[FieldError] = []
    boleta = bool(tipos) and tipos[0] in BOLETA_TYPES
    if any((t in BOLETA_TYPES) != boleta for t in tipos):
        errors.append(
            FieldError(
                "Documentos",
                "mixed_boletas",
                "boletas (39, 41) travel in an EnvioBOLETA: send them apart from other types",
            )
        )
    cap = MAX_DTE_PER_ENVIO_BOLETA if boleta else MAX_DTE_PER_ENVIO
    if len(tipos) > cap:
        errors.append(FieldError("Documentos", "too_many", f"at most {cap} documents per envelope"))
    if {str(Rut.parse(e)) for e in emisores} != {str(Rut.parse(caratula.rut_emisor))}:
        errors.append(
            FieldError(
                "Caratula.RutEmisor",
                "emisor_mismatch",
                f"every document must be issued by {caratula.rut_emisor}; found {sorted(emisores)}",
            )
        )
    if certificate.rut is not None and Rut.parse(certificate.rut) != Rut.parse(caratula.rut_envia):
        errors.append(
            FieldError(
                "Caratula.RutEnvia",
                "rut_envia_mismatch",
                f"RutEnvia must be the certificate holder's RUT {certificate.rut}",
            )
        )
    if errors:
        raise InvalidDocumentError("the envelope cannot be built", fields=errors)

"""The receptor's signed answers to an emisor: RespuestaDTE and EnvioRecibos.

* ``RespuestaDTE`` with ``RecepcionEnvio`` — acuse de recibo of an envío (was the file readable,
  well signed, meant for us?) with one ``RecepcionDTE`` per document;
* ``RespuestaDTE`` with ``ResultadoDTE`` — aprobación comercial: each document accepted, accepted
  with discrepancies or rejected;
* ``EnvioRecibos`` — recibo de mercaderías o servicios (Ley 19.983), one signed ``Recibo`` per
  document carrying the legal ``Declaracion``.

Structures and codes follow ``schemas/respuesta-envio/RespuestaEnvioDTE_v10.xsd`` and
``schemas/recibos/{EnvioRecibos,Recibos}_v10.xsd``; every answer is signed where it finally
stands (the signature covers the element in its envelope) and checked against its schema before
it is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum
from typing import Final

from lxml import etree

from dte_core import xsd
from dte_core.envelope import NSMAP, serialize
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.received import DocumentReport, VerificationReport
from dte_core.rut import Rut
from dte_core.signing import CompanyCertificate, sign_element
from dte_core.xmlsafe import SII_NS

#: Recibos_v10.xsd ``DocumentoRecibo/Declaracion`` is ``fixed`` to this text (Ley 19.983 art. 4
#: letra b and art. 5 letra c): a recibo with any other wording is not a legal acuse.
DECLARACION_LEY_19983: Final = (
    "El acuse de recibo que se declara en este acto, de acuerdo a lo dispuesto en la letra b) "
    "del Art. 4, y la letra c) del Art. 5 de la Ley 19.983, acredita que la entrega de "
    "mercaderias o servicio(s) prestado(s) ha(n) sido recibido(s)."
)
#: RespuestaEnvioDTE_v10.xsd / Recibos_v10.xsd string limits (xs:maxLength).
MAX_GLOSA: Final = 256
MAX_NMB_ENVIO: Final = 80
MAX_RECINTO: Final = 80
#: ``NroDetalles`` has totalDigits 4; ``IdRespuesta`` and ``CodEnvio`` totalDigits 10.
MAX_DETALLES: Final = 9999
MAX_CODE: Final = 9_999_999_999


class EstadoRecepEnv(IntEnum):
    """``RecepcionEnvio/EstadoRecepEnv`` (RespuestaEnvioDTE_v10.xsd)."""

    RECIBIDO_CONFORME = 0  # Envio Recibido Conforme
    ERROR_SCHEMA = 1  # Envio Rechazado - Error de Schema
    ERROR_FIRMA = 2  # Envio Rechazado - Error de Firma
    RUT_RECEPTOR_NO_CORRESPONDE = 3  # Envio Rechazado - RUT Receptor No Corresponde
    ARCHIVO_REPETIDO = 90  # Envio Rechazado - Archivo Repetido
    ARCHIVO_ILEGIBLE = 91  # Envio Rechazado - Archivo Ilegible
    OTROS = 99  # Envio Rechazado - Otros


class EstadoRecepDTE(IntEnum):
    """``RecepcionDTE/EstadoRecepDTE`` (RespuestaEnvioDTE_v10.xsd)."""

    RECIBIDO_OK = 0  # DTE Recibido OK
    ERROR_FIRMA = 1  # DTE No Recibido - Error de Firma
    ERROR_RUT_EMISOR = 2  # DTE No Recibido - Error en RUT Emisor
    ERROR_RUT_RECEPTOR = 3  # DTE No Recibido - Error en RUT Receptor
    REPETIDO = 4  # DTE No Recibido - DTE Repetido
    OTROS = 99  # DTE No Recibido - Otros


class EstadoDTE(IntEnum):
    """``ResultadoDTE/EstadoDTE``, the aprobación comercial (RespuestaEnvioDTE_v10.xsd)."""

    ACEPTADO_OK = 0  # DTE Aceptado OK
    ACEPTADO_CON_DISCREPANCIAS = 1  # DTE Aceptado con Discrepancias
    RECHAZADO = 2  # DTE Rechazado


@dataclass(frozen=True)
class DteRef:
    """The identification of a received document every answer quotes back."""

    tipo_dte: int
    folio: int
    fecha_emision: date
    rut_emisor: str
    rut_receptor: str
    monto_total: int


@dataclass(frozen=True)
class Responde:
    """Who answers whom: ``RutResponde`` is us (the receptor), ``RutRecibe`` the emisor."""

    rut_responde: str
    rut_recibe: str
    nmb_contacto: str | None = None
    fono_contacto: str | None = None
    mail_contacto: str | None = None


@dataclass(frozen=True)
class RecepcionDTE:
    ref: DteRef
    estado: EstadoRecepDTE
    glosa: str = ""


@dataclass(frozen=True)
class RecepcionEnvio:
    """The acuse of one received file."""

    nmb_envio: str  # the file name
    fch_recep: datetime
    cod_envio: int  # our own number for the envío
    envio_dte_id: str  # SetDTE/@ID
    estado: EstadoRecepEnv
    glosa: str = ""
    digest: str | None = None  # the SetDTE signature's DigestValue
    rut_emisor: str | None = None  # as in the envío's Caratula
    rut_receptor: str | None = None
    documentos: Sequence[RecepcionDTE] = field(default_factory=tuple)


@dataclass(frozen=True)
class ResultadoDTE:
    ref: DteRef
    cod_envio: int  # the CodEnvio of the acuse in which the document was received
    estado: EstadoDTE
    glosa: str = ""
    #: CodRchDsc: a negative code (totalDigits 3) the receptor chooses for the reason.
    cod_rch_dsc: int | None = None


@dataclass(frozen=True)
class Recibo:
    ref: DteRef
    recinto: str  # where the goods or services were received
    rut_firma: str | None = None  # default: the certificate holder's RUT


def _sii(tag: str) -> str:
    return f"{{{SII_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: object) -> etree._Element:
    el = etree.SubElement(parent, _sii(tag))
    el.text = str(text)
    return el


def _clip(text: str, limit: int) -> str:
    """Glosas come from our verifier's messages: keep them within the schema's limit."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."  # ISO-8859-1 has no …


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _rut(value: str) -> str:
    return str(Rut.parse(value))


def _ref_fields(parent: etree._Element, ref: DteRef, tipo_tag: str = "TipoDTE") -> None:
    _sub(parent, tipo_tag, ref.tipo_dte)
    _sub(parent, "Folio", ref.folio)
    _sub(parent, "FchEmis", ref.fecha_emision.isoformat())
    _sub(parent, "RUTEmisor", _rut(ref.rut_emisor))
    _sub(parent, "RUTRecep", _rut(ref.rut_receptor))
    _sub(parent, "MntTotal", ref.monto_total)


def _check_count(what: str, count: int) -> None:
    if not 1 <= count <= MAX_DETALLES:
        raise InvalidDocumentError(
            f"a response carries 1 to {MAX_DETALLES} {what}; got {count}",
            fields=[FieldError(what, "count", f"give 1 to {MAX_DETALLES}")],
        )


def _check_code(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CODE:
        raise InvalidDocumentError(
            f"{name} must be a positive number of at most 10 digits; got {value}",
            fields=[FieldError(name, "out_of_range", "1 to 9999999999")],
        )


def _respuesta(
    responde: Responde, id_respuesta: int, count: int, timestamp: datetime
) -> tuple[etree._Element, etree._Element]:
    _check_code("IdRespuesta", id_respuesta)
    root = etree.Element(_sii("RespuestaDTE"), nsmap=NSMAP)  # type: ignore[arg-type]
    root.set(f"{{{NSMAP['xsi']}}}schemaLocation", f"{SII_NS} RespuestaEnvioDTE_v10.xsd")
    root.set("version", "1.0")
    resultado = etree.SubElement(root, _sii("Resultado"), ID=f"R{id_respuesta}")
    car = etree.SubElement(resultado, _sii("Caratula"), version="1.0")
    _sub(car, "RutResponde", _rut(responde.rut_responde))
    _sub(car, "RutRecibe", _rut(responde.rut_recibe))
    _sub(car, "IdRespuesta", id_respuesta)
    _sub(car, "NroDetalles", count)
    _contact(car, responde)
    _sub(car, "TmstFirmaResp", _stamp(timestamp))
    return root, resultado


def _contact(caratula: etree._Element, responde: Responde) -> None:
    for tag, value, limit in (
        ("NmbContacto", responde.nmb_contacto, 40),
        ("FonoContacto", responde.fono_contacto, 40),
        ("MailContacto", responde.mail_contacto, 80),
    ):
        if value:
            _sub(caratula, tag, _clip(value, limit))


def _signed(root: etree._Element, signed: etree._Element, cert: CompanyCertificate) -> bytes:
    sign_element(signed, cert)
    xsd.assert_valid(root)
    return serialize(root)


def build_recepcion_envio(
    responde: Responde,
    envios: Sequence[RecepcionEnvio],
    certificate: CompanyCertificate,
    *,
    id_respuesta: int,
    timestamp: datetime,
) -> bytes:
    """The acuse de recibo (RespuestaDTE/RecepcionEnvio) for received envíos, signed."""
    _check_count("RecepcionEnvio", len(envios))
    root, resultado = _respuesta(responde, id_respuesta, len(envios), timestamp)
    for envio in envios:
        _check_code("CodEnvio", envio.cod_envio)
        el = etree.SubElement(resultado, _sii("RecepcionEnvio"))
        _sub(el, "NmbEnvio", _clip(envio.nmb_envio, MAX_NMB_ENVIO) or "envio.xml")
        _sub(el, "FchRecep", _stamp(envio.fch_recep))
        _sub(el, "CodEnvio", envio.cod_envio)
        _sub(el, "EnvioDTEID", _clip(envio.envio_dte_id, MAX_NMB_ENVIO) or "-")
        if envio.digest:
            _sub(el, "Digest", envio.digest)
        if envio.rut_emisor:
            _sub(el, "RutEmisor", _rut(envio.rut_emisor))
        if envio.rut_receptor:
            _sub(el, "RutReceptor", _rut(envio.rut_receptor))
        _sub(el, "EstadoRecepEnv", int(envio.estado))
        _sub(el, "RecepEnvGlosa", _clip(envio.glosa or envio.estado.name, MAX_GLOSA))
        if envio.documentos:
            _sub(el, "NroDTE", len(envio.documentos))
        for doc in envio.documentos:
            rec = etree.SubElement(el, _sii("RecepcionDTE"))
            _ref_fields(rec, doc.ref)
            _sub(rec, "EstadoRecepDTE", int(doc.estado))
            _sub(rec, "RecepDTEGlosa", _clip(doc.glosa or doc.estado.name, MAX_GLOSA))
    return _signed(root, resultado, certificate)


def build_resultado_dte(
    responde: Responde,
    resultados: Sequence[ResultadoDTE],
    certificate: CompanyCertificate,
    *,
    id_respuesta: int,
    timestamp: datetime,
) -> bytes:
    """The aprobación comercial (RespuestaDTE/ResultadoDTE): accept or reject each document."""
    _check_count("ResultadoDTE", len(resultados))
    root, resultado = _respuesta(responde, id_respuesta, len(resultados), timestamp)
    for item in resultados:
        _check_code("CodEnvio", item.cod_envio)
        if item.cod_rch_dsc is not None and not -999 <= item.cod_rch_dsc <= -1:
            raise InvalidDocumentError(
                f"CodRchDsc must be a negative number of up to 3 digits; got {item.cod_rch_dsc}",
                fields=[FieldError("CodRchDsc", "out_of_range", "-1 to -999")],
            )
        el = etree.SubElement(resultado, _sii("ResultadoDTE"))
        _ref_fields(el, item.ref)
        _sub(el, "CodEnvio", item.cod_envio)
        _sub(el, "EstadoDTE", int(item.estado))
        _sub(el, "EstadoDTEGlosa", _clip(item.glosa or item.estado.name, MAX_GLOSA))
        if item.cod_rch_dsc is not None:
            _sub(el, "CodRchDsc", item.cod_rch_dsc)
    return _signed(root, resultado, certificate)


def build_envio_recibos(
    responde: Responde,
    recibos: Sequence[Recibo],
    certificate: CompanyCertificate,
    *,
    timestamp: datetime,
) -> bytes:
    """EnvioRecibos (Ley 19.983): each Recibo signed in the envelope, then the SetRecibos."""
    if not recibos:
        raise InvalidDocumentError(
            "an EnvioRecibos needs at least one recibo",
            fields=[FieldError("Recibo", "empty", "give at least one document")],
        )
    root = etree.Element(_sii("EnvioRecibos"), nsmap=NSMAP)  # type: ignore[arg-type]
    root.set(f"{{{NSMAP['xsi']}}}schemaLocation", f"{SII_NS} EnvioRecibos_v10.xsd")
    root.set("version", "1.0")
    set_recibos = etree.SubElement(root, _sii("SetRecibos"), ID="SetDteRecibidos")
    car = etree.SubElement(set_recibos, _sii("Caratula"), version="1.0")
    _sub(car, "RutResponde", _rut(responde.rut_responde))
    _sub(car, "RutRecibe", _rut(responde.rut_recibe))
    _contact(car, responde)
    _sub(car, "TmstFirmaEnv", _stamp(timestamp))
    documentos = []
    seen: set[str] = set()
    for recibo in recibos:
        rut_firma = recibo.rut_firma or certificate.rut
        if not rut_firma:
            raise InvalidDocumentError(
                "the certificate carries no RUT: give RutFirma, the RUT of the person signing",
                fields=[FieldError("Recibo.RutFirma", "required", "the signer's RUT")],
            )
        ref_id = f"T{recibo.ref.tipo_dte}F{recibo.ref.folio}"
        if ref_id in seen:
            raise InvalidDocumentError(
                f"tipo {recibo.ref.tipo_dte} folio {recibo.ref.folio} appears twice",
                fields=[FieldError("Recibo", "duplicate", "one recibo per document")],
            )
        seen.add(ref_id)
        recinto = _clip(recibo.recinto, MAX_RECINTO)
        if not recinto:
            raise InvalidDocumentError(
                "Recinto (where the goods or services were received) is required",
                fields=[FieldError("Recibo.Recinto", "required", "e.g. the warehouse address")],
            )
        el = etree.SubElement(set_recibos, _sii("Recibo"), version="1.0")
        doc = etree.SubElement(el, _sii("DocumentoRecibo"), ID=ref_id)
        _ref_fields(doc, recibo.ref, tipo_tag="TipoDoc")
        _sub(doc, "Recinto", recinto)
        _sub(doc, "RutFirma", _rut(rut_firma))
        _sub(doc, "Declaracion", DECLARACION_LEY_19983)
        _sub(doc, "TmstFirmaRecibo", _stamp(timestamp))
        documentos.append(doc)
    for doc in documentos:  # each in its final place, before the set that covers them
        sign_element(doc, certificate)
    return _signed(root, set_recibos, certificate)


# --------------------------------------------------------------- from a verification report


def dte_ref(doc: DocumentReport) -> DteRef | None:
    """The reference of a verified document, or None when it lacks a field the answer needs."""
    try:
        if (
            doc.tipo_dte is None
            or doc.folio is None
            or doc.fecha_emision is None
            or doc.monto_total is None
        ):
            return None
        return DteRef(
            tipo_dte=doc.tipo_dte,
            folio=doc.folio,
            fecha_emision=date.fromisoformat(doc.fecha_emision),
            rut_emisor=_rut(doc.rut_emisor or ""),
            rut_receptor=_rut(doc.rut_receptor or ""),
            monto_total=doc.monto_total,
        )
    except (ValueError, InvalidDocumentError):
        return None


def recepcion_dte_for(
    doc: DocumentReport, ref: DteRef, *, company_rut: str, repeated: bool = False
) -> RecepcionDTE:
    """EstadoRecepDTE for one document, in the schema's order of gravity."""
    if not (doc.signature.valid and doc.ted.valid and doc.caf.valid):
        failed = [c for c in (doc.signature, doc.ted, doc.caf) if not c.valid]
        return RecepcionDTE(ref, EstadoRecepDTE.ERROR_FIRMA, "; ".join(failed[0].errors))
    if Rut.parse(ref.rut_receptor) != Rut.parse(company_rut):
        return RecepcionDTE(
            ref, EstadoRecepDTE.ERROR_RUT_RECEPTOR, f"RUTRecep no es {Rut.parse(company_rut)}"
        )
    if repeated:
        return RecepcionDTE(ref, EstadoRecepDTE.REPETIDO, "DTE ya recibido")
    return RecepcionDTE(ref, EstadoRecepDTE.RECIBIDO_OK, "DTE Recibido OK")


def recepcion_envio_for(
    report: VerificationReport,
    *,
    company_rut: str,
    nmb_envio: str,
    cod_envio: int,
    fch_recep: datetime,
    repeated: frozenset[tuple[str, int, int]] = frozenset(),
) -> RecepcionEnvio:
    """The acuse of one verified file: envelope state first, then one RecepcionDTE per document.

    ``repeated`` holds ``(rut_emisor, tipo_dte, folio)`` of documents received before.
    """
    documentos = []
    for doc in report.documents:
        ref = dte_ref(doc)
        if ref is not None:
            key = (ref.rut_emisor, ref.tipo_dte, ref.folio)
            documentos.append(
                recepcion_dte_for(doc, ref, company_rut=company_rut, repeated=key in repeated)
            )
    envelope = report.envelope
    estado, glosa = EstadoRecepEnv.RECIBIDO_CONFORME, "Envio Recibido Conforme"
    receptor = envelope.rut_receptor if envelope else None
    if not report.xsd.valid:
        estado, glosa = EstadoRecepEnv.ERROR_SCHEMA, "; ".join(report.xsd.errors[:2])
    elif not all(s.valid for s in report.envelope_signatures) or (
        envelope is not None and not report.envelope_signatures
    ):
        estado, glosa = EstadoRecepEnv.ERROR_FIRMA, "la firma del SetDTE no es valida"
    elif receptor and _same_rut(receptor, company_rut) is False:
        estado, glosa = EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE, f"RutReceptor {receptor}"
    elif not documentos:
        estado, glosa = EstadoRecepEnv.OTROS, "el envio no contiene documentos legibles"
    elif all(d.estado is EstadoRecepDTE.REPETIDO for d in documentos):
        estado, glosa = EstadoRecepEnv.ARCHIVO_REPETIDO, "Envio ya recibido"
    first = report.documents[0] if report.documents else None
    return RecepcionEnvio(
        nmb_envio=nmb_envio,
        fch_recep=fch_recep,
        cod_envio=cod_envio,
        envio_dte_id=(envelope.set_id if envelope else None)
        or (first.id if first else None)
        or "-",
        estado=estado,
        glosa=glosa,
        digest=envelope.digest if envelope else None,
        rut_emisor=Rut.canonical(envelope.rut_emisor) if envelope else None,
        rut_receptor=Rut.canonical(receptor),
        documentos=documentos,
    )


def _same_rut(a: str, b: str) -> bool | None:
    try:
        return Rut.parse(a) == Rut.parse(b)
    except InvalidDocumentError:
        return None

"""What the SII answers, as value objects, and the parsers that read the manuals' formats."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from dte_core.sii.codes import (
    CodigoReclamo,
    EstadoBoleta,
    EstadoDte,
    EstadoEnvio,
    EstadoEnvioBoleta,
    EstadoSesion,
    UploadStatus,
)
from dte_core.sii.errors import (
    SiiProtocolError,
    SiiQueryError,
    SiiTokenExpiredError,
)
from dte_core.sii.soap import field as respuesta_field
from dte_core.sii.soap import parse_xml
from dte_core.xmlsafe import local_name


@dataclass(frozen=True)
class UploadReceipt:
    """``<RECEPCIONDTE>`` (UPL §2.2): the SII took the file; ``track_id`` follows it."""

    status: UploadStatus
    track_id: str | None
    rut_sender: str | None
    rut_company: str | None
    file: str | None
    timestamp: str | None
    errors: tuple[str, ...] = ()


def parse_recepcion_dte(data: bytes) -> UploadReceipt:
    root = parse_xml(data, "upload answer")
    if local_name(root) != "RECEPCIONDTE":
        raise SiiProtocolError(f"the upload answer is <{local_name(root)}>, not <RECEPCIONDTE>")
    status_text = (root.findtext("STATUS") or "").strip()
    if not status_text.lstrip("-").isdigit():
        raise SiiProtocolError(f"<RECEPCIONDTE> has no numeric STATUS ({status_text!r})")
    return UploadReceipt(
        status=UploadStatus.of(int(status_text)),
        track_id=(root.findtext("TRACKID") or "").strip() or None,
        rut_sender=(root.findtext("RUTSENDER") or "").strip() or None,
        rut_company=(root.findtext("RUTCOMPANY") or "").strip() or None,
        file=(root.findtext("FILE") or "").strip() or None,
        timestamp=(root.findtext("TIMESTAMP") or "").strip() or None,
        errors=tuple((e.text or "").strip() for e in root.iterfind("DETAIL/ERROR")),
    )


@dataclass(frozen=True)
class EnvioStatus:
    """QueryEstUp ``getEstUp`` (EUP §3.2–3.4). Counts come only with EPR."""

    track_id: str | None
    estado: EstadoEnvio
    glosa: str | None
    num_atencion: str | None
    tipo_docto: int | None = None
    informados: int = 0
    aceptados: int = 0
    rechazados: int = 0
    reparos: int = 0
    #: ``(TIPO_DOCTO, INFORMADOS, ACEPTADOS, RECHAZADOS, REPAROS)`` per type; the counts above
    #: are their sums (RESP_BODY repeats the group when the envío mixes types).
    por_tipo: tuple[tuple[int, int, int, int, int], ...] = ()

    @property
    def final(self) -> bool:
        return self.estado.final


def _session_error(estado: str | None, glosa: str | None) -> None:
    if estado in {e.value for e in EstadoSesion}:
        meaning = EstadoSesion(estado).glosa
        raise SiiTokenExpiredError(
            f"the SII refused the token: {estado} {meaning}", estado=estado, glosa=glosa
        )


def _int(text: str | None) -> int:
    return int(text) if text and text.strip().lstrip("-").isdigit() else 0


#: EUP prints two states differently in chapter 4 than in its table §3.3 (4.2 "SDK" for SOK,
#: 4.6 "PRD" for PDR); both spellings are read as the table's.
_EST_UP_ALIASES = {"SDK": "SOK", "PRD": "PDR"}


def parse_est_up(respuesta: etree._Element) -> EnvioStatus:
    estado = respuesta_field(respuesta, "ESTADO")
    estado = _EST_UP_ALIASES.get(estado or "", estado)
    glosa = respuesta_field(respuesta, "GLOSA")
    _session_error(estado, glosa)
    if estado not in {e.value for e in EstadoEnvio}:
        err = respuesta_field(respuesta, "ERR_CODE")
        raise SiiQueryError(
            f"QueryEstUp answered ESTADO {estado!r} ({glosa or 'no GLOSA'}; ERR_CODE {err})",
            estado=estado,
        )
    groups = _count_groups(respuesta)
    return EnvioStatus(
        track_id=respuesta_field(respuesta, "TRACKID"),
        estado=EstadoEnvio(estado),
        glosa=glosa,
        num_atencion=respuesta_field(respuesta, "NUM_ATENCION"),
        tipo_docto=groups[0][0] if groups else None,
        informados=sum(g[1] for g in groups),
        aceptados=sum(g[2] for g in groups),
        rechazados=sum(g[3] for g in groups),
        reparos=sum(g[4] for g in groups),
        por_tipo=tuple(groups),
    )


_COUNTS = ("INFORMADOS", "ACEPTADOS", "RECHAZADOS", "REPAROS")


def _count_groups(respuesta: etree._Element) -> list[tuple[int, int, int, int, int]]:
    """RESP_BODY read in document order: each TIPO_DOCTO opens a group of counts."""
    body = respuesta.find("{*}RESP_BODY")
    groups: list[list[int]] = []
    for el in body if body is not None else ():
        if not isinstance(el.tag, str):
            continue
        name = local_name(el)
        if name == "TIPO_DOCTO":
            groups.append([_int(el.text), 0, 0, 0, 0])
        elif name in _COUNTS:
            if not groups:
                groups.append([0, 0, 0, 0, 0])
            groups[-1][1 + _COUNTS.index(name)] = _int(el.text)
    return [(g[0], g[1], g[2], g[3], g[4]) for g in groups]


@dataclass(frozen=True)
class DteStatus:
    """QueryEstDte ``getEstDte`` for one document (EDT §3.2–3.3)."""

    estado: EstadoDte
    glosa: str | None
    err_code: int | None
    glosa_err: str | None
    num_atencion: str | None


def parse_est_dte(respuesta: etree._Element) -> DteStatus:
    estado = respuesta_field(respuesta, "ESTADO")
    # EDT prints GLOSA in §3.4 and GLOSA_ESTADO in chapter 4: accept both.
    glosa = respuesta_field(respuesta, "GLOSA_ESTADO") or respuesta_field(respuesta, "GLOSA")
    _session_error(estado, glosa)
    if estado not in {e.value for e in EstadoDte}:
        raise SiiQueryError(
            f"QueryEstDte answered ESTADO {estado!r} ({glosa or 'no GLOSA'})", estado=estado
        )
    err = respuesta_field(respuesta, "ERR_CODE")
    return DteStatus(
        estado=EstadoDte(estado),
        glosa=glosa,
        err_code=int(err) if err and err.lstrip("-").isdigit() else None,
        glosa_err=respuesta_field(respuesta, "GLOSA_ERR"),
        num_atencion=respuesta_field(respuesta, "NUM_ATENCION"),
    )


# --------------------------------------------------------------------------- boleta REST


@dataclass(frozen=True)
class BoletaReceipt:
    """Answer of ``POST boleta.electronica.envio``."""

    track_id: str
    estado: EstadoEnvioBoleta
    rut_emisor: str | None
    rut_envia: str | None
    fecha_recepcion: str | None
    file: str | None


@dataclass(frozen=True)
class BoletaDetalle:
    tipo: int
    folio: int
    estado: EstadoBoleta
    descripcion: str | None
    errores: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoletaEnvioStatus:
    """Answer of ``GET boleta.electronica.envio/{rut}-{dv}-{trackid}``."""

    track_id: str
    estado: EstadoEnvioBoleta
    estadistica: tuple[dict[str, int], ...] = ()
    detalle: tuple[BoletaDetalle, ...] = field(default_factory=tuple)

    @property
    def final(self) -> bool:
        return self.estado.final

    def total(self, key: str) -> int:
        return sum(int(row.get(key, 0)) for row in self.estadistica)


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SiiProtocolError(f"the {what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SiiProtocolError(f"the {what} is not a JSON object")
    return value


def _estado_boleta(value: object, what: str) -> EstadoEnvioBoleta:
    if value not in {e.value for e in EstadoEnvioBoleta}:
        raise SiiProtocolError(f"the {what} carries an unknown estado {value!r}")
    estado: EstadoEnvioBoleta = EstadoEnvioBoleta(str(value))
    return estado


def _estado_documento(value: object) -> EstadoBoleta:
    if value not in {e.value for e in EstadoBoleta}:
        raise SiiProtocolError(f"unknown boleta estado {value!r}")
    estado: EstadoBoleta = EstadoBoleta(str(value))
    return estado


def parse_boleta_receipt(data: bytes) -> BoletaReceipt:
    body = _json(data, "boleta upload answer")
    if "trackid" not in body:
        raise SiiProtocolError("the boleta upload answer carries no trackid")
    return BoletaReceipt(
        track_id=str(body["trackid"]),
        estado=_estado_boleta(body.get("estado"), "boleta upload answer"),
        rut_emisor=body.get("rut_emisor"),
        rut_envia=body.get("rut_envia"),
        fecha_recepcion=body.get("fecha_recepcion"),
        file=body.get("file"),
    )


def parse_boleta_status(data: bytes) -> BoletaEnvioStatus:
    body = _json(data, "boleta status answer")
    detalle = []
    for row in body.get("detalle_rep_rech") or []:
        detalle.append(
            BoletaDetalle(
                tipo=int(row.get("tipo", 0)),
                folio=int(row.get("folio", 0)),
                estado=_estado_documento(row.get("estado")),
                descripcion=row.get("descripcion"),
                errores=tuple(str(e.get("descripcion", "")) for e in row.get("error") or []),
            )
        )
    return BoletaEnvioStatus(
        track_id=str(body.get("trackid", "")),
        estado=_estado_boleta(body.get("estado"), "boleta status answer"),
        estadistica=tuple(
            {k: int(v) for k, v in row.items() if isinstance(v, int)}
            for row in body.get("estadistica") or []
        ),
        detalle=tuple(detalle),
    )


def parse_boleta_estado(data: bytes) -> EstadoBoleta:
    """Answer of ``GET boleta.electronica.{rut}-{dv}-{tipo}-{folio}.estado``: one boleta."""
    return _estado_documento(str(_json(data, "boleta status").get("estado", "")))


# --------------------------------------------------------------------------- reclamo


@dataclass(frozen=True)
class EventoDoc:
    """One ``listaEventosDoc`` entry of listarEventosHistDoc (RCL annex)."""

    cod_evento: str
    desc_evento: str | None
    rut_responsable: str | None
    fecha_evento: str | None


@dataclass(frozen=True)
class ReclamoResult:
    codigo: CodigoReclamo
    descripcion: str | None
    eventos: tuple[EventoDoc, ...] = ()

    @property
    def ok(self) -> bool:
        return self.codigo is CodigoReclamo.OK


def parse_reclamo_return(ret: etree._Element) -> ReclamoResult:
    code = (ret.findtext("{*}codResp") or "").strip()
    if not code.lstrip("-").isdigit() or int(code) not in {c.value for c in CodigoReclamo}:
        raise SiiProtocolError(f"unknown codResp {code!r} from registroreclamodteservice")
    eventos = tuple(
        EventoDoc(
            cod_evento=(ev.findtext("{*}codEvento") or "").strip(),
            desc_evento=ev.findtext("{*}descEvento"),
            rut_responsable=_rut(ev.findtext("{*}rutResponsable"), ev.findtext("{*}dvResponsable")),
            fecha_evento=ev.findtext("{*}fechaEvento"),
        )
        for ev in ret.iterfind("{*}listaEventosDoc")
    )
    return ReclamoResult(CodigoReclamo(int(code)), ret.findtext("{*}descResp"), eventos)


def _rut(number: str | None, dv: str | None) -> str | None:
    return f"{number.strip()}-{(dv or '').strip()}" if number else None

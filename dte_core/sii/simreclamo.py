"""The simulated registroreclamodteservice: the event rules of RCL v1.2, "Validaciones" column."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from lxml import etree

from dte_core.sii import soap
from dte_core.sii.codes import (
    PLAZO_RECLAMO_DIAS,
    TIPOS_RECLAMABLES,
    AccionDoc,
    CodigoReclamo,
    EstadoSesion,
)
from dte_core.sii.errors import SiiProtocolError
from dte_core.sii.simstate import Documento, SimulatedSii, days

if TYPE_CHECKING:
    from dte_core.sii.simulator import SiiSimulator

_XML: Final = "text/xml; charset=UTF-8"


def _fecha(ts: float) -> str:
    """RCL annex: ``fechaEvento`` 29-12-2016 12:05:36."""
    return datetime.fromtimestamp(ts).strftime("%d-%m-%Y %H:%M:%S")


def _reply(code: CodigoReclamo, xxx: str = "") -> tuple[CodigoReclamo, str]:
    return code, code.glosa.replace("XXX", xxx) if xxx else code.glosa


class ReclamoService:
    def __init__(self, sii: SimulatedSii) -> None:
        self.sii = sii

    def _find(self, rut_emisor: str, tipo: int, folio: int) -> Documento | None:
        self.sii.settle()
        return self.sii.documents.get((rut_emisor, tipo, folio))

    def _authorized(self, user: str, doc: Documento) -> bool:
        reps = self.sii.config.representantes
        return reps is None or doc.rut_receptor in reps.get(user, frozenset())

    def ingresar(
        self, user: str, rut_emisor: str, tipo: int, folio: int, accion: str
    ) -> tuple[CodigoReclamo, str]:
        if tipo not in TIPOS_RECLAMABLES:
            return _reply(CodigoReclamo.TIPO_NO_CORRESPONDE)
        if accion not in {a.value for a in AccionDoc}:
            return _reply(CodigoReclamo.ACCION_INVALIDA)
        action = AccionDoc(accion)
        doc = self._find(rut_emisor, tipo, folio)
        if doc is None:
            return _reply(CodigoReclamo.NO_RECIBIDO)
        if not self._authorized(user, doc):
            return _reply(CodigoReclamo.SOLO_RECEPTOR)
        if self.sii.now() - doc.received_at > days(PLAZO_RECLAMO_DIAS):
            return _reply(CodigoReclamo.PLAZO_VENCIDO)
        previous = {event for event, _, _ in doc.events}
        reclamos = sorted(p for p in previous if AccionDoc(p).reclamo)
        if reclamos:
            xxx = ", ".join(reclamos)
            if action is AccionDoc.ERM:
                return _reply(CodigoReclamo.ERM_TRAS_RECLAMO, xxx)
            if action is AccionDoc.ACD:
                return _reply(CodigoReclamo.ACEPTACION_TRAS_RECLAMO, xxx)
            if action in previous:
                return _reply(CodigoReclamo.EVENTO_PREVIO)
        elif action in previous:
            return _reply(CodigoReclamo.EVENTO_PREVIO)
        elif action.reclamo and AccionDoc.ACD in previous:
            return _reply(CodigoReclamo.RECLAMO_TRAS_ACEPTACION)
        elif action.reclamo and AccionDoc.ERM in previous:
            return _reply(CodigoReclamo.RECLAMO_TRAS_ERM)
        doc.events.append((action.value, user, self.sii.now()))
        return _reply(CodigoReclamo.OK)

    def listar(
        self, rut_emisor: str, tipo: int, folio: int
    ) -> tuple[CodigoReclamo, str, list[dict[str, str]]]:
        if tipo not in TIPOS_RECLAMABLES:
            return (*_reply(CodigoReclamo.TIPO_NO_CORRESPONDE), [])
        doc = self._find(rut_emisor, tipo, folio)
        if doc is None:
            return (*_reply(CodigoReclamo.NO_RECIBIDO), [])
        if not doc.events:
            return (*_reply(CodigoReclamo.SIN_EVENTOS), [])
        eventos = []
        for accion, user, when in doc.events:
            number, _, dv = user.partition("-")
            eventos.append(
                {
                    "codEvento": accion,
                    "descEvento": AccionDoc(accion).glosa,
                    "rutResponsable": number,
                    "dvResponsable": dv,
                    "fechaEvento": _fecha(when),
                }
            )
        return (*_reply(CodigoReclamo.LISTADO_EVENTOS), eventos)

    def cedible(self, rut_emisor: str, tipo: int, folio: int) -> tuple[CodigoReclamo, str]:
        if tipo not in TIPOS_RECLAMABLES:
            return _reply(CodigoReclamo.NO_CEDIBLE_TIPO)
        doc = self._find(rut_emisor, tipo, folio)
        if doc is None:
            return _reply(CodigoReclamo.NO_RECIBIDO)
        events = {event for event, _, _ in doc.events}
        if any(AccionDoc(e).reclamo for e in events):
            return _reply(CodigoReclamo.NO_CEDIBLE_RECLAMADO)
        if events & {AccionDoc.ACD.value, AccionDoc.ERM.value}:
            return _reply(CodigoReclamo.CEDIBLE)
        if self.sii.now() - doc.received_at > days(PLAZO_RECLAMO_DIAS):
            return _reply(CodigoReclamo.CEDIBLE_PLAZO)
        return _reply(CodigoReclamo.SIN_RECLAMO_NI_RECIBO)

    def fecha_recepcion(self, rut_emisor: str, tipo: int, folio: int) -> str:
        doc = self._find(rut_emisor, tipo, folio)
        return _fecha(doc.received_at) if doc is not None else ""


# --------------------------------------------------------------------------- wire format


def answer(app: SiiSimulator, headers: dict[str, str], body: bytes) -> tuple[str, bytes, str]:
    """One registroreclamodteservice call: document/literal in, ``<return>`` out."""
    from dte_core.sii.simulator import _cookie

    call = soap.parse_rpc_request(body)  # same Body/child/params shape, literal namespaces
    user = app.sii.session(_cookie(headers.get("cookie", ""), "TOKEN"))
    if isinstance(user, EstadoSesion):
        # the JAX-WS service answers an unauthenticated call with an HTTP 401 page
        return "401 Unauthorized", b"<html><body>401 - No autenticado</body></html>", "text/html"
    p = call.params
    try:
        rut_emisor = f"{int(p.get('rutEmisor', ''))}-{p.get('dvEmisor', '').strip().upper()}"
        tipo, folio = int(p.get("tipoDoc", "")), int(p.get("folio", ""))
    except ValueError:
        ret = etree.Element("return")
        etree.SubElement(ret, "codResp").text = str(CodigoReclamo.RUT_EMISOR_ERRONEO.value)
        etree.SubElement(ret, "descResp").text = CodigoReclamo.RUT_EMISOR_ERRONEO.glosa
        return "200 OK", soap.literal_response(call.method, ret), _XML
    service = app.reclamos
    if call.method == "consultarFechaRecepcionSii":
        text = service.fecha_recepcion(rut_emisor, tipo, folio)
        return "200 OK", soap.literal_response(call.method, text), _XML
    eventos: list[dict[str, str]] = []
    if call.method == "ingresarAceptacionReclamoDoc":
        code, desc = service.ingresar(user, rut_emisor, tipo, folio, p.get("accionDoc", ""))
    elif call.method == "listarEventosHistDoc":
        code, desc, eventos = service.listar(rut_emisor, tipo, folio)
    elif call.method == "consultarDocDteCedible":
        code, desc = service.cedible(rut_emisor, tipo, folio)
    else:
        raise SiiProtocolError(f"registroreclamodteservice has no operation {call.method}")
    ret = etree.Element("return")
    etree.SubElement(ret, "codResp").text = str(code.value)
    etree.SubElement(ret, "descResp").text = desc
    for evento in eventos:
        item = etree.SubElement(ret, "listaEventosDoc")
        for name, value in evento.items():
            etree.SubElement(item, name).text = value
    return "200 OK", soap.literal_response(call.method, ret), _XML

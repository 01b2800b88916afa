"""The simulated boleta REST API (``/recursos/v1/boleta.electronica.*``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from dte_core.sii import soap
from dte_core.sii.codes import EstadoEnvioBoleta, EstadoSesion, EstadoToken

if TYPE_CHECKING:
    from dte_core.sii.simulator import SiiSimulator

PREFIX: Final = "/recursos/v1/boleta.electronica"
_STATUS_PATH: Final = re.compile(rf"^{re.escape(PREFIX)}\.envio/(\d+)-([\dkK])-(\d+)$")
#: Consulta de estado de una boleta: ``boleta.electronica.{rut}-{dv}-{tipo}-{folio}.estado``
_DOC_PATH: Final = re.compile(rf"^{re.escape(PREFIX)}\.(\d+)-([\dkK])-(39|41)-(\d+)\.estado$")
_XML: Final = "application/xml; charset=UTF-8"
_JSON: Final = "application/json; charset=UTF-8"

Reply = tuple[str, bytes, str]


def route(
    app: SiiSimulator, method: str, path: str
) -> tuple[str, Callable[[str, dict[str, str], bytes], Reply] | None]:
    if method == "GET" and path == PREFIX + ".semilla":
        return "boleta.semilla", lambda p, h, b: _semilla(app)
    if method == "POST" and path == PREFIX + ".token":
        return "boleta.token", lambda p, h, b: _token(app, b)
    if method == "POST" and path == PREFIX + ".envio":
        return "boleta.envio", lambda p, h, b: _envio(app, h, b)
    if method == "GET" and _STATUS_PATH.match(path):
        return "boleta.estado", lambda p, h, b: _estado(app, p, h)
    if method == "GET" and _DOC_PATH.match(path):
        return "boleta.documento", lambda p, h, b: _documento(app, p, h)
    return "", None


def _documento(app: SiiSimulator, path: str, headers: dict[str, str]) -> Reply:
    """One boleta the SII holds (DOK), or 404 when it has not received it."""
    from dte_core.sii.simulator import json_body

    if isinstance(_user(app, headers), EstadoSesion):
        return _unauthorized()
    match = _DOC_PATH.match(path)
    assert match is not None  # route() matched it
    rut, dv, tipo, folio = match.groups()
    app.sii.settle()
    doc = app.sii.documents.get((f"{rut}-{dv.upper()}", int(tipo), int(folio)))
    if doc is None:
        return "404 Not Found", json_body({"error": "Boleta no recibida por el SII"}), _JSON
    answer = {"estado": "DOK", "descripcion": "Documento aceptado", "trackid": int(doc.track_id)}
    return "200 OK", json_body(answer), _JSON


def _semilla(app: SiiSimulator) -> Reply:
    body = soap.respuesta([("ESTADO", "00")], [("SEMILLA", app.sii.new_seed())], body_first=True)
    return "200 OK", body, _XML


def _token(app: SiiSimulator, body: bytes) -> Reply:
    estado, token, glosa = app.sii.token_from_seed(body)
    if estado is not EstadoToken.OK:
        return "200 OK", soap.respuesta([("ESTADO", estado.value), ("GLOSA", glosa)]), _XML
    hdr = [("ESTADO", "00"), ("GLOSA", glosa)]
    answer = soap.respuesta(hdr, [("TOKEN", token)], body_first=True)
    return "200 OK", answer, _XML


def _user(app: SiiSimulator, headers: dict[str, str]) -> str | EstadoSesion:
    """The RUT the TOKEN cookie belongs to, or why the token is refused."""
    from dte_core.sii.simulator import _cookie

    return app.sii.session(_cookie(headers.get("cookie", ""), "TOKEN"))


def _unauthorized() -> Reply:
    from dte_core.sii.simulator import json_body

    return "401 Unauthorized", json_body({"error": "No autorizado: TOKEN invalido"}), _JSON


def _envio(app: SiiSimulator, headers: dict[str, str], body: bytes) -> Reply:
    from dte_core.sii.simulator import _text, json_body, parse_multipart

    user = _user(app, headers)
    if isinstance(user, EstadoSesion):
        return _unauthorized()
    form = parse_multipart(headers.get("content-type", ""), body)
    sender = f"{_text(form, 'rutSender')}-{_text(form, 'dvSender').upper()}"
    company = f"{_text(form, 'rutCompany')}-{_text(form, 'dvCompany').upper()}"
    filename, data = form.get("archivo", ("", b""))
    if user != sender:
        return "403 Forbidden", json_body({"error": "El Sender no tiene permiso"}), _JSON
    status, envio, errors = app.sii.receive(
        rut_sender=sender, rut_company=company, filename=filename, data=data, boleta=True
    )
    if envio is None:
        message = f"{status.glosa}: {'; '.join(errors)}".rstrip(": ")
        return "400 Bad Request", json_body({"error": message, "status": int(status)}), _JSON
    receipt = {
        "rut_emisor": company,
        "rut_envia": sender,
        "trackid": int(envio.track_id),
        "fecha_recepcion": app.sii.timestamp(),
        "estado": "REC",
        "file": filename,
    }
    return "200 OK", json_body(receipt), _JSON


def _estado(app: SiiSimulator, path: str, headers: dict[str, str]) -> Reply:
    from dte_core.sii.simulator import json_body

    if isinstance(_user(app, headers), EstadoSesion):
        return _unauthorized()
    match = _STATUS_PATH.match(path)
    assert match is not None  # route() matched it
    rut, dv, track_id = match.groups()
    envio = app.sii.envios.get(track_id)
    if envio is None or not envio.boleta or envio.rut_company != f"{rut}-{dv.upper()}":
        return "404 Not Found", json_body({"error": "trackid no encontrado"}), _JSON
    estado = EstadoEnvioBoleta(app.sii.stage(envio, poll=True))
    answer: dict[str, object] = {
        "rut_emisor": envio.rut_company,
        "rut_envia": envio.rut_sender,
        "trackid": int(envio.track_id),
        "fecha_recepcion": app.sii.timestamp(),
        "estado": estado.value,
    }
    if estado is EstadoEnvioBoleta.EPR:
        tipos = sorted({r.tipo for r in envio.results})
        answer["estadistica"] = [
            {
                "tipo": tipo,
                "informados": sum(r.tipo == tipo for r in envio.results),
                "aceptados": sum(r.tipo == tipo and r.accepted for r in envio.results),
                "rechazados": sum(r.tipo == tipo and not r.accepted for r in envio.results),
                "reparos": 0,
            }
            for tipo in tipos
        ]
        answer["detalle_rep_rech"] = [
            {
                "tipo": r.tipo,
                "folio": r.folio,
                "estado": "RCH",
                "descripcion": "Dte Rechazado",
                "error": [_error(reason) for reason in r.reasons],
            }
            for r in envio.results
            if not r.accepted
        ]
    elif estado.value in envio.glosas:
        answer["detalle_rep_rech"] = []
        answer["glosa"] = envio.glosas[estado.value]
    return "200 OK", json_body(answer), _JSON


def _error(reason: str) -> dict[str, object]:
    return {
        "seccion": "DTE",
        "linea": 0,
        "nivel": 3,
        "codigo": 1,
        "descripcion": reason,
        "detalle": None,
    }

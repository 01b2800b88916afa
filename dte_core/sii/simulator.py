"""A local SII for tests, demos and benchmarks: a plain WSGI app speaking the SII's wire formats.

Endpoints (same paths as maullin/palena, apicert/pangal and ws1/ws2):

* ``POST /DTEWS/{CrSeed,GetTokenFromSeed,QueryEstUp,QueryEstDte}.jws`` — Axis rpc/encoded SOAP;
* ``POST /cgi_dte/UPL/DTEUpload`` — multipart upload, ``RECEPCIONDTE`` answer (XML only when the
  User-Agent says ``PROG 1.0``, as UPL figura 2.3 requires; a browser gets HTML);
* ``/recursos/v1/boleta.electronica.{semilla,token,envio}`` — the boleta REST API;
* ``POST /WSREGISTRORECLAMODTE[CERT]/registroreclamodteservice`` — document/literal SOAP.

:class:`Faults` injects failures per endpoint: HTTP 5xx, slow answers, malformed bodies, and
"lost" answers (the request takes effect, the reply is a 502) — plus expired tokens.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree

from dte_core.sii import soap
from dte_core.sii.codes import (
    EstadoEnvio,
    EstadoSesion,
    EstadoToken,
    UploadStatus,
)
from dte_core.sii.errors import SiiProtocolError
from dte_core.sii.simreclamo import ReclamoService
from dte_core.sii.simstate import SimulatedSii, SimulatorConfig, parse_fecha_ddmmaaaa

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_XML = "text/xml; charset=UTF-8"


class Fault(Enum):
    SERVER_ERROR = "server_error"  # HTTP 503, nothing happens
    SLOW = "slow"  # sleep Faults.slow_seconds, then answer normally
    MALFORMED = "malformed"  # HTTP 200 with a truncated body, nothing happens
    LOST_RESPONSE = "lost_response"  # the request takes effect, then HTTP 502


@dataclass
class Faults:
    """Queues of faults by endpoint name (``"upload"``, ``"CrSeed"``, ``"boleta.envio"``…,
    or ``"*"`` for any); each queued fault hits exactly one request."""

    slow_seconds: float = 2.0
    _queues: dict[str, deque[Fault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queues.setdefault(endpoint, deque()).extend([fault] * times)

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            for key in (endpoint, "*"):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        return None


class SiiSimulator:
    """The WSGI application. ``sii`` holds the state; ``faults`` the injected failures."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.sii = SimulatedSii(config)
        self.reclamos = ReclamoService(self.sii)
        self.faults = Faults()
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers

    # ----------------------------------------------------------------- WSGI entry

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.requests.append((method, path, headers))
        endpoint, handler = self._route(method, path)
        if handler is None:
            return _send(start_response, "404 Not Found", b"not found", "text/plain")
        fault = self.faults.take(endpoint)
        if fault is Fault.SERVER_ERROR:
            return _send(start_response, "503 Service Unavailable", _HTML_503, "text/html")
        if fault is Fault.SLOW:
            time.sleep(self.faults.slow_seconds)
        try:
            status, payload, ctype = handler(path, headers, body)
        except SiiProtocolError as exc:
            status, payload, ctype = "500 Internal Server Error", soap.soap_fault(exc.message), _XML
        if fault is Fault.LOST_RESPONSE:
            return _send(start_response, "502 Bad Gateway", b"upstream reset", "text/plain")
        if fault is Fault.MALFORMED:
            payload = payload[: max(len(payload) // 2, 1)]
        return _send(start_response, status, payload, ctype)

    Handler = Callable[[str, dict[str, str], bytes], tuple[str, bytes, str]]

    def _route(self, method: str, path: str) -> tuple[str, Handler | None]:
        from dte_core.sii import simboleta

        if method == "POST" and path.startswith("/DTEWS/") and path.endswith(".jws"):
            service = path[len("/DTEWS/") : -len(".jws")]
            if service in _DTEWS:
                return service, self._dtews
        if method == "POST" and path == "/cgi_dte/UPL/DTEUpload":
            return "upload", self._upload
        if path.endswith("/registroreclamodteservice") and method == "POST":
            return "reclamo", self._reclamo
        return simboleta.route(self, method, path)

    # ----------------------------------------------------------------- DTEWS SOAP

    def _dtews(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, bytes, str]:
        service = path[len("/DTEWS/") : -len(".jws")]
        method, answer = _DTEWS[service]
        call = soap.parse_rpc_request(body)
        if call.method != method:
            raise SiiProtocolError(f"{service} has no operation {call.method}")
        inner = answer(self, call.params)
        host = headers.get("host", "maullin.sii.cl").split(":")[0]
        namespace = soap.dtews_namespace(host, service)
        return "200 OK", soap.rpc_response(namespace, method, inner), _XML

    def _seed(self, params: dict[str, str]) -> bytes:
        return soap.respuesta([("ESTADO", "00")], [("SEMILLA", self.sii.new_seed())])

    def _token(self, params: dict[str, str]) -> bytes:
        estado, token, glosa = self.sii.token_from_seed(params.get("pszXml", "").encode("utf-8"))
        if estado is not EstadoToken.OK:
            return soap.respuesta([("ESTADO", estado.value), ("GLOSA", glosa)])
        return soap.respuesta([("ESTADO", "00"), ("GLOSA", glosa)], [("TOKEN", token)])

    def _est_up(self, params: dict[str, str]) -> bytes:
        user = self.sii.session(params.get("Token"))
        if isinstance(user, EstadoSesion):
            return soap.respuesta([("ESTADO", user.value), ("GLOSA", user.glosa)])
        rut = f"{params.get('Rut', '')}-{params.get('Dv', '').upper()}"
        envio = self.sii.envios.get(params.get("TrackId", ""))
        atencion = self.sii.num_atencion()
        if envio is None or envio.rut_company != rut or envio.boleta:
            hdr = [("ESTADO", "-11"), ("ERR_CODE", "1"), ("SQL_CODE", "0"), ("SRV_CODE", "0")]
            return soap.respuesta([*hdr, ("NUM_ATENCION", atencion)])
        estado = EstadoEnvio(self.sii.stage(envio, poll=True))
        glosa = envio.glosas.get(estado.value, estado.glosa)
        hdr = [("TRACKID", envio.track_id), ("ESTADO", estado.value), ("GLOSA", glosa)]
        if estado is not EstadoEnvio.EPR:
            return soap.respuesta([*hdr, ("NUM_ATENCION", atencion)])
        body = []
        for tipo in sorted({r.tipo for r in envio.results}):
            rows = [r for r in envio.results if r.tipo == tipo]
            accepted = sum(r.accepted for r in rows)
            body += [
                ("TIPO_DOCTO", str(tipo)),
                ("INFORMADOS", str(len(rows))),
                ("ACEPTADOS", str(accepted)),
                ("RECHAZADOS", str(len(rows) - accepted)),
                ("REPAROS", "0"),
            ]
        return soap.respuesta([*hdr, ("NUM_ATENCION", atencion)], body)

    def _est_dte(self, params: dict[str, str]) -> bytes:
        user = self.sii.session(params.get("Token"))
        if isinstance(user, EstadoSesion):
            return soap.respuesta([("ESTADO", user.value), ("GLOSA", user.glosa)])
        try:
            estado = self.sii.estado_dte(
                rut_emisor=f"{params['RutCompania']}-{params['DvCompania'].upper()}",
                tipo=int(params["TipoDte"]),
                folio=int(params["FolioDte"]),
                rut_receptor=f"{params['RutReceptor']}-{params['DvReceptor'].upper()}",
                fecha=parse_fecha_ddmmaaaa(params["FechaEmisionDte"]),
                monto=int(params["MontoDte"]),
            )
        except (KeyError, ValueError):
            return soap.respuesta([("ESTADO", "-1"), ("GLOSA", "ERROR RETORNO CAMPO ESTADO")])
        glosa = "DTE Recibido" if estado.recibido else "DTE No Recibido"
        return soap.respuesta(
            [
                ("ESTADO", estado.value),
                ("GLOSA_ESTADO", glosa),
                ("ERR_CODE", str(estado.err_code)),
                ("GLOSA_ERR", estado.glosa),
                ("NUM_ATENCION", self.sii.num_atencion()),
            ]
        )

    # ----------------------------------------------------------------- DTEUpload

    def _upload(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, bytes, str]:
        form = parse_multipart(headers.get("content-type", ""), body)
        token = _cookie(headers.get("cookie", ""), "TOKEN")
        sender = f"{_text(form, 'rutSender')}-{_text(form, 'dvSender').upper()}"
        company = f"{_text(form, 'rutCompany')}-{_text(form, 'dvCompany').upper()}"
        filename, data = form.get("archivo", ("", b""))
        user = self.sii.session(token)
        errors: list[str] = []
        track_id = None
        if isinstance(user, EstadoSesion):
            status = UploadStatus.NO_AUTENTICADO
        elif user != sender:
            status = UploadStatus.SENDER_SIN_PERMISO
        else:
            status, envio, errors = self.sii.receive(
                rut_sender=sender, rut_company=company, filename=filename, data=data, boleta=False
            )
            track_id = envio.track_id if envio else None
        if "PROG 1.0" not in headers.get("user-agent", ""):
            page = f"<html><body>Envio {filename}: estado {int(status)}</body></html>"
            return "200 OK", page.encode("iso-8859-1"), "text/html"
        root = etree.Element("RECEPCIONDTE")
        for name, value in (
            ("RUTSENDER", sender),
            ("RUTCOMPANY", company),
            ("FILE", filename),
            ("TIMESTAMP", self.sii.timestamp()),
            ("STATUS", str(int(status))),
            ("TRACKID", track_id),
        ):
            if value is not None:
                etree.SubElement(root, name).text = value
        if errors:
            detail = etree.SubElement(root, "DETAIL")
            for error in errors:
                etree.SubElement(detail, "ERROR").text = error
        return "200 OK", b'<?xml version="1.0" ?>\n' + etree.tostring(root), _XML

    # ----------------------------------------------------------------- registro reclamo

    def _reclamo(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, bytes, str]:
        from dte_core.sii.simreclamo import answer

        return answer(self, headers, body)


_DTEWS: dict[str, tuple[str, Callable[[SiiSimulator, dict[str, str]], bytes]]] = {
    "CrSeed": ("getSeed", SiiSimulator._seed),
    "GetTokenFromSeed": ("getToken", SiiSimulator._token),
    "QueryEstUp": ("getEstUp", SiiSimulator._est_up),
    "QueryEstDte": ("getEstDte", SiiSimulator._est_dte),
}
_HTML_503 = b"<html><head><title>503 Service Unavailable</title></head><body>SII</body></html>"


def _send(start: StartResponse, status: str, payload: bytes, ctype: str) -> list[bytes]:
    start(status, [("Content-Type", ctype), ("Content-Length", str(len(payload)))])
    return [payload]


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _text(form: dict[str, tuple[str, bytes]], name: str) -> str:
    return form.get(name, ("", b""))[1].decode("ascii", "replace").strip()


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """RFC 1867 form fields as ``name -> (filename, bytes)``.

    UPL's own example writes ``multipart/form-data: boundary=``; it is accepted too.
    """
    content_type = content_type.replace("multipart/form-data:", "multipart/form-data;")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    form: dict[str, tuple[str, bytes]] = {}
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            form[str(name)] = (str(part.get_filename() or ""), data)
    return form


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SimulatorServer:
    """Serve a simulator on a loopback port in a background thread (``port=0``: any free one)."""

    def __init__(self, app: SiiSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SimulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI); end with :meth:`stop_listening`."""
        self._server.serve_forever()

    def stop_listening(self) -> None:
        self._server.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def json_body(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")

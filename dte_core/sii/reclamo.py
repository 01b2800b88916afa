"""Client of registroreclamodteservice (RCL v1.2): accept, claim and list events of a received DTE.

Authenticated with the token of the DTE authentication service (TOKEN cookie, RCL annex).
Registering an event is safe to repeat: a second identical call answers codResp 7 ("Evento
registrado previamente") instead of registering it twice, so the client retries it like a query.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from dte_core.sii import soap
from dte_core.sii.client import SiiClient, split_rut
from dte_core.sii.codes import AccionDoc
from dte_core.sii.errors import SiiTokenExpiredError
from dte_core.sii.responses import ReclamoResult, parse_reclamo_return

_HEADERS: Final = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": ""}


class ReclamoClient:
    def __init__(self, sii: SiiClient, *, url: str | None = None) -> None:
        self.sii = sii
        if url is None:
            real = sii.ambiente.reclamo_url
            # pointed elsewhere (the simulator): same path on the client's base URL
            path = real[real.index("/", len("https://")) :]
            url = real if sii.base_url.endswith(sii.ambiente.host) else sii.base_url + path
        self.url = url

    def _call(
        self, method: str, rut_emisor: str, tipo: int, folio: int, *extra: tuple[str, str]
    ) -> etree._Element:
        number, dv = split_rut(rut_emisor)
        params = [("rutEmisor", number), ("dvEmisor", dv), ("tipoDoc", str(tipo)),
                  ("folio", str(folio)), *extra]  # fmt: skip
        body = soap.literal_request(method, params)

        def once(token: str) -> etree._Element:
            def call() -> etree._Element:
                response = self.sii.transport.send(
                    "POST", self.url, content=body, headers={**_HEADERS, "Cookie": f"TOKEN={token}"}
                )
                if response.status_code == 401:
                    raise SiiTokenExpiredError(f"{method} answered 401: the token is not valid")
                return soap.parse_literal_response(response.content, method)

            return self.sii.transport.run(call, idempotent=True)

        return self.sii.tokens.with_token(once)

    def ingresar(self, rut_emisor: str, tipo: int, folio: int, accion: AccionDoc) -> ReclamoResult:
        """ingresarAceptacionReclamoDoc: ACD, RCD, ERM, RFP or RFT on a received document."""
        ret = self._call(
            "ingresarAceptacionReclamoDoc", rut_emisor, tipo, folio, ("accionDoc", accion.value)
        )
        return parse_reclamo_return(ret)

    def listar_eventos(self, rut_emisor: str, tipo: int, folio: int) -> ReclamoResult:
        """listarEventosHistDoc: codResp 15 with the events, 16 when there are none."""
        return parse_reclamo_return(self._call("listarEventosHistDoc", rut_emisor, tipo, folio))

    def consultar_cedible(self, rut_emisor: str, tipo: int, folio: int) -> ReclamoResult:
        """consultarDocDteCedible: 23/25 cedible, 24 reclamado, 20–22 otherwise."""
        return parse_reclamo_return(self._call("consultarDocDteCedible", rut_emisor, tipo, folio))

    def fecha_recepcion(self, rut_emisor: str, tipo: int, folio: int) -> str | None:
        """consultarFechaRecepcionSii: when the SII received the document (dd-mm-aaaa hh:mm:ss)."""
        ret = self._call("consultarFechaRecepcionSii", rut_emisor, tipo, folio)
        return (ret.text or "").strip() or None

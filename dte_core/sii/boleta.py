"""Client of the SII's boleta REST API: semilla, token, envío of EnvioBOLETA, status by track id.

Boletas (39, 41) do not go through DTEUpload: ``GET boleta.electronica.semilla``, ``POST
boleta.electronica.token`` (the same signed ``getToken`` as AUT chapter 8), ``POST
boleta.electronica.envio`` (multipart, TOKEN cookie) and ``GET
boleta.electronica.envio/{rut}-{dv}-{trackid}``. The boleta format manual caps an envío at 500
boletas (§2, "Tamaño de envío").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import httpx
from lxml import etree

from dte_core.signing import CompanyCertificate
from dte_core.sii import soap
from dte_core.sii.client import (
    DEFAULT_TOKEN_MARGIN,
    DEFAULT_TOKEN_TTL,
    TokenCache,
    caratula_ruts,
    poll_until_final,
    split_rut,
    token_of,
    upload_form,
)
from dte_core.sii.codes import Ambiente, EstadoBoleta
from dte_core.sii.errors import (
    SiiAuthError,
    SiiError,
    SiiProtocolError,
    SiiRejectedError,
    SiiTokenExpiredError,
    SiiUnavailableError,
    UploadOutcomeUnknownError,
)
from dte_core.sii.responses import (
    BoletaEnvioStatus,
    BoletaReceipt,
    parse_boleta_estado,
    parse_boleta_receipt,
    parse_boleta_status,
)
from dte_core.sii.seed import signed_seed
from dte_core.sii.transport import NotSentError, SiiTransport

T = TypeVar("T")

PREFIX: Final = "/boleta.electronica"


class BoletaClient:
    """``api_url`` serves semilla/token/status, ``envio_url`` the upload (one URL for both when
    ``base_url`` is given, e.g. the simulator's ``…/recursos/v1``)."""

    def __init__(
        self,
        certificate: CompanyCertificate,
        *,
        ambiente: Ambiente = Ambiente.CERTIFICACION,
        base_url: str | None = None,
        transport: SiiTransport | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        token_margin: float = DEFAULT_TOKEN_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.certificate = certificate
        self.api_url = (base_url or ambiente.boleta_api_url).rstrip("/")
        self.envio_url = (base_url or ambiente.boleta_envio_url).rstrip("/")
        self.transport = transport or SiiTransport()
        self.tokens = TokenCache(self._new_token, ttl=token_ttl, margin=token_margin, clock=clock)

    def _xml_once(self, method: str, path: str, **kwargs: Any) -> etree._Element:
        response = self.transport.send(method, self.api_url + path, **kwargs)
        return soap.parse_respuesta(response.content, path)

    def _seed_once(self) -> str:
        respuesta = self._xml_once(
            "GET", PREFIX + ".semilla", headers={"Accept": "application/xml"}
        )
        estado, seed = soap.field(respuesta, "ESTADO"), soap.field(respuesta, "SEMILLA")
        if estado not in ("0", "00") or not seed:
            raise SiiAuthError(f"boleta semilla refused: ESTADO {estado}", estado=estado)
        return seed

    def get_seed(self) -> str:
        return self.transport.run(self._seed_once, idempotent=True)

    def _token_once(self) -> str:
        body = signed_seed(self._seed_once(), self.certificate)
        respuesta = self._xml_once(
            "POST",
            PREFIX + ".token",
            content=body,
            headers={"Content-Type": "application/xml", "Accept": "application/xml"},
        )
        return token_of(respuesta, "boleta.electronica.token")

    def _new_token(self) -> str:
        return self.transport.run(self._token_once, idempotent=True)  # one seed per attempt

    def get_token(self, *, force: bool = False) -> str:
        return self.tokens.get(force=force)

    def upload(self, envio: bytes, *, filename: str = "EnvioBOLETA.xml") -> BoletaReceipt:
        """POST an EnvioBOLETA; never re-sent once it may have arrived (see SiiClient.upload)."""
        emisor, envia = caratula_ruts(envio)
        fields = upload_form(self.certificate.rut or envia, emisor)

        def once(token: str) -> BoletaReceipt:
            def call() -> tuple[int, bytes]:
                response = self.transport.send(
                    "POST",
                    self.envio_url + PREFIX + ".envio",
                    headers={"Cookie": f"TOKEN={token}", "Accept": "application/json"},
                    data=fields,
                    files={"archivo": (filename, envio, "text/xml")},
                )
                return response.status_code, response.content

            try:
                status, raw = self.transport.run(call, idempotent=False)
            except (NotSentError, SiiUnavailableError):
                raise
            except SiiError as exc:
                raise UploadOutcomeUnknownError(
                    f"the upload of {filename} got no receipt ({exc.message}); check the "
                    "boletas' status before uploading it again",
                    cause=exc,
                ) from exc
            if status == 401:
                raise SiiTokenExpiredError("boleta.electronica.envio answered 401 Unauthorized")
            if status >= 400:
                raise SiiRejectedError(
                    f"boleta.electronica.envio refused {filename}: HTTP {status} "
                    f"{raw.decode('utf-8', 'replace')[:200]}",
                    status=status,
                )
            try:
                return parse_boleta_receipt(raw)
            except SiiProtocolError as exc:
                raise UploadOutcomeUnknownError(
                    f"the upload of {filename} got an unreadable receipt ({exc.message})",
                    cause=exc,
                ) from exc

        return self.tokens.with_token(once)

    def _status(self, url: str, answer: Callable[[httpx.Response], T]) -> T:
        """GET a status resource with the TOKEN cookie; a 401 renews the token once."""

        def once(token: str) -> T:
            def call() -> T:
                response = self.transport.send(
                    "GET", url, headers={"Cookie": f"TOKEN={token}", "Accept": "application/json"}
                )
                if response.status_code == 401:
                    raise SiiTokenExpiredError("boleta status answered 401 Unauthorized")
                return answer(response)

            return self.transport.run(call, idempotent=True)

        return self.tokens.with_token(once)

    def estado_envio(self, track_id: str, *, rut_emisor: str) -> BoletaEnvioStatus:
        number, dv = split_rut(rut_emisor)

        def answer(response: httpx.Response) -> BoletaEnvioStatus:
            if response.status_code == 404:
                raise SiiRejectedError(f"track id {track_id} is unknown", status=404)
            return parse_boleta_status(response.content)

        return self._status(f"{self.api_url}{PREFIX}.envio/{number}-{dv}-{track_id}", answer)

    def estado_boleta(self, rut_emisor: str, tipo: int, folio: int) -> EstadoBoleta | None:
        """One boleta as the SII holds it; ``None`` when the SII has not received it (the way
        to settle an upload whose answer was lost, as ``SiiClient.documents_status`` does)."""
        number, dv = split_rut(rut_emisor)

        def answer(response: httpx.Response) -> EstadoBoleta | None:
            if response.status_code == 404:
                return None
            return parse_boleta_estado(response.content)

        return self._status(f"{self.api_url}{PREFIX}.{number}-{dv}-{tipo}-{folio}.estado", answer)

    def wait_envio(
        self,
        track_id: str,
        *,
        rut_emisor: str,
        max_polls: int = 30,
        interval: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> BoletaEnvioStatus:
        return poll_until_final(
            lambda: self.estado_envio(track_id, rut_emisor=rut_emisor),
            max_polls=max_polls,
            interval=interval,
            sleep=sleep,
        )

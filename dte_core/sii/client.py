"""Client of the SII's DTE web services: authentication, upload, and status queries.

Environment by parameter (certificación = maullin, producción = palena); ``base_url`` points it
anywhere else (the simulator). The rpc namespaces keep the environment's real host, as the
SII's WSDLs declare them.

Upload safety: :meth:`SiiClient.upload` never re-sends a file once its bytes may have reached
the SII. When no receipt comes back it raises :class:`UploadOutcomeUnknownError`; ask
:meth:`SiiClient.documents_status` which documents the SII holds before uploading again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final, Protocol, TypeVar

from lxml import etree

from dte_core.errors import DteError
from dte_core.signing import CompanyCertificate
from dte_core.sii import soap
from dte_core.sii.codes import Ambiente, EstadoSemilla, EstadoToken, UploadStatus
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
    DteStatus,
    EnvioStatus,
    UploadReceipt,
    parse_est_dte,
    parse_est_up,
    parse_recepcion_dte,
)
from dte_core.sii.seed import signed_seed
from dte_core.sii.transport import NotSentError, SiiTransport
from dte_core.xmlsafe import parse_untrusted

T = TypeVar("T")


class _Pollable(Protocol):
    @property
    def final(self) -> bool: ...


S = TypeVar("S", bound=_Pollable)

UPLOAD_PATH: Final = "/cgi_dte/UPL/DTEUpload"
_SOAP_HEADERS: Final = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": ""}
#: The manuals give no token lifetime; the SII drops idle tokens well within an hour.
DEFAULT_TOKEN_TTL: Final = 30 * 60.0
DEFAULT_TOKEN_MARGIN: Final = 60.0


class TokenCache:
    """A token reused until ``margin`` seconds before ``ttl`` runs out (or until refused)."""

    def __init__(
        self,
        fetch: Callable[[], str],
        *,
        ttl: float = DEFAULT_TOKEN_TTL,
        margin: float = DEFAULT_TOKEN_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.ttl, self.margin = ttl, margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._fetched_at = 0.0

    def get(self, *, force: bool = False) -> str:
        with self._lock:
            fresh = self._clock() - self._fetched_at < self.ttl - self.margin
            if self._token is None or force or not fresh:
                self._token = self._fetch()
                self._fetched_at = self._clock()
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def with_token(self, call: Callable[[str], T]) -> T:
        """Run ``call(token)``; when the SII refuses the token, fetch a new one and run again."""
        token = self.get()
        try:
            return call(token)
        except SiiTokenExpiredError:
            self.invalidate(token)
            return call(self.get())


def token_of(respuesta: etree._Element, service: str) -> str:
    """The TOKEN of a signed-seed answer (GetTokenFromSeed, boleta.electronica.token)."""
    estado, token = soap.field(respuesta, "ESTADO"), soap.field(respuesta, "TOKEN")
    if estado != EstadoToken.OK or not token:
        glosa = soap.field(respuesta, "GLOSA")
        meaning = EstadoToken(estado).glosa if estado in set(EstadoToken) else ""
        raise SiiAuthError(
            f"{service} refused the signed seed: ESTADO {estado} {glosa or meaning}".strip(),
            estado=estado,
            glosa=glosa,
        )
    return token


def poll_until_final(
    fetch: Callable[[], S], *, max_polls: int, interval: float, sleep: Callable[[float], None]
) -> S:
    """``fetch()`` until its answer is final: at most ``max_polls`` calls, ``interval`` s apart."""
    status = fetch()
    for _ in range(max_polls - 1):
        if status.final:
            break
        sleep(interval)
        status = fetch()
    return status


@dataclass(frozen=True)
class DocumentKey:
    """What QueryEstDte needs to identify a document (EDT tabla 3-2)."""

    rut_emisor: str
    rut_receptor: str
    tipo_dte: int
    folio: int
    fecha_emision: date
    monto_total: int


def documents_in(envio: bytes) -> list[DocumentKey]:
    """The documents of an EnvioDTE/EnvioBOLETA, as QueryEstDte identifies them."""
    root = parse_untrusted(envio)
    keys = []
    for doc in root.iterfind(".//{*}DTE/{*}Documento"):
        enc = "{*}Encabezado/"
        keys.append(
            DocumentKey(
                rut_emisor=(doc.findtext(enc + "{*}Emisor/{*}RUTEmisor") or "").strip(),
                rut_receptor=(doc.findtext(enc + "{*}Receptor/{*}RUTRecep") or "").strip(),
                tipo_dte=int(doc.findtext(enc + "{*}IdDoc/{*}TipoDTE") or 0),
                folio=int(doc.findtext(enc + "{*}IdDoc/{*}Folio") or 0),
                fecha_emision=date.fromisoformat(
                    (doc.findtext(enc + "{*}IdDoc/{*}FchEmis") or "").strip()
                ),
                monto_total=int(float(doc.findtext(enc + "{*}Totales/{*}MntTotal") or 0)),
            )
        )
    return keys


def caratula_ruts(envio: bytes) -> tuple[str, str]:
    """``(RutEmisor, RutEnvia)`` of an envelope's Carátula."""
    root = parse_untrusted(envio)
    car = root.find("{*}SetDTE/{*}Caratula")
    if car is None:
        raise SiiProtocolError("the file is not an EnvioDTE/EnvioBOLETA: no SetDTE/Caratula")
    return (car.findtext("{*}RutEmisor") or "").strip(), (car.findtext("{*}RutEnvia") or "").strip()


def split_rut(rut: str) -> tuple[str, str]:
    """``"13185095-K"`` → ``("13185095", "K")``. The check digit is the SII's to judge:
    certification certificates carry RUTs whose digit is wrong, and the SII accepts them."""
    text = rut.strip().replace(".", "").upper()
    number, sep, dv = text.rpartition("-")
    if not sep:
        number, dv = text[:-1], text[-1:]
    if not number.isdigit() or len(dv) != 1 or dv not in "0123456789K":
        raise SiiProtocolError(f"{rut!r} is not a RUT; write it as 12345678-5")
    return str(int(number)), dv


def upload_form(rut_sender: str, rut_company: str) -> dict[str, str]:
    """The RUT fields of a multipart upload (DTEUpload, boleta.electronica.envio)."""
    (sender, dv_sender), (company, dv_company) = split_rut(rut_sender), split_rut(rut_company)
    return {
        "rutSender": sender,
        "dvSender": dv_sender,
        "rutCompany": company,
        "dvCompany": dv_company,
    }


class SiiClient:
    """The SOAP/CGI services on maullin/palena (or ``base_url``)."""

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
        self.ambiente = ambiente
        self.base_url = (base_url or f"https://{ambiente.host}").rstrip("/")
        self.transport = transport or SiiTransport()
        self.tokens = TokenCache(self._new_token, ttl=token_ttl, margin=token_margin, clock=clock)

    # ----------------------------------------------------------------- authentication

    def _rpc_once(self, service: str, method: str, params: list[tuple[str, str]]) -> etree._Element:
        namespace = soap.dtews_namespace(self.ambiente.host, service)
        body = soap.rpc_request(namespace, method, params)
        url = f"{self.base_url}/DTEWS/{service}.jws"
        response = self.transport.send("POST", url, content=body, headers=_SOAP_HEADERS)
        return soap.parse_rpc_response(response.content, method)

    def _rpc(self, service: str, method: str, params: list[tuple[str, str]]) -> etree._Element:
        return self.transport.run(lambda: self._rpc_once(service, method, params), idempotent=True)

    def _seed_once(self) -> str:
        respuesta = self._rpc_once("CrSeed", "getSeed", [])
        estado = soap.field(respuesta, "ESTADO")
        seed = soap.field(respuesta, "SEMILLA") or soap.field(respuesta, "SEED")
        if estado != EstadoSemilla.OK or not seed:
            glosa = soap.field(respuesta, "GLOSA")
            message = f"CrSeed refused: ESTADO {estado} {glosa or ''}".strip()
            raise SiiAuthError(message, estado=estado)
        return seed

    def get_seed(self) -> str:
        """CrSeed.getSeed (AUT §4.1.1): a fresh seed, valid for two minutes."""
        return self.transport.run(self._seed_once, idempotent=True)

    def _token_once(self) -> str:
        xml = signed_seed(self._seed_once(), self.certificate).decode("utf-8")
        respuesta = self._rpc_once("GetTokenFromSeed", "getToken", [("pszXml", xml)])
        return token_of(respuesta, "GetTokenFromSeed")

    def _new_token(self) -> str:
        # A seed serves one token only: a retry after a lost answer starts again from CrSeed.
        return self.transport.run(self._token_once, idempotent=True)

    def get_token(self, *, force: bool = False) -> str:
        """A token for the other services: cached, renewed shortly before it lapses."""
        return self.tokens.get(force=force)

    # ----------------------------------------------------------------- upload

    def upload(
        self,
        envio: bytes,
        *,
        filename: str = "EnvioDTE.xml",
        rut_sender: str | None = None,
        rut_company: str | None = None,
    ) -> UploadReceipt:
        """POST the envelope to DTEUpload (UPL chapter 2) and return its TRACKID.

        Raises :class:`SiiRejectedError` for a STATUS other than 0 (nothing was registered) and
        :class:`UploadOutcomeUnknownError` when the answer was lost after sending.
        """
        sender_rut = rut_sender or self.certificate.rut
        if rut_company is None or sender_rut is None:
            emisor, envia = caratula_ruts(envio)  # raises for a file that is not XML
            rut_company, sender_rut = rut_company or emisor, sender_rut or envia
        fields = upload_form(sender_rut, rut_company)

        def once(token: str) -> UploadReceipt:
            headers = {
                "Cookie": f"TOKEN={token}",
                "Accept-Language": "es-cl",
                "Cache-Control": "no-cache",
                "Referer": self.base_url,
            }

            def call() -> bytes:
                response = self.transport.send(
                    "POST",
                    self.base_url + UPLOAD_PATH,
                    headers=headers,
                    data=fields,
                    files={"archivo": (filename, envio, "text/xml")},
                )
                return response.content

            try:
                raw = self.transport.run(call, idempotent=False)
                receipt = parse_recepcion_dte(raw)
            except (NotSentError, SiiUnavailableError):
                raise  # nothing left this machine
            except SiiError as exc:
                if isinstance(exc, (SiiAuthError, SiiRejectedError)):
                    raise
                raise UploadOutcomeUnknownError(
                    f"the upload of {filename} got no receipt ({exc.message}); the SII may have "
                    "registered it: check documents_status() before uploading it again",
                    cause=exc,
                ) from exc
            if receipt.status is UploadStatus.NO_AUTENTICADO:
                # STATUS 5: the file was refused before registration, so sending it again is safe
                raise SiiTokenExpiredError("DTEUpload answered STATUS 5 (No está autenticado)")
            if receipt.status is not UploadStatus.UPLOAD_OK or not receipt.track_id:
                raise SiiRejectedError(
                    f"DTEUpload refused {filename}: STATUS {int(receipt.status)} "
                    f"{receipt.status.glosa}",
                    status=int(receipt.status),
                    details=receipt.errors,
                )
            return receipt

        return self.tokens.with_token(once)

    # ----------------------------------------------------------------- status

    def estado_envio(self, track_id: str, *, rut_company: str) -> EnvioStatus:
        """QueryEstUp.getEstUp (EUP §3.1)."""
        company = split_rut(rut_company)

        def call(token: str) -> EnvioStatus:
            params = [
                ("Rut", company[0]),
                ("Dv", company[1]),
                ("TrackId", str(track_id)),
                ("Token", token),
            ]
            return parse_est_up(self._rpc("QueryEstUp", "getEstUp", params))

        return self.tokens.with_token(call)

    def wait_envio(
        self,
        track_id: str,
        *,
        rut_company: str,
        max_polls: int = 30,
        interval: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> EnvioStatus:
        """Poll getEstUp until the envío reaches a final ESTADO (EPR, RSC, RFR, RCT)."""
        return poll_until_final(
            lambda: self.estado_envio(track_id, rut_company=rut_company),
            max_polls=max_polls,
            interval=interval,
            sleep=sleep,
        )

    def estado_dte(self, doc: DocumentKey, *, rut_consultante: str | None = None) -> DteStatus:
        """QueryEstDte.getEstDte (EDT §3.1); FechaEmisionDte goes as DDMMAAAA."""
        consultante = split_rut(rut_consultante or self.certificate.rut or doc.rut_emisor)
        emisor, receptor = split_rut(doc.rut_emisor), split_rut(doc.rut_receptor)

        def call(token: str) -> DteStatus:
            params = [
                ("RutConsultante", consultante[0]),
                ("DvConsultante", consultante[1]),
                ("RutCompania", emisor[0]),
                ("DvCompania", emisor[1]),
                ("RutReceptor", receptor[0]),
                ("DvReceptor", receptor[1]),
                ("TipoDte", str(doc.tipo_dte)),
                ("FolioDte", str(doc.folio)),
                ("FechaEmisionDte", doc.fecha_emision.strftime("%d%m%Y")),
                ("MontoDte", str(doc.monto_total)),
                ("Token", token),
            ]
            return parse_est_dte(self._rpc("QueryEstDte", "getEstDte", params))

        return self.tokens.with_token(call)

    def documents_status(self, envio: bytes) -> list[tuple[DocumentKey, DteStatus]]:
        """Ask for each document of an envelope; the way to settle an unknown upload outcome.

        Only documents answered FAU (no recibido) may be uploaded again.
        """
        try:
            keys = documents_in(envio)
        except (DteError, ValueError) as exc:
            raise SiiProtocolError(f"cannot read the documents of the envelope: {exc}") from exc
        return [(key, self.estado_dte(key)) for key in keys]

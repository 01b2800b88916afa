"""The simulated SII's memory and rules: seeds, tokens, envíos and the documents they carried.

Uploads are judged for real by :func:`dte_core.received.verify_xml` (hardened parser, official
XSD, XMLDSig, TED, CAF against the configured SII key) and then walk the manual's stages one
step per status poll (and, when ``step_seconds`` is set, one step per elapsed interval):
SOK → CRT → FOK → PDR → EPR, or stop at RSC / RCT / RFR.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from lxml import etree

from dte_core.caf import SiiKeyring
from dte_core.errors import DteError
from dte_core.received import VerificationReport, verify_xml
from dte_core.rut import Rut
from dte_core.sii.codes import EstadoDte, EstadoSesion, EstadoToken, UploadStatus
from dte_core.sii.seed import verify_signed_seed
from dte_core.xmlsafe import local_name, parse_untrusted

SII_RUT = "60803000-K"
ACCEPTED_STAGES = ("SOK", "CRT", "FOK", "PDR", "EPR")
BOLETA_STAGES = ("REC", "SOK", "FOK", "PRD", "EPR")


@dataclass
class SimulatorConfig:
    keyring: SiiKeyring
    clock: Callable[[], float] = time.time
    seed_ttl: float = 120.0  # AUT chapter 2: "tiene un time out de 2 (dos) minutos"
    token_ttl: float = 3600.0
    step_seconds: float | None = None
    #: RUTs allowed to issue; None = every company (EMP / upload STATUS 6 otherwise).
    authorized_companies: frozenset[str] | None = None
    #: user RUT -> companies it may act for in registroreclamodteservice; None = any.
    representantes: dict[str, frozenset[str]] | None = None
    max_upload_bytes: int = 20 * 1024 * 1024


@dataclass
class Documento:
    rut_emisor: str
    tipo: int
    folio: int
    fecha: str
    monto: int
    rut_receptor: str
    received_at: float
    track_id: str
    referencias: list[tuple[int, int, int]] = field(default_factory=list)  # tipo, folio, codref
    events: list[tuple[str, str, float]] = field(default_factory=list)  # accion, rut, when


@dataclass
class DocResult:
    tipo: int
    folio: int
    accepted: bool
    reasons: list[str]


@dataclass
class Envio:
    track_id: str
    rut_company: str
    rut_sender: str
    filename: str
    received_at: float
    stages: tuple[str, ...]
    boleta: bool
    glosas: dict[str, str]
    results: list[DocResult]
    pending_docs: list[Documento]
    polls: int = 0
    registered: bool = False


class SimulatedSii:
    """Thread-safe state of the simulator; the WSGI layer only translates formats."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._seeds: dict[str, float] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._expired: set[str] = set()
        self.envios: dict[str, Envio] = {}
        self.documents: dict[tuple[str, int, int], Documento] = {}
        self._track_ids = itertools.count(int(config.clock()) % 10_000_000 + 1000)
        self._attention = itertools.count(1)

    def now(self) -> float:
        return self.config.clock()

    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.now()).strftime("%Y-%m-%d %H:%M:%S")

    def num_atencion(self) -> str:
        when = datetime.fromtimestamp(self.now()).strftime("%Y/%m/%d %H:%M:%S")
        return f"{next(self._attention)} ( {when})"

    # ----------------------------------------------------------------- authentication

    def new_seed(self) -> str:
        with self._lock:
            seed = f"{secrets.randbelow(10**12):012d}"
            self._seeds[seed] = self.now()
            return seed

    def token_from_seed(self, psz_xml: bytes) -> tuple[EstadoToken, str | None, str]:
        check = verify_signed_seed(psz_xml)
        if check.estado is not EstadoToken.OK:
            return check.estado, None, check.estado.glosa
        with self._lock:
            issued = self._seeds.pop(check.seed or "", None)
            if issued is None:
                return EstadoToken.ERROR_RETORNO, None, "NO Existe SEED"
            if self.now() - issued > self.config.seed_ttl:
                return EstadoToken.ERROR_RETORNO, None, "TIME-OUT DEL SEED"
            if not check.rut:
                return EstadoToken.RUT_NO_REGISTRADO, None, EstadoToken.RUT_NO_REGISTRADO.glosa
            token = secrets.token_urlsafe(10).replace("-", "A").replace("_", "B")[:13].upper()
            self._tokens[token] = (check.rut, self.now())
            return EstadoToken.OK, token, "Token Creado"

    def session(self, token: str | None) -> str | EstadoSesion:
        """The token's user RUT, or why it is refused."""
        with self._lock:
            entry = self._tokens.get(token or "")
            if entry is None:
                return EstadoSesion.TOKEN_NO_EXISTE
            if token in self._expired or self.now() - entry[1] > self.config.token_ttl:
                return EstadoSesion.TOKEN_INACTIVO
            return entry[0]

    def expire_tokens(self) -> None:
        """Fault injection: every token issued so far stops working."""
        with self._lock:
            self._expired.update(self._tokens)

    # ----------------------------------------------------------------- upload

    def company_authorized(self, rut: str) -> bool:
        allowed = self.config.authorized_companies
        return allowed is None or rut in allowed

    def receive(
        self, *, rut_sender: str, rut_company: str, filename: str, data: bytes, boleta: bool
    ) -> tuple[UploadStatus, Envio | None, list[str]]:
        """Take an upload: STATUS and, for STATUS 0, the registered envío."""
        if not data or len(data) > self.config.max_upload_bytes:
            return UploadStatus.ERROR_TAMANO, None, []
        if not self.company_authorized(rut_company):
            return UploadStatus.EMPRESA_NO_AUTORIZADA, None, []
        try:
            root = parse_untrusted(data)
        except DteError as exc:
            return UploadStatus.ESQUEMA_INVALIDO, None, [exc.message]
        expected = "EnvioBOLETA" if boleta else "EnvioDTE"
        if local_name(root) != expected:
            return UploadStatus.ESQUEMA_INVALIDO, None, [f"root is not {expected}"]
        stages, glosas, results, docs = self._judge(data, root, rut_sender, rut_company, boleta)
        with self._lock:
            track_id = str(next(self._track_ids))
            for doc in docs:
                doc.track_id = track_id
            envio = Envio(
                track_id=track_id,
                rut_company=rut_company,
                rut_sender=rut_sender,
                filename=filename,
                received_at=self.now(),
                stages=stages,
                boleta=boleta,
                glosas=glosas,
                results=results,
                pending_docs=docs,
            )
            self.envios[track_id] = envio
        return UploadStatus.UPLOAD_OK, envio, []

    def _judge(
        self, data: bytes, root: etree._Element, sender: str, company: str, boleta: bool
    ) -> tuple[tuple[str, ...], dict[str, str], list[DocResult], list[Documento]]:
        first = "REC" if boleta else "SOK"
        try:
            report = verify_xml(data, keyring=self.config.keyring)
        except DteError as exc:
            return ("RSC",), {"RSC": exc.message}, [], []
        if not report.xsd.valid:
            return ("RSC",), {"RSC": "; ".join(report.xsd.errors[:3])}, [], []
        problems = _caratula_problems(root, report, sender, company, boleta)
        if problems:
            return (first, "RCT"), {"RCT": "; ".join(problems)}, [], []
        if not all(s.valid for s in report.envelope_signatures) or not report.envelope_signatures:
            reasons = [e for s in report.envelope_signatures for e in s.errors] or ["no firma"]
            return (first, "CRT", "RFR"), {"RFR": "; ".join(reasons)}, [], []
        results, docs = [], []
        seen: set[tuple[str, int, int]] = set()
        for report_doc, el in zip(report.documents, root.iterfind(".//{*}DTE"), strict=False):
            reasons = report_doc.ted.errors + report_doc.caf.errors + report_doc.signature.errors
            doc = _documento(el, self.now())
            key = (doc.rut_emisor, doc.tipo, doc.folio) if doc else ("", 0, 0)
            with self._lock:
                if key in self.documents or key in seen:
                    reasons.append("documento repetido: el SII ya lo recibió")
            if doc is None:
                reasons.append("documento ilegible")
            accepted = report_doc.authentic and not reasons
            results.append(DocResult(key[1], key[2], accepted, reasons))
            if accepted and doc is not None:
                seen.add(key)
                docs.append(doc)
        stages = BOLETA_STAGES if boleta else ACCEPTED_STAGES
        return stages, {}, results, docs

    def stage(self, envio: Envio, *, poll: bool) -> str:
        with self._lock:
            if poll:
                envio.polls += 1
            steps = max(envio.polls - 1, 0)
            if self.config.step_seconds:
                steps = max(steps, int((self.now() - envio.received_at) / self.config.step_seconds))
            current = envio.stages[min(steps, len(envio.stages) - 1)]
            if current == "EPR" and not envio.registered:
                envio.registered = True
                for doc in envio.pending_docs:
                    doc.received_at = self.now()
                    self.documents[(doc.rut_emisor, doc.tipo, doc.folio)] = doc
            return current

    def settle(self) -> None:
        """Let time-based progress register documents of envíos nobody polls."""
        with self._lock:
            for envio in list(self.envios.values()):
                if not envio.registered:
                    self.stage(envio, poll=False)

    # ----------------------------------------------------------------- document status

    def estado_dte(
        self, *, rut_emisor: str, tipo: int, folio: int, rut_receptor: str, fecha: str, monto: int
    ) -> EstadoDte:
        if not self.company_authorized(rut_emisor):
            return EstadoDte.EMP
        self.settle()
        with self._lock:
            doc = self.documents.get((rut_emisor, tipo, folio))
            if doc is None:
                return EstadoDte.FAU
            if (doc.rut_receptor, doc.fecha, doc.monto) != (rut_receptor, fecha, monto):
                return EstadoDte.DNK
            return self._referenced(doc) or EstadoDte.DOK

    def _referenced(self, target: Documento) -> EstadoDte | None:
        """EDT chapter 4.7–4.12: a nota referencing the document changes its answer."""
        worst: EstadoDte | None = None
        for doc in self.documents.values():
            if doc.rut_emisor != target.rut_emisor or doc.tipo not in (56, 61):
                continue
            for tipo, folio, codref in doc.referencias:
                if (tipo, folio) == (target.tipo, target.folio):
                    credito = doc.tipo == 61
                    worst = {
                        1: EstadoDte.ANC if credito else EstadoDte.AND,
                        2: EstadoDte.TMC if credito else EstadoDte.TMD,
                        3: EstadoDte.MMC if credito else EstadoDte.MMD,
                    }.get(codref, worst)
        return worst


def _caratula_problems(
    root: etree._Element, report: VerificationReport, sender: str, company: str, boleta: bool
) -> list[str]:
    car = root.find("{*}SetDTE/{*}Caratula")
    if car is None:
        return ["sin Carátula"]
    problems = []
    emisor = _canon(car.findtext("{*}RutEmisor"))
    if emisor != company:
        problems.append(f"RutEmisor {emisor} distinto de rutCompany {company}")
    envia = _canon(car.findtext("{*}RutEnvia"))
    if envia != sender:
        problems.append(f"RutEnvia {envia} distinto del que envía {sender}")
    receptor = _canon(car.findtext("{*}RutReceptor"))
    if receptor != SII_RUT:
        problems.append(f"RutReceptor {receptor}: los envíos al SII van a {SII_RUT}")
    declared = sum(int(s.findtext("{*}NroDTE") or 0) for s in car.iterfind("{*}SubTotDTE"))
    if declared != len(report.documents):
        problems.append(
            f"SubTotDTE declara {declared} documentos y el envío trae {len(report.documents)}"
        )
    return problems


def _canon(rut: str | None) -> str:
    try:
        return str(Rut.parse(rut or ""))
    except DteError:
        return (rut or "").strip()


def _documento(dte: etree._Element, now: float) -> Documento | None:
    doc = dte.find("{*}Documento")
    if doc is None:
        return None
    enc = "{*}Encabezado/"
    try:
        referencias = [
            (int(r.findtext("{*}TpoDocRef") or 0), int(r.findtext("{*}FolioRef") or 0),
             int(r.findtext("{*}CodRef") or 0))
            for r in doc.iterfind("{*}Referencia")
            if (r.findtext("{*}TpoDocRef") or "").strip().isdigit()
        ]  # fmt: skip
        return Documento(
            rut_emisor=_canon(doc.findtext(enc + "{*}Emisor/{*}RUTEmisor")),
            tipo=int(doc.findtext(enc + "{*}IdDoc/{*}TipoDTE") or 0),
            folio=int(doc.findtext(enc + "{*}IdDoc/{*}Folio") or 0),
            fecha=(doc.findtext(enc + "{*}IdDoc/{*}FchEmis") or "").strip(),
            monto=int(float(doc.findtext(enc + "{*}Totales/{*}MntTotal") or 0)),
            rut_receptor=_canon(doc.findtext(enc + "{*}Receptor/{*}RUTRecep")),
            received_at=now,
            track_id="",
            referencias=referencias,
        )
    except ValueError:
        return None


def parse_fecha_ddmmaaaa(text: str) -> str:
    """EDT FechaEmisionDte ``DDMMAAAA`` → ``AAAA-MM-DD`` (what FchEmis holds)."""
    return date(int(text[4:8]), int(text[2:4]), int(text[0:2])).isoformat()


def days(n: float) -> float:
    return timedelta(days=n).total_seconds()

"""The signed answers to received documents, numbered, stored and returned.

* acuse de recibo of a file (RespuestaDTE / RecepcionEnvio), built from the stored raw bytes;
* aprobación comercial of a document (RespuestaDTE / ResultadoDTE), which also records its status;
* recibo de mercaderías (EnvioRecibos, Ley 19.983).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from ai_service.api.errors import Conflict
from ai_service.repositories import received as repo
from ai_service.repositories.companies import Company
from dte_core.caf import SiiKeyring
from dte_core.received import verify_xml
from dte_core.responses import (
    DteRef,
    EstadoDTE,
    Recibo,
    Responde,
    ResultadoDTE,
    build_envio_recibos,
    build_recepcion_envio,
    build_resultado_dte,
    dte_ref,
    recepcion_envio_for,
)
from dte_core.rut import Rut
from dte_core.signing import CompanyCertificate

_SANTIAGO = ZoneInfo("America/Santiago")


def _chile(moment: datetime) -> datetime:
    """Stored timestamps are UTC; the SII's are Chilean local time without an offset."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(_SANTIAGO).replace(tzinfo=None, microsecond=0)


def acuse_de_recibo(
    engine: Engine,
    company: Company,
    file_id: int,
    certificate: CompanyCertificate,
    *,
    keyring: SiiKeyring,
    now: Callable[[], datetime],
) -> tuple[int, bytes]:
    """RespuestaDTE/RecepcionEnvio for one received file: envelope and per-document states."""
    info = repo.get_file(engine, company.id, file_id)
    if info.status != repo.STATUS_PROCESSED:
        raise Conflict(
            f"received file {file_id} was refused ({info.error_code}): its emisor cannot be "
            "read from it, so there is no one to address an acuse to",
            code="file_not_answerable",
        )
    report = verify_xml(repo.get_file_raw(engine, company.id, file_id), keyring=keyring)
    refs = [ref for doc in report.documents if (ref := dte_ref(doc)) is not None]
    held = repo.documents_of_file(
        engine, company.id, [(r.rut_emisor, r.tipo_dte, r.folio) for r in refs]
    )
    # received before, in another file: this file repeats them
    repeated = frozenset(key for key, row in held.items() if row.file_id != file_id)
    acuse = recepcion_envio_for(
        report,
        company_rut=company.rut,
        nmb_envio=info.filename or f"recibido-{file_id}.xml",
        cod_envio=file_id,
        fch_recep=_chile(info.received_at),
        repeated=repeated,
    )
    emisor = acuse.rut_emisor or (refs[0].rut_emisor if refs else None)
    if emisor is None:
        raise Conflict(
            f"received file {file_id} names no emisor: there is no one to address an acuse to",
            code="file_not_answerable",
        )
    responde = Responde(rut_responde=company.rut, rut_recibe=emisor)
    return repo.save_response(
        engine,
        company.id,
        kind="recepcion",
        file_id=file_id,
        estado=int(acuse.estado),
        build=lambda id_respuesta: build_recepcion_envio(
            responde, [acuse], certificate, id_respuesta=id_respuesta, timestamp=now()
        ),
    )


def _ref(info: repo.ReceivedDocumentInfo) -> DteRef:
    if info.fecha_emision is None or info.monto_total is None or info.rut_receptor is None:
        raise Conflict(
            f"received document {info.id} lacks FchEmis, MntTotal or RUTRecep, which every "
            "answer must quote back",
            code="document_not_answerable",
        )
    return DteRef(
        tipo_dte=info.tipo_dte,
        folio=info.folio,
        fecha_emision=info.fecha_emision,
        rut_emisor=info.rut_emisor,
        rut_receptor=info.rut_receptor,
        monto_total=info.monto_total,
    )


def _check_acceptable(info: repo.ReceivedDocumentInfo, company: Company, what: str) -> None:
    if not info.authentic:
        raise Conflict(
            f"received document {info.id} is not authentic (its TED, CAF or signature does not "
            f"verify): it can only be rejected, not given a {what}",
            code="document_not_authentic",
        )
    if info.rut_receptor is None or Rut.parse(info.rut_receptor) != Rut.parse(company.rut):
        raise Conflict(
            f"received document {info.id} is addressed to {info.rut_receptor}, not to this "
            f"company ({company.rut}): it can only be rejected",
            code="not_the_receptor",
        )


def resultado(
    engine: Engine,
    company: Company,
    document_id: str,
    estado: EstadoDTE,
    certificate: CompanyCertificate,
    *,
    glosa: str,
    cod_rch_dsc: int | None,
    now: Callable[[], datetime],
) -> tuple[int, bytes]:
    """RespuestaDTE/ResultadoDTE accepting or rejecting one document; records its status."""
    info = repo.get_document(engine, company.id, document_id)
    if estado is not EstadoDTE.RECHAZADO:
        _check_acceptable(info, company, "acceptance")
    item = ResultadoDTE(
        _ref(info), cod_envio=info.file_id, estado=estado, glosa=glosa, cod_rch_dsc=cod_rch_dsc
    )
    responde = Responde(rut_responde=company.rut, rut_recibe=info.rut_emisor)
    return repo.save_response(
        engine,
        company.id,
        kind="resultado",
        document_id=document_id,
        estado=int(estado),
        build=lambda id_respuesta: build_resultado_dte(
            responde, [item], certificate, id_respuesta=id_respuesta, timestamp=now()
        ),
    )


def recibo_mercaderias(
    engine: Engine,
    company: Company,
    document_id: str,
    certificate: CompanyCertificate,
    *,
    recinto: str,
    rut_firma: str | None,
    now: Callable[[], datetime],
) -> tuple[int, bytes]:
    """EnvioRecibos (Ley 19.983) for one document: the goods or services were received."""
    info = repo.get_document(engine, company.id, document_id)
    _check_acceptable(info, company, "recibo de mercaderías")
    recibo = Recibo(_ref(info), recinto=recinto, rut_firma=rut_firma)
    responde = Responde(rut_responde=company.rut, rut_recibe=info.rut_emisor)
    return repo.save_response(
        engine,
        company.id,
        kind="recibos",
        document_id=document_id,
        build=lambda _id: build_envio_recibos(responde, [recibo], certificate, timestamp=now()),
    )

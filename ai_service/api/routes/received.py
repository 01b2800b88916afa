"""Received documents: upload (EnvioDTE / DTE), read back, and answer with signed XML.

``POST /v1/received`` stores the file byte for byte before parsing it; a hostile or unreadable
file is kept (refused, with its error) and answered 400 ``hostile_xml`` / 422 ``unreadable_xml``.
Uploading the same bytes again returns the same file (200 instead of 201).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ai_service.api.deps import Context, CurrentCompany
from ai_service.api.errors import BadRequest
from ai_service.ingest import answers
from ai_service.ingest.service import Ingestor, IngestResult
from ai_service.repositories import received as repo
from ai_service.repositories.certificates import load_certificate
from dte_core.errors import FieldError
from dte_core.responses import EstadoDTE

router = APIRouter(prefix="/v1/received", tags=["received"])
log = logging.getLogger(__name__)

XML_MEDIA_TYPE = "application/xml; charset=ISO-8859-1"
_RAW_TYPES = ("application/xml", "text/xml", "application/octet-stream", "")


class FileOut(BaseModel):
    id: int = Field(description="also the CodEnvio quoted in the acuse de recibo")
    sha256: str
    source: str
    filename: str | None
    size: int
    status: str = Field(description="stored | processed | refused")
    root: str | None
    error_code: str | None
    error_message: str | None
    received_at: datetime
    processed_at: datetime | None
    raw_url: str


class FileDetailOut(FileOut):
    report: dict[str, Any] | None = Field(
        default=None, description="the verification report (processed files)"
    )


class IngestedOut(BaseModel):
    id: str | None
    rut_emisor: str | None
    tipo_dte: int | None
    folio: int | None
    outcome: str = Field(description="new | duplicate | upgraded | unidentified")
    authentic: bool
    valid: bool


class IngestOut(BaseModel):
    file: FileOut
    file_created: bool
    valid: bool
    documents: list[IngestedOut]


class ReceivedOut(BaseModel):
    id: str
    file_id: int
    rut_emisor: str
    tipo_dte: int
    folio: int
    rut_receptor: str | None
    fecha_emision: date | None
    monto_total: int | None
    authentic: bool = Field(description="TED, CAF and signature verify")
    schema_valid: bool
    signature_context: str | None
    status: str = Field(description="received | accepted | accepted_with_discrepancies | rejected")
    created_at: datetime
    updated_at: datetime
    xml_url: str
    report: dict[str, Any] | None = None


class ReceivedPage(BaseModel):
    items: list[ReceivedOut]
    total: int


_ESTADOS = {
    "accepted": EstadoDTE.ACEPTADO_OK,
    "accepted_with_discrepancies": EstadoDTE.ACEPTADO_CON_DISCREPANCIAS,
    "rejected": EstadoDTE.RECHAZADO,
}


class ResultadoIn(BaseModel):
    estado: Literal["accepted", "accepted_with_discrepancies", "rejected"]
    glosa: str = Field(default="", max_length=256)
    cod_rch_dsc: int | None = Field(
        default=None, ge=-999, le=-1, description="your code for the reason (negative)"
    )


class ReciboIn(BaseModel):
    recinto: str = Field(min_length=1, max_length=80, description="where it was received")
    rut_firma: str | None = Field(
        default=None, description="RUT of the person signing; default: the certificate's"
    )


def _file_out(info: repo.FileInfo) -> FileOut:
    return FileOut(**info.__dict__, raw_url=f"/v1/received/files/{info.id}/raw")


def _doc_out(info: repo.ReceivedDocumentInfo, report: Any = None) -> ReceivedOut:
    return ReceivedOut(**info.__dict__, xml_url=f"/v1/received/{info.id}/xml", report=report)


def _xml(xml: bytes, response_id: int | None = None, code: int = 200) -> Response:
    headers = {"X-Response-Id": str(response_id)} if response_id is not None else None
    return Response(content=xml, media_type=XML_MEDIA_TYPE, status_code=code, headers=headers)


async def _upload(request: Request) -> tuple[bytes, str | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)  # the app caps the body size
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest(
                "the multipart upload has no file part named 'file'",
                code="missing_file",
                fields=[FieldError("file", "required", "attach the XML as 'file'")],
            )
        return await upload.read(), upload.filename
    if content_type not in _RAW_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the XML as the body (Content-Type: application/xml) or as multipart 'file', "
            f"not {content_type}",
        )
    return await request.body(), request.query_params.get("filename")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a received EnvioDTE / DTE (raw XML body or multipart 'file')",
    description="The bytes are stored before they are parsed; then the SII namespace is "
    "repaired and XSD, TED, CAF and signatures are verified. Documents are deduplicated by "
    "(RUT emisor, tipo, folio). 200 when these exact bytes were uploaded before.",
    responses={200: {"description": "the same file was already received"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/xml": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def upload_received(
    request: Request, ctx: Context, company: CurrentCompany, response: Response
) -> IngestOut:
    raw, filename = await _upload(request)
    if not raw:
        raise BadRequest("the upload is empty: send the XML file", code="empty_upload")
    ingestor = Ingestor(ctx.engine, ctx.keyring)
    result: IngestResult = await run_in_threadpool(
        ingestor.ingest, company.id, raw, source="api", filename=filename
    )
    error = result.error()
    if error is not None:
        raise error
    if not result.file_created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/received/files/{result.file.id}"
    return IngestOut(
        file=_file_out(result.file),
        file_created=result.file_created,
        valid=result.valid,
        documents=[IngestedOut(**d.__dict__) for d in result.documents],
    )


@router.get("", summary="The company's received documents, newest first")
def list_received(
    ctx: Context,
    company: CurrentCompany,
    rut_emisor: str | None = None,
    tipo_dte: int | None = None,
    doc_status: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReceivedPage:
    from dte_core.rut import Rut

    items, total = repo.list_documents(
        ctx.engine,
        company.id,
        rut_emisor=str(Rut.parse(rut_emisor, "rut_emisor")) if rut_emisor else None,
        tipo_dte=tipo_dte,
        status=doc_status,
        limit=limit,
        offset=offset,
    )
    return ReceivedPage(items=[_doc_out(i) for i in items], total=total)


# /files routes come before /{document_id} so "files" is never read as a document id
@router.get("/files", summary="The company's received files, newest first")
def list_files(
    ctx: Context,
    company: CurrentCompany,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[FileOut]:
    return [
        _file_out(f) for f in repo.list_files(ctx.engine, company.id, limit=limit, offset=offset)
    ]


@router.get("/files/{file_id}", summary="One received file: status, error and verification")
def get_file(ctx: Context, company: CurrentCompany, file_id: int) -> FileDetailOut:
    info = repo.get_file(ctx.engine, company.id, file_id)
    return FileDetailOut(
        **_file_out(info).model_dump(), report=repo.get_file_report(ctx.engine, company.id, file_id)
    )


@router.get(
    "/files/{file_id}/raw",
    summary="The file exactly as received",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_file_raw(ctx: Context, company: CurrentCompany, file_id: int) -> Response:
    raw = repo.get_file_raw(ctx.engine, company.id, file_id)
    return Response(content=raw, media_type="application/octet-stream")


@router.post(
    "/files/{file_id}/acuse",
    status_code=status.HTTP_201_CREATED,
    summary="Sign the acuse de recibo (RespuestaDTE / RecepcionEnvio) of a received file",
    response_class=Response,
    responses={201: {"content": {"application/xml": {}}}},
)
def acuse(ctx: Context, company: CurrentCompany, file_id: int) -> Response:
    repo.get_file(ctx.engine, company.id, file_id)  # 404 before asking for a certificate
    certificate = load_certificate(ctx.engine, ctx.box, company.id)
    response_id, xml = answers.acuse_de_recibo(
        ctx.engine, company, file_id, certificate, keyring=ctx.keyring(), now=ctx.now
    )
    return _xml(xml, response_id, 201)


@router.get("/{document_id}", summary="One received document with its verification report")
def get_received(ctx: Context, company: CurrentCompany, document_id: str) -> ReceivedOut:
    info = repo.get_document(ctx.engine, company.id, document_id)
    _, report = repo.get_document_detail(ctx.engine, company.id, document_id)
    return _doc_out(info, report)


@router.get(
    "/{document_id}/xml",
    summary="The received <DTE> (SII namespace restored); the original is under /files",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def get_received_xml(ctx: Context, company: CurrentCompany, document_id: str) -> Response:
    xml, _ = repo.get_document_detail(ctx.engine, company.id, document_id)
    return _xml(xml)


@router.post(
    "/{document_id}/resultado",
    status_code=status.HTTP_201_CREATED,
    summary="Accept or reject a document (RespuestaDTE / ResultadoDTE), signed",
    response_class=Response,
    responses={201: {"content": {"application/xml": {}}}},
)
def resultado(
    ctx: Context, company: CurrentCompany, document_id: str, body: ResultadoIn
) -> Response:
    repo.get_document(ctx.engine, company.id, document_id)
    certificate = load_certificate(ctx.engine, ctx.box, company.id)
    response_id, xml = answers.resultado(
        ctx.engine,
        company,
        document_id,
        _ESTADOS[body.estado],
        certificate,
        glosa=body.glosa,
        cod_rch_dsc=body.cod_rch_dsc,
        now=ctx.now,
    )
    log.info("received document %s: %s", document_id, body.estado)
    return _xml(xml, response_id, 201)


@router.post(
    "/{document_id}/recibo",
    status_code=status.HTTP_201_CREATED,
    summary="Sign the recibo de mercaderías o servicios (EnvioRecibos, Ley 19.983)",
    response_class=Response,
    responses={201: {"content": {"application/xml": {}}}},
)
def recibo(ctx: Context, company: CurrentCompany, document_id: str, body: ReciboIn) -> Response:
    repo.get_document(ctx.engine, company.id, document_id)
    certificate = load_certificate(ctx.engine, ctx.box, company.id)
    response_id, xml = answers.recibo_mercaderias(
        ctx.engine,
        company,
        document_id,
        certificate,
        recinto=body.recinto,
        rut_firma=body.rut_firma,
        now=ctx.now,
    )
    return _xml(xml, response_id, 201)

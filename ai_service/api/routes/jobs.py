"""Batch classification jobs: submit many received documents, follow progress, export results.

``POST /v1/jobs/classify`` takes XML files and zips (multipart ``files``), a zip body, or JSON
references to documents already received. Uploaded files are stored and verified by the
ingestion (``POST /v1/received``) before the job exists; the job and one item per document are
committed before any task is queued, so a 202 means nothing can be lost. The work runs on Celery
workers when a broker is configured, else in this process.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.api.errors import BadRequest, Conflict, ServiceUnavailable, Unprocessable
from ai_service.ingest.service import Ingestor
from ai_service.jobs import archive, export, webhook
from ai_service.jobs import repository as repo
from ai_service.jobs.config import JobsConfig
from ai_service.jobs.intake import ingest_files
from ai_service.jobs.models import ItemInfo, JobInfo, NewItem
from ai_service.jobs.runner import CeleryDispatcher, InProcessRunner, build_dispatcher
from ai_service.repositories import context as context_repo
from dte_core.errors import FieldError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_LOCK = threading.Lock()


class ClassifyByReference(BaseModel):
    document_ids: list[str] = Field(min_length=1, description="ids from GET /v1/received")
    webhook_url: str | None = Field(default=None, max_length=500)


class WebhookStatus(BaseModel):
    url: str
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


class JobOut(BaseModel):
    id: str
    state: str = Field(description="queued | running | finished")
    total: int
    done: int
    failed: int
    pending: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    webhook: WebhookStatus | None
    status_url: str
    results_url: str


class JobCreated(BaseModel):
    job: JobOut
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC-SHA256 key of the webhook's X-DteAi-Signature header; shown only now",
    )
    skipped: list[str] = Field(
        default_factory=list, description="zip entries not ingested (not *.xml)"
    )


class ItemError(BaseModel):
    code: str
    message: str | None


class ItemOut(BaseModel):
    seq: int
    document_id: str | None
    file_id: int | None
    filename: str | None
    rut_emisor: str | None
    tipo_dte: int | None
    folio: int | None
    state: str = Field(description="pending | done | failed")
    result: dict[str, Any] | None = Field(description="the invoice's and each line's account")
    error: ItemError | None
    finished_at: datetime | None


class JobDetail(JobOut):
    items: list[ItemOut]
    next_offset: int | None = Field(description="pass as items_offset for the next page")


def jobs_config(ctx: AppContext) -> JobsConfig:
    return JobsConfig.from_settings(ctx.settings)


def dispatcher(request: Request, ctx: AppContext) -> InProcessRunner | CeleryDispatcher:
    """The app's dispatcher, built on first use (tests may set ``app.state.jobs_dispatcher``)."""
    with _LOCK:
        found = getattr(request.app.state, "jobs_dispatcher", None)
        if found is None:
            found = build_dispatcher(
                jobs_config(ctx), ctx.engine, ctx.box, engine_cache=ctx.engine_cache()
            )
            request.app.state.jobs_dispatcher = found
        return found


def _job_out(job: JobInfo) -> JobOut:
    hook = (
        WebhookStatus(
            url=job.webhook_url,
            attempts=job.webhook_attempts,
            delivered_at=job.webhook_delivered_at,
            last_error=job.webhook_last_error,
        )
        if job.webhook_url
        else None
    )
    return JobOut(
        id=job.id,
        state=job.state,
        total=job.total,
        done=job.done,
        failed=job.failed,
        pending=job.pending,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        webhook=hook,
        status_url=f"/v1/jobs/{job.id}",
        results_url=f"/v1/jobs/{job.id}/results",
    )


def _item_out(item: ItemInfo) -> ItemOut:
    return ItemOut(
        **{k: v for k, v in item.__dict__.items() if k not in ("error_code", "error_message")},
        error=ItemError(code=item.error_code, message=item.error_message)
        if item.error_code
        else None,
    )


def _zip_files(raw: bytes, name: str, skipped: list[str]) -> list[tuple[str, bytes]]:
    contents = archive.read_zip(raw)
    skipped.extend(f"{name}/{entry}" for entry in contents.skipped)
    return [(f"{name}/{entry}"[-255:], data) for entry, data in contents.files]


async def _uploads(
    request: Request, config: JobsConfig
) -> tuple[list[tuple[str, bytes]] | None, list[str], ClassifyByReference | None, str | None]:
    """``(files, skipped, references, webhook_url)`` from whichever form the request has."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    skipped: list[str] = []
    if content_type == "application/json":
        try:
            refs = ClassifyByReference.model_validate_json(await request.body())
        except ValidationError as exc:  # the app's handler answers it like any body model
            raise RequestValidationError(exc.errors(include_url=False)) from exc
        return None, skipped, refs, refs.webhook_url
    if content_type in _ZIP_TYPES:
        raw = await request.body()
        name = request.query_params.get("filename") or "upload.zip"
        files = await run_in_threadpool(_zip_files, raw, name, skipped)
        return files, skipped, None, request.query_params.get("webhook_url")
    if content_type != "multipart/form-data":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send multipart 'files' (XML or zip), a zip body (application/zip) or JSON "
            f"{{'document_ids': [...]}}, not {content_type or 'no content type'}",
        )
    form = await request.form(max_files=config.jobs_max_documents, max_fields=20)
    files = []
    for part in form.getlist("files"):
        if not isinstance(part, UploadFile):
            raise BadRequest("'files' must be file parts", code="missing_file")
        raw = await part.read()
        name = part.filename or f"file-{len(files) + 1}"
        if archive.is_zip(raw):
            files.extend(await run_in_threadpool(_zip_files, raw, name, skipped))
        else:
            files.append((name, raw))
    if not files:
        raise BadRequest(
            "the multipart upload has no file part named 'files'",
            code="missing_file",
            fields=[FieldError("files", "required", "attach XML files or zips as 'files'")],
        )
    hook = form.get("webhook_url")
    return files, skipped, None, hook if isinstance(hook, str) and hook else None


def _items_by_reference(
    ctx: AppContext, company_id: str, refs: ClassifyByReference
) -> list[NewItem]:
    ids = list(dict.fromkeys(refs.document_ids))
    found = repo.existing_documents(ctx.engine, company_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise Unprocessable(
            f"{len(missing)} document ids are not received documents of this company",
            code="unknown_documents",
            fields=[
                FieldError(f"document_ids[{refs.document_ids.index(m)}]", "not_found", m)
                for m in missing[:50]
            ],
        )
    return [NewItem(document_id=i) for i in ids]


@router.post(
    "/classify",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Classify many received documents (XML files, a zip, or ids); returns a job at once",
    description="Multipart `files` (each an XML EnvioDTE/DTE or a zip of them) with an optional "
    "`webhook_url` field; or a zip body (`Content-Type: application/zip`, `?webhook_url=`); or "
    'JSON `{"document_ids": [...], "webhook_url": ...}`. Files are ingested (stored raw, '
    "verified, deduplicated) first. `Idempotency-Key`: the same key again returns the same job "
    "(200). The webhook is signed with the `webhook_secret` returned only here.",
    responses={200: {"description": "this Idempotency-Key was used before: the same job"}},
)
async def create_job(
    request: Request,
    ctx: Context,
    company: CurrentCompany,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobCreated:
    config = jobs_config(ctx)
    if idempotency_key:
        existing = await run_in_threadpool(
            repo.find_by_idempotency_key, ctx.engine, company.id, idempotency_key
        )
        if existing is not None:
            response.status_code = status.HTTP_200_OK
            return JobCreated(job=_job_out(existing))
    counts = await run_in_threadpool(context_repo.counts, ctx.engine, company.id)
    if not counts.get("accounts"):
        raise Conflict(
            "the company has no chart of accounts to classify against: load it with "
            "PUT /v1/context first",
            code="no_context",
        )
    files, skipped, refs, webhook_url = await _uploads(request, config)
    if webhook_url is not None:
        webhook.check_url(webhook_url)
    size = len(files) if files is not None else len(refs.document_ids) if refs else 0
    if size > config.jobs_max_documents:
        raise Unprocessable(
            f"{size} documents is over the limit of {config.jobs_max_documents} per job; "
            "split them into several jobs",
            code="too_many_documents",
        )
    if files is not None:
        ingestor = Ingestor(ctx.engine, ctx.keyring)
        items = await run_in_threadpool(ingest_files, ingestor, company.id, files, source="api")
    else:
        assert refs is not None
        items = await run_in_threadpool(_items_by_reference, ctx, company.id, refs)
    if not items:
        raise BadRequest("nothing to classify: the upload held no XML file", code="empty_job")
    secret = webhook.new_secret() if webhook_url else None
    job, created = await run_in_threadpool(
        lambda: repo.create_job(
            ctx.engine,
            company.id,
            items,
            source="api",
            idempotency_key=idempotency_key or None,
            webhook_url=webhook_url,
            webhook_secret=ctx.box.encrypt(secret.encode()) if secret else None,
        )
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        return JobCreated(job=_job_out(job))
    runner = dispatcher(request, ctx)
    try:
        await run_in_threadpool(runner.dispatch, job.id, job.total)
    except Exception as exc:  # the broker is down: the job is saved, say how it resumes
        raise ServiceUnavailable(
            f"job {job.id} is saved but the queue is unreachable; it runs once the queue is "
            "back and the job is resumed (`dte-ai jobs resume`)",
            code="queue_unavailable",
        ) from exc
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobCreated(job=_job_out(job), webhook_secret=secret, skipped=skipped)


@router.get("", summary="The company's jobs, newest first")
def list_jobs(
    ctx: Context,
    company: CurrentCompany,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[JobOut]:
    return [_job_out(j) for j in repo.list_jobs(ctx.engine, company.id, limit=limit, offset=offset)]


@router.get("/{job_id}", summary="Progress (done / failed / total) and per-document results")
def get_job(
    request: Request,
    ctx: Context,
    company: CurrentCompany,
    job_id: str,
    items_offset: Annotated[int, Query(ge=0, description="first item (seq) to list")] = 0,
    items_limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    item_state: Annotated[
        Literal["pending", "done", "failed"] | None, Query(description="only items in this state")
    ] = None,
) -> JobDetail:
    job = repo.get_job(ctx.engine, company.id, job_id)
    if not job.finished:
        dispatcher(request, ctx)  # after a restart, the first look at a job resumes the runner
    items = list(
        repo.iter_items(
            ctx.engine,
            company.id,
            job_id,
            state=item_state,
            offset=items_offset,
            limit=items_limit + 1,
        )
    )
    more = len(items) > items_limit
    items = items[:items_limit]
    return JobDetail(
        **_job_out(job).model_dump(),
        items=[_item_out(i) for i in items],
        next_offset=items[-1].seq + 1 if more and items else None,
    )


@router.get(
    "/{job_id}/results",
    summary="Export every document's result: JSON Lines or CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def export_results(
    ctx: Context,
    company: CurrentCompany,
    job_id: str,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    repo.get_job(ctx.engine, company.id, job_id)  # 404 before streaming anything
    disposition = {"Content-Disposition": f'attachment; filename="job-{job_id}.{format}"'}
    if format == "csv":
        return StreamingResponse(
            export.iter_csv(ctx.engine, company.id, job_id),
            media_type="text/csv; charset=utf-8",
            headers=disposition,
        )
    return StreamingResponse(
        export.iter_jsonl(ctx.engine, company.id, job_id),
        media_type="application/x-ndjson",
        headers=disposition,
    )

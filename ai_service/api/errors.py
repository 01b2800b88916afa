"""Every error leaves the API as ``{"error": {"code", "message", "fields"}}``.

``ERROR_STATUS`` is the one table from domain errors to HTTP status: a specific ``code`` wins,
otherwise the nearest class in the exception's MRO.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ai_service.extraction.guards import ExtractionError
from dte_core.errors import (
    CafError,
    CertificateError,
    DteError,
    FieldError,
    FolioError,
    FoliosExhaustedError,
    InvalidDocumentError,
    SchemaError,
    SignatureError,
    XmlParseError,
    XmlSecurityError,
)
from dte_core.sii.errors import SiiError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error raised by the service itself (not dte_core)."""

    code = "api_error"

    def __init__(
        self, message: str, *, fields: Sequence[FieldError] = (), code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    code = "bad_request"


class Unauthorized(ApiError):
    code = "unauthorized"


class Forbidden(ApiError):
    code = "forbidden"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    code = "conflict"


class Unprocessable(ApiError):
    """Well-formed but invalid input; ``fields`` says what to fix."""

    code = "invalid_input"


class ServiceUnavailable(ApiError):
    code = "service_unavailable"


ERROR_STATUS: Mapping[str | type[Exception], int] = {
    # specific codes first: they refine their class
    "unsupported_type": 415,
    "file_too_large": 413,
    "ocr_unavailable": 503,
    "ocr_timeout": 503,
    "caf_overlap": 409,
    "folio_already_used": 409,
    "no_certificate": 409,
    # dte_core
    FoliosExhaustedError: 409,
    FolioError: 409,
    InvalidDocumentError: 422,
    XmlSecurityError: 400,
    XmlParseError: 422,
    SchemaError: 422,
    CafError: 422,
    CertificateError: 422,
    SignatureError: 422,
    DteError: 422,
    ExtractionError: 422,
    SiiError: 502,  # the SII failed or refused: not the caller's input
    # the service's own
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    ServiceUnavailable: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "service_unavailable",
}


def status_for(exc: Exception) -> int:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in ERROR_STATUS:
        return ERROR_STATUS[code]
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_body(code: str, message: str, fields: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": list(fields)}}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DteError | ApiError | ExtractionError | SiiError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    fields = [f.as_dict() for f in getattr(exc, "fields", ())]
    return error_response(status, exc.code, exc.message, fields, headers=headers)


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only loc/type/msg: pydantic's "input" may echo a password or a key back.
    fields = [
        {
            "field": _field_path(err.get("loc", ())),
            "code": str(err.get("type", "invalid")),
            "message": str(err.get("msg", "invalid value")),
        }
        for err in exc.errors()
    ]
    return error_response(422, "invalid_request", "the request is invalid; see fields", fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The client gets no detail (an arbitrary message may embed internals); the log gets the
    # traceback. Nothing secret reaches SQL parameters in clear: blobs are encrypted, keys hashed.
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DteError, _domain_error)
    app.add_exception_handler(ApiError, _domain_error)
    app.add_exception_handler(ExtractionError, _domain_error)
    app.add_exception_handler(SiiError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

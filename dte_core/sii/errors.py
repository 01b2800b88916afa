"""The SII boundary's exception tree: every error says whether repeating the call is safe.

``retryable`` means the same request may be sent again as it is (the client's own retries use
it); an upload is never retryable once its bytes may have reached the SII — see
:class:`UploadOutcomeUnknownError`.
"""

from __future__ import annotations

from collections.abc import Sequence


class SiiError(Exception):
    """Base of every error talking to the SII (or its simulator)."""

    code = "sii_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class SiiTransportError(SiiError):
    """No usable HTTP answer: connection refused or reset, DNS, TLS, or a timeout."""

    code = "sii_unreachable"
    retryable = True


class SiiTimeoutError(SiiTransportError):
    code = "sii_timeout"


class SiiServerError(SiiError):
    """The SII answered with an HTTP 5xx."""

    code = "sii_server_error"
    retryable = True

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class SiiUnavailableError(SiiError):
    """The circuit breaker is open: recent calls failed, so none is attempted until it resets."""

    code = "sii_circuit_open"
    retryable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SiiProtocolError(SiiError):
    """The answer is not what the manual describes (malformed XML, missing fields, HTML page)."""

    code = "sii_bad_response"
    retryable = True


class SiiAuthError(SiiError):
    """The seed or token was refused (``estado``/``glosa`` as the SII sent them)."""

    code = "sii_auth_refused"

    def __init__(self, message: str, *, estado: str | None = None, glosa: str | None = None):
        super().__init__(message)
        self.estado = estado
        self.glosa = glosa


class SiiTokenExpiredError(SiiAuthError):
    """The SII no longer accepts the token (001/002/003, upload STATUS 5, HTTP 401)."""

    code = "sii_token_expired"
    retryable = True  # with a new token: the client does it once by itself


class SiiRejectedError(SiiError):
    """The SII received the request and refused it for good; fix the input, do not repeat."""

    code = "sii_rejected"

    def __init__(
        self, message: str, *, status: str | int | None = None, details: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.details = tuple(details)

    def as_dict(self) -> dict[str, object]:
        out = super().as_dict()
        out["status"] = self.status
        out["details"] = list(self.details)
        return out


class SiiQueryError(SiiError):
    """A status query answered with an error ESTADO (negative codes, ERR_CODE/SRV_CODE)."""

    code = "sii_query_error"

    def __init__(self, message: str, *, estado: str | None = None) -> None:
        super().__init__(message)
        self.estado = estado


class UploadOutcomeUnknownError(SiiError):
    """The upload's bytes may have reached the SII but no receipt came back.

    Sending the file again could register the envío twice; the caller must first ask whether
    the SII holds its documents (:meth:`dte_core.sii.client.SiiClient.documents_status`, or the
    TRACKID mail the SII sends) and only re-upload those it reports as not received (FAU).
    """

    code = "sii_upload_outcome_unknown"
    retryable = False

    def __init__(self, message: str, *, cause: SiiError) -> None:
        super().__init__(message)
        self.cause = cause

"""The dte_core exception tree. Every error carries a machine-readable ``code``.

Callers at a boundary (CLI, HTTP) map these to exit codes / status codes in one table;
``fields`` lists each offending field so a user can fix all of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; ``field`` is a dotted path in SII element names."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class DteError(Exception):
    """Base of every dte_core error."""

    code = "dte_error"

    def __init__(
        self, message: str, *, fields: Sequence[FieldError] = (), code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "fields": [f.as_dict() for f in self.fields],
        }


class InvalidDocumentError(DteError):
    """The input document (JSON or model) breaks a rule of the SII format."""

    code = "invalid_document"


class InvalidRutError(InvalidDocumentError):
    code = "invalid_rut"


class XmlParseError(DteError):
    """The bytes are not well-formed XML (or not in an accepted encoding)."""

    code = "unreadable_xml"


class XmlSecurityError(XmlParseError):
    """The XML is hostile (DTD, entities, external references, over the size limit)."""

    code = "hostile_xml"


class SchemaError(DteError):
    """The XML does not validate against the official SII schema."""

    code = "schema_invalid"


class CafError(DteError):
    """A CAF (Código de Autorización de Folios) is unreadable, forged, expired or mismatched."""

    code = "invalid_caf"


class FolioError(DteError):
    code = "folio_error"


class FoliosExhaustedError(FolioError):
    """No CAF with free folios remains for this emisor and tipo_dte."""

    code = "folios_exhausted"


class CertificateError(DteError):
    """The company certificate (PKCS#12) cannot be opened or is unusable."""

    code = "invalid_certificate"


class SignatureError(DteError):
    """Signing failed, or a signature / stamp does not verify."""

    code = "signature_error"

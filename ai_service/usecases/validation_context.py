"""What validation before sending knows besides the document: the issuing context (company
RUT, CAFs, issued history, policy), lenient converters for raw SII-named JSON, and
:class:`Facts`, the document as the rules see it (raw sections always, typed parts when they
validate, totals computed by :mod:`dte_core.totals` when the lines allow)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from dte_core import totals
from dte_core.caf import CAF_VALIDITY_MONTHS, EXPIRING_TIPOS, Caf, add_months
from dte_core.codes import BOLETA_TIPOS, NOTA_TIPOS
from dte_core.errors import FieldError, InvalidDocumentError, InvalidRutError
from dte_core.models import (
    Detalle,
    Documento,
    DscRcgGlobal,
    Encabezado,
    IdDoc,
    Totales,
    parse_documento,
)
from dte_core.rut import Rut

_SANTIAGO = ZoneInfo("America/Santiago")


# --------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class CafSummary:
    """What the rules need from a CAF. ``expires_on`` defaults to the SII rule (six months after
    the authorisation for facturas, guías and notas; boleta CAFs never lapse)."""

    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    fecha_autorizacion: date
    expires_on: date | None = None
    remaining: int | None = None  # free folios left in this grant, when the store knows
    rut_emisor: str | None = None

    def __post_init__(self) -> None:
        if self.expires_on is None and self.tipo_dte in EXPIRING_TIPOS:
            expiry = add_months(self.fecha_autorizacion, CAF_VALIDITY_MONTHS)
            object.__setattr__(self, "expires_on", expiry)

    @classmethod
    def from_caf(cls, caf: Caf, *, remaining: int | None = None) -> CafSummary:
        return cls(
            tipo_dte=caf.tipo_dte,
            folio_desde=caf.folio_desde,
            folio_hasta=caf.folio_hasta,
            fecha_autorizacion=caf.fecha_autorizacion,
            expires_on=caf.expires_on,
            remaining=remaining,
            rut_emisor=caf.rut_emisor,
        )

    def covers(self, folio: int) -> bool:
        return self.folio_desde <= folio <= self.folio_hasta

    def is_expired(self, day: date) -> bool:
        return self.expires_on is not None and day > self.expires_on


@dataclass(frozen=True)
class IssuedDocument:
    """A document the company already issued. ``credited`` is what notas de crédito already
    took off it (facturas), so a new nota cannot credit more than what remains."""

    tipo_dte: int
    folio: int
    rut_receptor: str
    fecha_emision: date
    mnt_total: int
    credited: int = 0

    @property
    def balance(self) -> int:
        return self.mnt_total - self.credited


class IssuedHistory(Protocol):
    """What the duplicate and reference rules ask of the company's issued documents; the
    service backs it with the database (every query scoped to the company)."""

    def get(self, tipo_dte: int, folio: int) -> IssuedDocument | None: ...

    def for_receptor(self, rut_receptor: str, desde: date, hasta: date) -> Sequence[IssuedDocument]:
        """Documents to ``rut_receptor`` issued between ``desde`` and ``hasta`` (inclusive)."""
        ...


class InMemoryHistory:
    """An :class:`IssuedHistory` over a list (tests, the CLI, small batches)."""

    def __init__(self, documents: Iterable[IssuedDocument] = ()) -> None:
        self._by_key: dict[tuple[int, int], IssuedDocument] = {}
        self._by_receptor: dict[str, list[IssuedDocument]] = {}
        for doc in documents:
            self.add(doc)

    def add(self, doc: IssuedDocument) -> None:
        self._by_key[(doc.tipo_dte, doc.folio)] = doc
        self._by_receptor.setdefault(_canonical_rut(doc.rut_receptor), []).append(doc)

    def get(self, tipo_dte: int, folio: int) -> IssuedDocument | None:
        return self._by_key.get((tipo_dte, folio))

    def for_receptor(self, rut_receptor: str, desde: date, hasta: date) -> Sequence[IssuedDocument]:
        docs = self._by_receptor.get(_canonical_rut(rut_receptor), [])
        return [d for d in docs if desde <= d.fecha_emision <= hasta]


@dataclass(frozen=True)
class ValidationPolicy:
    """Thresholds a company may tune; the defaults follow SII practice."""

    low_folios: int = 10  # same low-water mark as dte_core.folios.FolioStore
    caf_expiry_warning_days: int = 15
    max_age_days: int = 60  # older documents fall in a tax period usually already declared
    duplicate_window_days: int = 3
    #: Art. 70 DL 825: a nota de crédito reduces the débito fiscal only within 3 months.
    nota_credito_months: int = 3
    #: CLP per UF, to apply Ley 21.713 (boletas over 135 UF name their receptor); None: skip.
    uf_clp: Decimal | None = None


@dataclass(frozen=True)
class IssuingContext:
    """Everything optional: rules needing a missing piece are skipped (and reported skipped).
    ``cafs=[]`` means "the company has no CAFs", ``None`` means "not known"."""

    company_rut: str | None = None
    cafs: Sequence[Caf | CafSummary] | None = None
    history: IssuedHistory | None = None
    #: Free folios per tipo across usable ranges (``FolioStore.remaining``); overrides the sum
    #: of ``CafSummary.remaining``.
    folios_remaining: Mapping[int, int] | None = None
    today: date | None = None  # default: today in Chile
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)


# --------------------------------------------------------------------------------- facts


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < _NUMBER_LIMIT else None
    dec = as_dec(value)
    if dec is None or dec != dec.to_integral_value():
        return None
    return int(dec)


#: Above the SII's largest amount (18 digits) a value is not a number the rules compute with.
_NUMBER_LIMIT = Decimal(10) ** 18


def as_dec(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int | float | str):
        try:
            dec = Decimal(str(value).strip())
        except InvalidOperation:
            return None
    else:
        return None
    return dec if dec.is_finite() and abs(dec) < _NUMBER_LIMIT else None


def as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def as_rut(value: Any) -> Rut | None:
    if isinstance(value, Rut):
        return value
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return Rut.parse(str(value))
    except InvalidRutError:
        return None


def _canonical_rut(value: str) -> str:
    rut = as_rut(value)
    return str(rut) if rut is not None else value.strip().upper()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):  # one element given as an object instead of a list
        return [value]
    if isinstance(value, list):
        return [_mapping(v) for v in value]
    return []


M = TypeVar("M", bound=BaseModel)


def _lenient(model: type[M], raw: Mapping[str, Any]) -> M | None:
    """The model from ``raw``, dropping fields that do not validate (once); None if still bad."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in bad})
    except ValidationError:
        return None


class Facts:
    """The document as the rules see it: raw sections (always), typed parts (when they
    validate), computed totals (when the lines allow) and the issuing context."""

    def __init__(self, raw: Any, context: IssuingContext) -> None:
        self.raw: Mapping[str, Any] = _mapping(raw)
        self.context = context
        self.policy = context.policy
        self.today = context.today or datetime.now(_SANTIAGO).date()
        self.schema_errors: list[FieldError] = []
        self.doc: Documento | None = None
        try:
            self.doc = parse_documento(raw)
        except InvalidDocumentError as exc:
            self.schema_errors = list(exc.fields)
        enc = _mapping(self.raw.get("Encabezado"))
        self.iddoc = _mapping(enc.get("IdDoc"))
        self.emisor = _mapping(enc.get("Emisor"))
        self.receptor = _mapping(enc.get("Receptor"))
        self.transporte = _mapping(enc.get("Transporte"))
        self.totales = _mapping(enc.get("Totales"))
        self.lines_raw = _items(self.raw.get("Detalle"))
        self.dr_raw = _items(self.raw.get("DscRcgGlobal"))
        self.refs_raw = _items(self.raw.get("Referencia"))
        self.tipo = as_int(self.iddoc.get("TipoDTE"))
        self.folio = as_int(self.iddoc.get("Folio"))
        self.fch_emis = as_date(self.iddoc.get("FchEmis"))
        self.rut_emisor = as_rut(self.emisor.get("RUTEmisor"))
        self.rut_receptor = as_rut(self.receptor.get("RUTRecep"))
        self.is_boleta = self.tipo in BOLETA_TIPOS
        self.is_nota = self.tipo in NOTA_TIPOS
        #: Paths some rule already reported, so a schema error on the same field is not repeated.
        self.reported: set[str] = set()
        #: Per-validation scratch space for values several rules derive (line amounts...).
        self.memo: dict[str, Any] = {}

    @cached_property
    def lines(self) -> list[Detalle | None]:
        if self.doc is not None:
            return list(self.doc.Detalle)
        return [_lenient(Detalle, line) for line in self.lines_raw]

    @cached_property
    def computed(self) -> tuple[Totales, list[FieldError]] | None:
        """Totals the lines give (dte_core's engine), when the lines and IdDoc are readable."""
        doc = self.doc
        if doc is None:
            idd = _lenient(IdDoc, self.iddoc)
            lines = self.lines
            drs = [_lenient(DscRcgGlobal, d) for d in self.dr_raw]
            if idd is None or not lines or any(x is None for x in [*lines, *drs]):
                return None
            doc = Documento.model_construct(
                Encabezado=Encabezado.model_construct(IdDoc=idd),
                Detalle=lines,
                DscRcgGlobal=drs,
                Referencia=[],
            )
        try:
            _, computed, errors = totals.compute(doc)
        except (ValidationError, ArithmeticError):  # amounts beyond what Totales can hold
            return None
        return computed, errors

    def given_total(self, name: str) -> int | None:
        return as_int(self.totales.get(name))

    def mnt_total(self) -> int | None:
        """The document's total: as given, else as the lines give it."""
        given = self.given_total("MntTotal")
        if given is not None:
            return given
        computed = self.computed
        return computed[0].MntTotal if computed is not None else None

    @cached_property
    def cafs(self) -> list[CafSummary] | None:
        if self.context.cafs is None:
            return None
        return [
            c if isinstance(c, CafSummary) else CafSummary.from_caf(c) for c in self.context.cafs
        ]

    @cached_property
    def company_rut(self) -> Rut | None:
        return as_rut(self.context.company_rut) if self.context.company_rut else None

    def has(self, need: str) -> bool:
        if need == "cafs":
            return self.cafs is not None and self.tipo is not None
        if need == "history":
            return self.context.history is not None
        if need == "company":
            return self.company_rut is not None
        if need == "tipo":
            return self.tipo is not None
        if need == "totals":
            return self.computed is not None
        raise ValueError(f"unknown rule need {need!r}")

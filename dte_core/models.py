"""Typed DTE documents, keyed by the SII element names (``DTE_v10.xsd``, ``EnvioBOLETA_v11.xsd``).

Field order is schema order: :mod:`dte_core.xmlbuild` emits the fields as declared. Facturas and
boletas share one model because their element sequences are compatible where both have an
element; what is allowed for only one family (``RznSoc`` vs ``RznSocEmisor``, ``GiroRecep``,
``TasaIVA``, ``FchRef``...) is enforced by :func:`document_rules`, so a document is checked
field by field against the schema of the envelope it will travel in.
"""

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dte_core import codes
from dte_core.codes import (
    BOLETA_TIPOS,
    EXENTA_TIPOS,
    FCHEMIS_MIN,
    FECHA_MAX,
    INDEXE_BOLETA,
    MAX_DETALLE,
    MAX_DETALLE_BOLETA,
    NOTA_TIPOS,
    CodRef,
    IndServicio,
    TipoDTE,
    TpoMov,
    TpoValor,
)
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.rut import Rut

Str = Annotated[str, Field(min_length=1)]
Monto = Annotated[int, Field(ge=0, le=999_999_999_999_999_999)]
#: Dec12_6Type (SiiTypes_v10.xsd): 12 integer digits, 6 decimals, non-negative.
Dec12_6 = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]
#: PctType (SiiTypes_v10.xsd): 0-100 with two decimals.
Pct = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
FolioNumber = Annotated[int, Field(gt=0, le=9_999_999_999)]


class SiiModel(BaseModel):
    """Unknown keys are errors: a misspelt element name must not vanish silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class IdDoc(SiiModel):
    TipoDTE: TipoDTE
    Folio: FolioNumber | None = None  # omitted: allocated from the CAF when issuing
    FchEmis: date
    IndNoRebaja: Annotated[int, Field(ge=1, le=1)] | None = None
    TipoDespacho: codes.TipoDespacho | None = None
    IndTraslado: codes.IndTraslado | None = None
    TpoImpresion: codes.TpoImpresion | None = None
    # Facturas (1-3) and boletas (1-4, mandatory) give IndServicio different meanings.
    IndServicio: Annotated[int, Field(ge=1, le=4)] | None = None
    IndMntNeto: codes.IndMntNeto | None = None  # boletas only
    MntBruto: Annotated[int, Field(ge=1, le=1)] | None = None
    FmaPago: Annotated[int, Field(ge=1, le=3)] | None = None
    FchCancel: date | None = None
    PeriodoDesde: date | None = None
    PeriodoHasta: date | None = None
    TermPagoGlosa: Annotated[str, Field(max_length=100)] | None = None
    FchVenc: date | None = None


class Emisor(SiiModel):
    RUTEmisor: Rut
    RznSoc: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    RznSocEmisor: Annotated[str, Field(min_length=1, max_length=100)] | None = None  # boletas
    GiroEmis: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    GiroEmisor: Annotated[str, Field(min_length=1, max_length=80)] | None = None  # boletas
    Telefono: Annotated[list[Annotated[str, Field(max_length=20)]], Field(max_length=2)] = []
    CorreoEmisor: Annotated[str, Field(max_length=80, pattern=r"^\S+@\S+$")] | None = None
    Acteco: Annotated[list[Annotated[int, Field(ge=1, le=999_999)]], Field(max_length=4)] = []
    Sucursal: Annotated[str, Field(max_length=20)] | None = None
    CdgSIISucur: Annotated[int, Field(ge=0, le=999_999_999)] | None = None
    DirOrigen: Annotated[str, Field(max_length=70)] | None = None
    CmnaOrigen: Annotated[str, Field(max_length=20)] | None = None
    CiudadOrigen: Annotated[str, Field(max_length=20)] | None = None
    CdgVendedor: Annotated[str, Field(max_length=60)] | None = None


class Receptor(SiiModel):
    RUTRecep: Rut
    CdgIntRecep: Annotated[str, Field(max_length=20)] | None = None
    RznSocRecep: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    GiroRecep: Annotated[str, Field(min_length=1, max_length=40)] | None = None  # not boletas
    Contacto: Annotated[str, Field(max_length=80)] | None = None
    CorreoRecep: Annotated[str, Field(max_length=80, pattern=r"^\S+@\S+$")] | None = None
    TelefonoRecep: Annotated[str, Field(max_length=20)] | None = None  # boletas only
    DirRecep: Annotated[str, Field(max_length=70)] | None = None
    CmnaRecep: Annotated[str, Field(max_length=20)] | None = None
    CiudadRecep: Annotated[str, Field(max_length=20)] | None = None


class Transporte(SiiModel):
    Patente: Annotated[str, Field(max_length=8)] | None = None
    RUTTrans: Rut | None = None
    DirDest: Annotated[str, Field(max_length=70)] | None = None
    CmnaDest: Annotated[str, Field(max_length=20)] | None = None
    CiudadDest: Annotated[str, Field(max_length=20)] | None = None


_Transporte = Transporte  # a field of the same name shadows the class in its owner


class Totales(SiiModel):
    MntNeto: Monto | None = None
    MntExe: Monto | None = None
    TasaIVA: Pct | None = None  # not in boletas
    IVA: Monto | None = None
    GrntDep: Monto | None = None
    MntTotal: Monto | None = None  # omitted: computed
    MontoNF: int | None = None
    SaldoAnterior: int | None = None
    VlrPagar: int | None = None


_Totales = Totales  # a field of the same name shadows the class in its owner


class Encabezado(SiiModel):
    IdDoc: IdDoc
    Emisor: Emisor
    Receptor: Receptor
    Transporte: _Transporte | None = None
    Totales: _Totales | None = None  # omitted: computed


class CdgItem(SiiModel):
    TpoCodigo: Annotated[str, Field(min_length=1, max_length=10)]
    VlrCodigo: Annotated[str, Field(min_length=1, max_length=35)]


_CdgItem = CdgItem  # a field of the same name shadows the class in its owner


class Detalle(SiiModel):
    NroLinDet: Annotated[int, Field(ge=1, le=1000)] | None = None  # omitted: numbered 1..n
    CdgItem: Annotated[list[_CdgItem], Field(max_length=5)] = []
    IndExe: codes.IndExe | None = None
    NmbItem: Annotated[str, Field(min_length=1, max_length=80)]
    DscItem: Annotated[str, Field(max_length=1000)] | None = None
    QtyItem: Dec12_6 | None = None
    UnmdItem: Annotated[str, Field(max_length=4)] | None = None
    PrcItem: Dec12_6 | None = None
    DescuentoPct: Pct | None = None
    DescuentoMonto: Monto | None = None
    RecargoPct: Pct | None = None
    RecargoMonto: Monto | None = None
    MontoItem: Monto | None = None  # omitted: computed


class DscRcgGlobal(SiiModel):
    NroLinDR: Annotated[int, Field(ge=1, le=20)] | None = None
    TpoMov: TpoMov
    GlosaDR: Annotated[str, Field(max_length=45)] | None = None
    TpoValor: TpoValor
    ValorDR: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
    IndExeDR: codes.IndExeDR | None = None


_DscRcgGlobal = DscRcgGlobal  # a field of the same name shadows the class in its owner


class Referencia(SiiModel):
    NroLinRef: Annotated[int, Field(ge=1, le=40)] | None = None
    TpoDocRef: Annotated[str, Field(min_length=1, max_length=3)]
    IndGlobal: Annotated[int, Field(ge=1, le=1)] | None = None
    FolioRef: Annotated[str, Field(min_length=1, max_length=18)]
    RUTOtr: Rut | None = None
    FchRef: date | None = None  # mandatory outside boletas
    # An int 1-3 in DTE_v10; a free code of up to 18 characters in EnvioBOLETA_v11.
    CodRef: Annotated[str, Field(min_length=1, max_length=18)] | None = None
    RazonRef: Annotated[str, Field(max_length=90)] | None = None
    CodVndor: Annotated[str, Field(max_length=8)] | None = None  # boletas only
    CodCaja: Annotated[str, Field(max_length=8)] | None = None  # boletas only

    @field_validator("TpoDocRef", "FolioRef", "CodRef", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def cod_ref(self) -> codes.CodRef | None:
        """The factura-family meaning of CodRef, when it has one."""
        if self.CodRef is None or not self.CodRef.isdigit():
            return None
        try:
            return CodRef(int(self.CodRef))
        except ValueError:
            return None


_Referencia = Referencia  # a field of the same name shadows the class in its owner


class Documento(SiiModel):
    Encabezado: Encabezado
    Detalle: Annotated[list[Detalle], Field(min_length=1, max_length=MAX_DETALLE_BOLETA)]
    DscRcgGlobal: Annotated[list[_DscRcgGlobal], Field(max_length=20)] = []
    Referencia: Annotated[list[_Referencia], Field(max_length=40)] = []

    @property
    def tipo(self) -> int:
        return int(self.Encabezado.IdDoc.TipoDTE)

    @property
    def is_boleta(self) -> bool:
        return self.tipo in BOLETA_TIPOS


class Caratula(SiiModel):
    """The CLI input's cover; RutEmisor and the timestamp are filled in when signing."""

    RutEnvia: Rut
    RutReceptor: Rut
    FchResol: date
    NroResol: Annotated[int, Field(ge=0, le=999_999)]


class EnvioRequest(SiiModel):
    Caratula: Caratula
    Documentos: Annotated[list[Documento], Field(min_length=1)]


def _path(loc: Iterable[int | str], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "function_")):
            out += f".{part}" if out else part
    return out


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """A pydantic error as :class:`FieldError` s with dotted/indexed paths (``a.b[2].c``)."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        code = "required" if err["type"] == "missing" else str(err["type"])
        errors.append(FieldError(_path(loc, prefix), code, err["msg"]))
    return errors


def _at(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def document_rules(doc: Documento, prefix: str = "") -> list[FieldError]:
    """Rules the schema of the document's envelope (or the SII manual) imposes per tipo."""
    errs: list[FieldError] = []
    enc = doc.Encabezado
    tipo = doc.tipo

    def err(path: str, code: str, message: str) -> None:
        errs.append(FieldError(_at(prefix, path), code, message))

    idd = enc.IdDoc
    if not FCHEMIS_MIN <= idd.FchEmis <= FECHA_MAX:
        err("Encabezado.IdDoc.FchEmis", "out_of_range", f"must be {FCHEMIS_MIN} to {FECHA_MAX}")
    if doc.is_boleta:
        _boleta_rules(doc, err)
    else:
        _factura_rules(doc, err)
    if tipo == TipoDTE.GUIA_DESPACHO and idd.IndTraslado is None:
        err("Encabezado.IdDoc.IndTraslado", "required", "guías de despacho need IndTraslado")
    if tipo != TipoDTE.GUIA_DESPACHO and idd.IndTraslado is not None:
        err("Encabezado.IdDoc.IndTraslado", "not_allowed", "only guías de despacho (52)")
    if tipo in EXENTA_TIPOS and enc.Totales is not None:
        t = enc.Totales
        for name in ("MntNeto", "TasaIVA", "IVA"):
            if getattr(t, name):
                err(f"Encabezado.Totales.{name}", "not_allowed", f"tipo {tipo} is exempt")
    if tipo in NOTA_TIPOS:
        _nota_rules(doc, err)
    for i, line in enumerate(doc.Detalle):
        if line.MontoItem is None and (line.QtyItem is None or line.PrcItem is None):
            if line.PrcItem is None and line.QtyItem is None:
                err(f"Detalle[{i}].PrcItem", "required", "give PrcItem and QtyItem, or MontoItem")
            elif line.PrcItem is None:
                err(f"Detalle[{i}].PrcItem", "required", "QtyItem needs a PrcItem")
        if line.DescuentoPct is not None and line.DescuentoMonto is None and not line.PrcItem:
            err(f"Detalle[{i}].DescuentoPct", "needs_price", "a percentage needs PrcItem")
    for i, dr in enumerate(doc.DscRcgGlobal):
        if dr.TpoValor == TpoValor.PORCENTAJE and dr.ValorDR > 100:
            err(f"DscRcgGlobal[{i}].ValorDR", "out_of_range", "a percentage is at most 100")
    return errs


def _boleta_rules(doc: Documento, err: Any) -> None:
    # the line limit (1 000) and IndServicio's range (1-4) are the model's own field limits
    enc = doc.Encabezado
    if enc.IdDoc.IndServicio is None:
        err("Encabezado.IdDoc.IndServicio", "required", "boletas need IndServicio (1-4)")
    for name, boleta_name in (("RznSoc", "RznSocEmisor"), ("GiroEmis", "GiroEmisor")):
        if getattr(enc.Emisor, name) is not None:
            err(f"Encabezado.Emisor.{name}", "not_allowed", f"boletas use {boleta_name}")
    if enc.Emisor.Acteco:
        err("Encabezado.Emisor.Acteco", "not_allowed", "boletas carry no Acteco")
    if enc.Receptor.GiroRecep is not None:
        err("Encabezado.Receptor.GiroRecep", "not_allowed", "boletas carry no GiroRecep")
    if enc.Totales is not None and enc.Totales.TasaIVA is not None:
        err("Encabezado.Totales.TasaIVA", "not_allowed", "boletas carry no TasaIVA")
    for i, line in enumerate(doc.Detalle):
        if line.IndExe is not None and line.IndExe not in INDEXE_BOLETA:
            err(f"Detalle[{i}].IndExe", "invalid", "boletas allow IndExe 1, 2 or 6")


def _factura_rules(doc: Documento, err: Any) -> None:
    enc = doc.Encabezado
    if len(doc.Detalle) > MAX_DETALLE:
        err("Detalle", "too_many", f"tipo {doc.tipo} carries at most {MAX_DETALLE} lines")
    if enc.IdDoc.IndServicio is not None and enc.IdDoc.IndServicio not in {
        int(v) for v in IndServicio
    }:
        err("Encabezado.IdDoc.IndServicio", "invalid", "facturas take IndServicio 1-3")
    if enc.IdDoc.IndMntNeto is not None:
        err("Encabezado.IdDoc.IndMntNeto", "not_allowed", "only boletas carry IndMntNeto")
    em = enc.Emisor
    for name, hint in (("RznSoc", "razón social"), ("GiroEmis", "giro")):
        if getattr(em, name) is None:
            err(f"Encabezado.Emisor.{name}", "required", f"the emisor's {hint}")
    for name in ("RznSocEmisor", "GiroEmisor"):
        if getattr(em, name) is not None:
            err(f"Encabezado.Emisor.{name}", "not_allowed", "only boletas use this name")
    if not em.Acteco:
        err("Encabezado.Emisor.Acteco", "required", "at least one economic activity code")
    if enc.Receptor.RznSocRecep is None:
        err("Encabezado.Receptor.RznSocRecep", "required", "the receptor's razón social")
    if enc.Receptor.TelefonoRecep is not None:
        err("Encabezado.Receptor.TelefonoRecep", "not_allowed", "only boletas carry it")
    for i, ref in enumerate(doc.Referencia):
        if ref.FchRef is None:
            err(f"Referencia[{i}].FchRef", "required", "the date of the referenced document")
        if ref.CodRef is not None and ref.cod_ref is None:
            err(f"Referencia[{i}].CodRef", "invalid", "CodRef is 1 (anula), 2 or 3")
        for name in ("CodVndor", "CodCaja"):
            if getattr(ref, name) is not None:
                err(f"Referencia[{i}].{name}", "not_allowed", "only boletas carry it")


def _nota_rules(doc: Documento, err: Any) -> None:
    """Notas de débito/crédito must say which document they modify, and how (CodRef)."""
    modifying = [r for r in doc.Referencia if r.TpoDocRef.isdigit() and r.CodRef]
    if not doc.Referencia:
        err("Referencia", "required", "a nota must reference the document it modifies")
        return
    if not modifying:
        err("Referencia[0].CodRef", "required", "CodRef 1 (anula), 2 (texto) or 3 (montos)")
        return
    if any(r.cod_ref == CodRef.CORRIGE_TEXTO for r in modifying):
        for i, line in enumerate(doc.Detalle):
            if (line.MontoItem or 0) > 0 or ((line.PrcItem or 0) > 0 and (line.QtyItem or 1) > 0):
                err(f"Detalle[{i}].MontoItem", "must_be_zero", "CodRef 2 corrects text only")


def parse_documento(data: Mapping[str, Any] | Any, *, path: str = "") -> Documento:
    """A :class:`Documento` from SII-named JSON; every offending field is reported at once."""
    if not isinstance(data, Mapping):
        raise InvalidDocumentError(
            "a document must be a JSON object with Encabezado and Detalle",
            fields=[FieldError(path or "Documento", "invalid_type", "expected an object")],
        )
    try:
        doc = Documento.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidDocumentError(
            "the document is invalid", fields=field_errors(exc, path)
        ) from exc
    errors = document_rules(doc, path)
    if errors:
        raise InvalidDocumentError("the document is invalid", fields=errors)
    return doc


def parse_envio_request(data: Mapping[str, Any] | Any) -> EnvioRequest:
    """The CLI input ``{"Caratula": {...}, "Documentos": [...]}``; errors of all documents."""
    if not isinstance(data, Mapping):
        raise InvalidDocumentError(
            "the input must be a JSON object with Caratula and Documentos",
            code="invalid_json",
            fields=[FieldError("", "invalid_type", "expected an object")],
        )
    errors: list[FieldError] = []
    unknown = sorted(set(data) - {"Caratula", "Documentos"})
    errors += [FieldError(k, "extra_forbidden", "unknown key") for k in unknown]
    caratula: Caratula | None = None
    try:
        caratula = Caratula.model_validate(data.get("Caratula"))
    except ValidationError as exc:
        errors += field_errors(exc, "Caratula")
    raw_docs = data.get("Documentos")
    documentos: list[Documento] = []
    if not isinstance(raw_docs, list) or not raw_docs:
        errors.append(FieldError("Documentos", "required", "a non-empty list of documents"))
    else:
        for i, raw in enumerate(raw_docs):
            try:
                documentos.append(parse_documento(raw, path=f"Documentos[{i}]"))
            except InvalidDocumentError as exc:
                errors += exc.fields
    if errors or caratula is None:
        raise InvalidDocumentError("the input is invalid", fields=errors)
    return EnvioRequest(Caratula=caratula, Documentos=documentos)

"""Validation rules on RUTs, the parties (emisor, receptor, giro, Acteco, address, comuna,
e-mail) and text lengths; the official comuna list and its "did you mean" index.

Sources: the SII manual "Formato Documentos Tributarios Electrónicos" (v2.4.2; field numbers
below are its Encabezado table), "Formato Boletas Electrónicas" (2024-12) and DTE_v10.xsd.
"""

from __future__ import annotations

import difflib
import re
import typing
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from annotated_types import MaxLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ai_service.usecases.validation import Hit, rule
from ai_service.usecases.validation_context import Facts, as_int, as_rut
from dte_core.codes import (
    RUT_CONSUMIDOR_FINAL,
    IndTraslado,
)
from dte_core.models import (
    CdgItem,
    Detalle,
    DscRcgGlobal,
    Emisor,
    IdDoc,
    Receptor,
    Referencia,
    Transporte,
)
from dte_core.rut import check_digit

#: Manual: RUTs are a number "entre 100.000 y 99 millones" with its check digit.
RUT_MIN = 100_000
#: Tipos whose emisor address and comuna are mandatory (manual fields 44-45: "1" for 33, 34,
#: 52 and 46); the receptor's (fields 60-61) too. Notas may omit them.
ADDRESS_TIPOS = frozenset({33, 34, 46, 52})
GIRO_RECEPTOR_TIPOS = frozenset({33, 34, 46, 52})  # manual field 57
#: IndTraslado values that move goods without a sale: the receptor may be the emisor itself.
SELF_TRASLADO = frozenset({IndTraslado.TRASLADO_INTERNO, IndTraslado.OTROS_NO_VENTA})
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)


# --------------------------------------------------------------------------------- helpers


def _rut_problem(value: Any) -> tuple[str, str] | None:
    """(message, fix) when ``value`` is not a valid RUT, else None."""
    if value is None or value == "":
        return None
    text = str(value).strip().replace(".", "").replace(" ", "").upper()
    body, _, dv = text.rpartition("-")
    if not body:
        body, dv = text[:-1], text[-1:]
    if not body.isdigit() or not re.fullmatch(r"[0-9K]", dv):
        return f"{value!r} is not a RUT", "write it as 12345678-5 (number, hyphen, check digit)"
    expected = check_digit(int(body))
    if dv != expected:
        return (
            f"RUT {value} has a wrong check digit (expected {expected})",
            f"use {int(body)}-{expected}, or check the number against the SII's records",
        )
    return None


def _rut_hits(path: str, value: Any) -> Iterable[Hit]:
    problem = _rut_problem(value)
    if problem is not None:
        yield Hit(path, problem[0], problem[1])


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _fold(text: str) -> str:
    """Comparison key: no accents, case, spaces or punctuation ("Ñuñoa" -> "nunoa")."""
    folded = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in folded if c.isalnum() and not unicodedata.combining(c))


@cache
def comuna_index() -> tuple[dict[str, str], tuple[str, ...]]:
    """Folded name or alias -> official comuna name, and the folded keys (for suggestions)."""
    path = Path(__file__).with_name("data") / "comunas.txt"
    index: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        official, *aliases = (part.strip() for part in line.split("|"))
        for name in (official, *aliases):
            index[_fold(name)] = official
    return index, tuple(index)


def official_comuna(name: str) -> str | None:
    return comuna_index()[0].get(_fold(name))


def suggest_comuna(name: str) -> str | None:
    index, keys = comuna_index()
    close = difflib.get_close_matches(_fold(name), keys, n=1, cutoff=0.75)
    return index[close[0]] if close else None


def _str_limits(model: type[BaseModel]) -> dict[str, tuple[int, bool]]:
    """Field -> (max length, is a list of strings), read from the dte_core model."""

    def limit(ann: Any, meta: list[Any]) -> int | None:
        for m in meta:
            if isinstance(m, MaxLen):
                return int(m.max_length)
        for arg in typing.get_args(ann):
            if isinstance(arg, FieldInfo):
                return limit(None, list(arg.metadata))
            if typing.get_origin(arg) is typing.Annotated and typing.get_args(arg)[0] is str:
                return limit(arg, [])
        return None

    limits: dict[str, tuple[int, bool]] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        if typing.get_origin(ann) is list:
            (inner,) = typing.get_args(ann)
            if typing.get_origin(inner) is typing.Annotated and typing.get_args(inner)[0] is str:
                found = limit(inner, [])
                if found is not None:
                    limits[name] = (found, True)
            continue
        text_field = ann is str or any(
            typing.get_origin(a) is typing.Annotated and typing.get_args(a)[0] is str
            for a in typing.get_args(ann)
        )
        if text_field:
            found = limit(ann, list(info.metadata))
            if found is not None:
                limits[name] = (found, False)
    return limits


@cache
def _limits() -> dict[type[BaseModel], dict[str, tuple[int, bool]]]:
    models = (IdDoc, Emisor, Receptor, Transporte, Detalle, CdgItem, DscRcgGlobal, Referencia)
    return {m: _str_limits(m) for m in models}


def _too_long(path: str, raw: Mapping[str, Any], model: type[BaseModel]) -> Iterable[Hit]:
    for name, (limit, is_list) in _limits()[model].items():
        value = raw.get(name)
        values = (value if isinstance(value, list) else []) if is_list else [value]
        for i, text in enumerate(values):
            if isinstance(text, str) and len(text.strip()) > limit:
                at = f"{path}.{name}[{i}]" if is_list else f"{path}.{name}"
                yield Hit(
                    at,
                    f"{name} has {len(text.strip())} characters; the SII allows {limit}",
                    f"shorten it to {limit} characters (the rest may go in DscItem or a note)",
                )


# --------------------------------------------------------------------------------- RUTs


@rule("RUT_EMISOR_INVALID", "error", "RUTEmisor has a valid format and check digit")
def _rut_emisor(f: Facts) -> Iterable[Hit]:
    yield from _rut_hits("Encabezado.Emisor.RUTEmisor", f.emisor.get("RUTEmisor"))


@rule("RUT_RECEPTOR_INVALID", "error", "RUTRecep has a valid format and check digit")
def _rut_receptor(f: Facts) -> Iterable[Hit]:
    yield from _rut_hits("Encabezado.Receptor.RUTRecep", f.receptor.get("RUTRecep"))


@rule("RUT_TRANSPORTE_INVALID", "error", "Transporte RUTs have valid check digits")
def _rut_transporte(f: Facts) -> Iterable[Hit]:
    yield from _rut_hits("Encabezado.Transporte.RUTTrans", f.transporte.get("RUTTrans"))
    chofer = f.transporte.get("Chofer")
    if isinstance(chofer, Mapping):
        yield from _rut_hits("Encabezado.Transporte.Chofer.RUTChofer", chofer.get("RUTChofer"))


@rule("RUT_OTRO_INVALID", "error", "Referencia RUTOtr has a valid check digit")
def _rut_otro(f: Facts) -> Iterable[Hit]:
    for i, ref in enumerate(f.refs_raw):
        yield from _rut_hits(f"Referencia[{i}].RUTOtr", ref.get("RUTOtr"))


@rule("RUT_OUT_OF_RANGE", "error", "RUT numbers lie between 100.000 and 99.999.999")
def _rut_range(f: Facts) -> Iterable[Hit]:
    fields = [
        ("Encabezado.Emisor.RUTEmisor", f.emisor.get("RUTEmisor")),
        ("Encabezado.Receptor.RUTRecep", f.receptor.get("RUTRecep")),
        ("Encabezado.Transporte.RUTTrans", f.transporte.get("RUTTrans")),
        *((f"Referencia[{i}].RUTOtr", r.get("RUTOtr")) for i, r in enumerate(f.refs_raw)),
    ]
    for path, value in fields:
        rut = as_rut(value)
        if rut is not None and rut.number < RUT_MIN:
            yield Hit(path, f"RUT {rut} is below 100.000", "check the number: it lost digits")


# --------------------------------------------------------------------------------- parties


@rule("EMISOR_NOT_COMPANY", "error", "the emisor is the company issuing", needs=["company"])
def _emisor_company(f: Facts) -> Iterable[Hit]:
    if f.rut_emisor is not None and f.rut_emisor != f.company_rut:
        yield Hit(
            "Encabezado.Emisor.RUTEmisor",
            f"RUTEmisor {f.rut_emisor} is not the company's RUT {f.company_rut}",
            f"issue with RUTEmisor {f.company_rut}, or switch to the right company",
        )


@rule("RECEPTOR_IS_EMISOR", "error", "a sale is not addressed to the emisor itself")
def _receptor_emisor(f: Facts) -> Iterable[Hit]:
    if f.rut_emisor is None or f.rut_emisor != f.rut_receptor:
        return
    if f.tipo == 52 and as_int(f.iddoc.get("IndTraslado")) in SELF_TRASLADO:
        return
    yield Hit(
        "Encabezado.Receptor.RUTRecep",
        f"the receptor {f.rut_receptor} is the emisor",
        "use the customer's RUT (only guías de traslado interno go to oneself)",
    )


@rule("RECEPTOR_CONSUMIDOR_FINAL", "error", "66666666-6 only on boletas")
def _consumidor_final(f: Facts) -> Iterable[Hit]:
    if f.tipo is not None and not f.is_boleta and str(f.rut_receptor) == RUT_CONSUMIDOR_FINAL:
        yield Hit(
            "Encabezado.Receptor.RUTRecep",
            f"{RUT_CONSUMIDOR_FINAL} (consumidor final) is only valid on boletas",
            "use the customer's RUT, or issue a boleta (39/41)",
        )


@rule("GIRO_EMISOR_MISSING", "error", "facturas, guías and notas carry GiroEmis")
def _giro_emisor(f: Facts) -> Iterable[Hit]:
    if f.tipo is not None and not f.is_boleta and is_blank(f.emisor.get("GiroEmis")):
        yield Hit(
            "Encabezado.Emisor.GiroEmis",
            "the emisor's giro is missing",
            "fill in the giro registered with the SII for this sale",
        )


@rule("GIRO_RECEPTOR_MISSING", "error", "GiroRecep on facturas and guías (manual field 57)")
def _giro_receptor(f: Facts) -> Iterable[Hit]:
    if f.tipo in GIRO_RECEPTOR_TIPOS and is_blank(f.receptor.get("GiroRecep")):
        yield Hit(
            "Encabezado.Receptor.GiroRecep",
            f"tipo {f.tipo} needs the receptor's giro",
            "fill in the customer's giro (as in the SII's records, up to 40 characters)",
        )


@rule("RECEPTOR_NAME_MISSING", "error", "RznSocRecep outside boletas")
def _receptor_name(f: Facts) -> Iterable[Hit]:
    if f.tipo is not None and not f.is_boleta and is_blank(f.receptor.get("RznSocRecep")):
        yield Hit(
            "Encabezado.Receptor.RznSocRecep",
            "the receptor's razón social is missing",
            "fill in the customer's name as registered with the SII",
        )


@rule("ACTECO_MISSING", "error", "facturas, guías and notas carry an Acteco (field 37)")
def _acteco_missing(f: Facts) -> Iterable[Hit]:
    if f.tipo is not None and not f.is_boleta and is_blank(f.emisor.get("Acteco")):
        yield Hit(
            "Encabezado.Emisor.Acteco",
            "no economic activity code (Acteco)",
            "add the company's 6-digit Acteco registered with the SII (e.g. 620200)",
        )


@rule("ACTECO_FORMAT", "warning", "Acteco codes have 6 digits (SII nomenclature since 2018)")
def _acteco_format(f: Facts) -> Iterable[Hit]:
    codes = f.emisor.get("Acteco")
    for i, code in enumerate(codes if isinstance(codes, list) else [codes] if codes else []):
        value = as_int(code)
        if value is not None and not 10_000 <= value <= 999_999:
            yield Hit(
                f"Encabezado.Emisor.Acteco[{i}]",
                f"Acteco {code} is not a 6-digit code of the current SII nomenclature",
                "use the code shown in the SII's 'Consultar situación tributaria'",
            )


def _address_fields(f: Facts) -> list[tuple[str, Mapping[str, Any], str]]:
    return [
        ("Encabezado.Emisor", f.emisor, "Origen"),
        ("Encabezado.Receptor", f.receptor, "Recep"),
    ]


@rule("ADDRESS_MISSING", "error", "DirOrigen/DirRecep on facturas and guías (fields 44, 60)")
def _address_missing(f: Facts) -> Iterable[Hit]:
    if f.tipo not in ADDRESS_TIPOS:
        return
    for path, section, suffix in _address_fields(f):
        if is_blank(section.get(f"Dir{suffix}")):
            yield Hit(f"{path}.Dir{suffix}", f"Dir{suffix} is missing", "fill in the address")


@rule("COMUNA_MISSING", "error", "CmnaOrigen/CmnaRecep on facturas and guías (fields 45, 61)")
def _comuna_missing(f: Facts) -> Iterable[Hit]:
    if f.tipo not in ADDRESS_TIPOS:
        return
    for path, section, suffix in _address_fields(f):
        if is_blank(section.get(f"Cmna{suffix}")):
            yield Hit(f"{path}.Cmna{suffix}", f"Cmna{suffix} is missing", "fill in the comuna")


@rule("COMUNA_UNKNOWN", "warning", "comunas are official Chilean comunas")
def _comuna_unknown(f: Facts) -> Iterable[Hit]:
    fields = [
        ("Encabezado.Emisor.CmnaOrigen", f.emisor.get("CmnaOrigen")),
        ("Encabezado.Receptor.CmnaRecep", f.receptor.get("CmnaRecep")),
        ("Encabezado.Transporte.CmnaDest", f.transporte.get("CmnaDest")),
    ]
    for path, value in fields:
        if not isinstance(value, str) or not value.strip() or official_comuna(value):
            continue
        guess = suggest_comuna(value)
        yield Hit(
            path,
            f"{value!r} is not a Chilean comuna",
            f"did you mean {guess!r}?" if guess else "write the comuna's official name",
        )


@rule("EMAIL_INVALID", "warning", "e-mail addresses are well formed")
def _email(f: Facts) -> Iterable[Hit]:
    for path, value in (
        ("Encabezado.Emisor.CorreoEmisor", f.emisor.get("CorreoEmisor")),
        ("Encabezado.Receptor.CorreoRecep", f.receptor.get("CorreoRecep")),
    ):
        if isinstance(value, str) and value.strip() and not _EMAIL.match(value.strip()):
            # No "@" or blanks breaks the schema (the SII rejects); the rest only bounces.
            broken = "@" not in value or any(c.isspace() for c in value.strip())
            yield Hit(
                path,
                f"{value!r} is not a valid e-mail address",
                "write it as name@domain.cl",
                "error" if broken else None,
            )


@rule("TEXT_TOO_LONG", "error", "texts fit the SII's maximum lengths")
def _text_too_long(f: Facts) -> Iterable[Hit]:
    yield from _too_long("Encabezado.IdDoc", f.iddoc, IdDoc)
    yield from _too_long("Encabezado.Emisor", f.emisor, Emisor)
    yield from _too_long("Encabezado.Receptor", f.receptor, Receptor)
    yield from _too_long("Encabezado.Transporte", f.transporte, Transporte)
    for i, line in enumerate(f.lines_raw):
        yield from _too_long(f"Detalle[{i}]", line, Detalle)
        codes = line.get("CdgItem")
        for j, code in enumerate(codes if isinstance(codes, list) else []):
            if isinstance(code, Mapping):
                yield from _too_long(f"Detalle[{i}].CdgItem[{j}]", code, CdgItem)
    for i, dr in enumerate(f.dr_raw):
        yield from _too_long(f"DscRcgGlobal[{i}]", dr, DscRcgGlobal)
    for i, ref in enumerate(f.refs_raw):
        yield from _too_long(f"Referencia[{i}]", ref, Referencia)

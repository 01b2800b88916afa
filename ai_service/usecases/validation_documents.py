"""Validation rules on the CAF and folios, the dates, and what each tipo must carry (guías,
boletas, the Detalle lines). Sources as in :mod:`ai_service.usecases.validation_rules`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from ai_service.usecases.validation import Hit, rule
from ai_service.usecases.validation_context import Facts, as_date, as_int, as_rut
from ai_service.usecases.validation_rules import is_blank
from dte_core.codes import (
    FCHEMIS_MIN,
    FECHA_MAX,
    MAX_DETALLE,
    MAX_DETALLE_BOLETA,
    IndServicioBoleta,
)

# --------------------------------------------------------------------------------- CAF, folios


def _cafs_for_tipo(f: Facts) -> list[Any]:
    own = [c for c in f.cafs or [] if c.tipo_dte == f.tipo]
    if f.rut_emisor is None:
        return own
    return [c for c in own if c.rut_emisor is None or as_rut(c.rut_emisor) == f.rut_emisor]


@rule("CAF_MISSING", "error", "a CAF is loaded for the tipo", needs=["cafs"])
def _caf_missing(f: Facts) -> Iterable[Hit]:
    if not _cafs_for_tipo(f):
        others = [c for c in f.cafs or [] if c.tipo_dte == f.tipo]
        why = " (the loaded ones belong to another RUT)" if others else ""
        yield Hit(
            "Encabezado.IdDoc.TipoDTE",
            f"no CAF for tipo {f.tipo} is loaded{why}",
            f"request folios for tipo {f.tipo} at sii.cl and load the CAF",
        )


def _caf_in_use(f: Facts) -> list[Any]:
    """The CAF stamping this folio, or (no folio yet) the unexpired ones it would come from."""
    cafs = _cafs_for_tipo(f)
    if f.folio is not None:
        return [c for c in cafs if c.covers(f.folio)]
    return cafs


@rule("CAF_EXPIRED", "error", "the CAF has not lapsed (6 months for facturas)", needs=["cafs"])
def _caf_expired(f: Facts) -> Iterable[Hit]:
    cafs = _caf_in_use(f)
    day = max(f.today, f.fch_emis or f.today)
    if cafs and all(c.is_expired(day) for c in cafs):
        last = max(c.expires_on for c in cafs)
        yield Hit(
            "Encabezado.IdDoc.Folio",
            f"the CAF for tipo {f.tipo} expired on {last}: the SII rejects its folios",
            "annul the unused folios at sii.cl and load a new CAF",
        )


@rule("CAF_EXPIRING_SOON", "warning", "the CAF is not about to lapse", needs=["cafs"])
def _caf_expiring(f: Facts) -> Iterable[Hit]:
    cafs = [c for c in _caf_in_use(f) if not c.is_expired(f.today)]
    horizon = f.today + timedelta(days=f.policy.caf_expiry_warning_days)
    if cafs and all(c.expires_on is not None and c.expires_on <= horizon for c in cafs):
        last = max(c.expires_on for c in cafs)
        yield Hit(
            "Encabezado.IdDoc.Folio",
            f"the CAF for tipo {f.tipo} expires on {last}",
            "request a new CAF now; folios left over must be annulled",
        )


@rule("FOLIO_OUT_OF_RANGE", "error", "the folio lies in a loaded CAF's range", needs=["cafs"])
def _folio_range(f: Facts) -> Iterable[Hit]:
    cafs = _cafs_for_tipo(f)
    if f.folio is not None and cafs and not any(c.covers(f.folio) for c in cafs):
        ranges = ", ".join(f"{c.folio_desde}-{c.folio_hasta}" for c in cafs)
        yield Hit(
            "Encabezado.IdDoc.Folio",
            f"folio {f.folio} is outside the CAF ranges for tipo {f.tipo} ({ranges})",
            "leave Folio empty to take the next free one, or load the CAF that grants it",
        )


@rule("FOLIOS_LOW", "warning", "enough folios remain for the tipo", needs=["cafs"])
def _folios_low(f: Facts) -> Iterable[Hit]:
    usable = [c for c in _cafs_for_tipo(f) if not c.is_expired(f.today)]
    known = [c.remaining for c in usable if c.remaining is not None]
    left = sum(known) if usable and len(known) == len(usable) else None
    store = f.context.folios_remaining
    if store is not None and f.tipo is not None and f.tipo in store:
        left = store[f.tipo]
    if left is not None and left <= f.policy.low_folios:
        yield Hit(
            "Encabezado.IdDoc.Folio",
            f"only {left} folio(s) of tipo {f.tipo} remain",
            f"request a new CAF for tipo {f.tipo} at sii.cl before they run out",
        )


@rule(
    "FCHEMIS_BEFORE_CAF", "error", "FchEmis is not before the CAF's authorisation", needs=["cafs"]
)
def _before_caf(f: Facts) -> Iterable[Hit]:
    cafs = _caf_in_use(f)
    if f.fch_emis is not None and cafs and all(f.fch_emis < c.fecha_autorizacion for c in cafs):
        first = min(c.fecha_autorizacion for c in cafs)
        yield Hit(
            "Encabezado.IdDoc.FchEmis",
            f"FchEmis {f.fch_emis} is before the CAF was authorised ({first})",
            f"date the document {first} or later",
        )


# --------------------------------------------------------------------------------- dates


@rule("FCHEMIS_OUT_OF_RANGE", "error", "FchEmis between 2003-04-01 and 2050-12-31")
def _fchemis_range(f: Facts) -> Iterable[Hit]:
    if f.fch_emis is not None and not FCHEMIS_MIN <= f.fch_emis <= FECHA_MAX:
        yield Hit(
            "Encabezado.IdDoc.FchEmis",
            f"FchEmis {f.fch_emis} is outside {FCHEMIS_MIN} to {FECHA_MAX}",
            "use the real issue date (AAAA-MM-DD)",
        )


@rule("FCHEMIS_FUTURE", "error", "FchEmis is not in the future")
def _fchemis_future(f: Facts) -> Iterable[Hit]:
    if f.fch_emis is not None and f.today < f.fch_emis <= FECHA_MAX:
        yield Hit(
            "Encabezado.IdDoc.FchEmis",
            f"FchEmis {f.fch_emis} is after today ({f.today})",
            f"issue it dated {f.today}; schedule the send instead of post-dating",
        )


@rule("FCHEMIS_TOO_OLD", "warning", "FchEmis is within the usual acceptance window")
def _fchemis_old(f: Facts) -> Iterable[Hit]:
    limit = f.today - timedelta(days=f.policy.max_age_days)
    if f.fch_emis is not None and FCHEMIS_MIN <= f.fch_emis < limit:
        yield Hit(
            "Encabezado.IdDoc.FchEmis",
            f"FchEmis {f.fch_emis} is over {f.policy.max_age_days} days old: its tax period is"
            " probably declared and the receptor may reject it",
            "date it today, or confirm with your accountant before sending",
        )


@rule("FCHVENC_BEFORE_FCHEMIS", "error", "FchVenc is not before FchEmis")
def _fchvenc(f: Facts) -> Iterable[Hit]:
    venc = as_date(f.iddoc.get("FchVenc"))
    if venc is not None and f.fch_emis is not None and venc < f.fch_emis:
        yield Hit(
            "Encabezado.IdDoc.FchVenc",
            f"FchVenc {venc} is before FchEmis {f.fch_emis}",
            f"set a due date on or after {f.fch_emis}",
        )


@rule("PERIODO_INVERTED", "error", "PeriodoDesde is not after PeriodoHasta")
def _periodo(f: Facts) -> Iterable[Hit]:
    desde = as_date(f.iddoc.get("PeriodoDesde"))
    hasta = as_date(f.iddoc.get("PeriodoHasta"))
    if desde is not None and hasta is not None and desde > hasta:
        yield Hit(
            "Encabezado.IdDoc.PeriodoHasta",
            f"the billed period ends ({hasta}) before it starts ({desde})",
            "swap PeriodoDesde and PeriodoHasta",
        )


@rule("FCHREF_AFTER_FCHEMIS", "error", "a referenced document is not dated after this one")
def _fchref_after(f: Facts) -> Iterable[Hit]:
    for i, ref in enumerate(f.refs_raw):
        fch = as_date(ref.get("FchRef"))
        if fch is None or f.fch_emis is None or fch <= f.fch_emis:
            continue
        tpo = as_int(ref.get("TpoDocRef")) if str(ref.get("TpoDocRef", "")).isdigit() else None
        tributario = tpo is not None and tpo < 800
        yield Hit(
            f"Referencia[{i}].FchRef",
            f"the referenced document is dated {fch}, after this one ({f.fch_emis})",
            "use the referenced document's own date",
            None if tributario else "warning",
        )


# --------------------------------------------------------------------------------- tipos


@rule("GUIA_INDTRASLADO", "error", "IndTraslado on guías de despacho (52) only")
def _indtraslado(f: Facts) -> Iterable[Hit]:
    given = not is_blank(f.iddoc.get("IndTraslado"))
    if f.tipo == 52 and not given:
        yield Hit(
            "Encabezado.IdDoc.IndTraslado",
            "a guía de despacho must say why goods move (IndTraslado)",
            "set IndTraslado: 1 venta, 2 venta por efectuar, 5 traslado interno, ...",
        )
    elif f.tipo is not None and f.tipo != 52 and given:
        yield Hit(
            "Encabezado.IdDoc.IndTraslado",
            f"tipo {f.tipo} does not carry IndTraslado",
            "remove IndTraslado (only guías de despacho use it)",
        )


@rule("GUIA_TRANSPORTE", "warning", "guías dispatched by the emisor name the transport")
def _guia_transporte(f: Facts) -> Iterable[Hit]:
    despacho = as_int(f.iddoc.get("TipoDespacho"))
    if (
        f.tipo == 52
        and despacho in (2, 3)
        and not any(not is_blank(f.transporte.get(k)) for k in ("Patente", "RUTTrans", "DirDest"))
    ):
        yield Hit(
            "Encabezado.Transporte",
            f"TipoDespacho {despacho} (the emisor delivers) but no transport data",
            "add Patente, RUTTrans and DirDest/CmnaDest (manual fields 67-68)",
        )


@rule("BOLETA_INDSERVICIO", "error", "boletas carry IndServicio 1-4")
def _boleta_indservicio(f: Facts) -> Iterable[Hit]:
    if not f.is_boleta:
        return
    value = f.iddoc.get("IndServicio")
    if is_blank(value):
        yield Hit(
            "Encabezado.IdDoc.IndServicio",
            "boletas need IndServicio",
            "set IndServicio 3 (ventas y servicios) unless the sale is a periodic service",
        )
    elif as_int(value) not in {int(v) for v in IndServicioBoleta}:
        yield Hit(
            "Encabezado.IdDoc.IndServicio",
            f"IndServicio {value} is not 1-4",
            "use 1, 2, 3 or 4 (EnvioBOLETA_v11.xsd)",
        )


_BOLETA_ONLY = {"RznSocEmisor": "RznSoc", "GiroEmisor": "GiroEmis"}


@rule("FIELD_WRONG_FAMILY", "error", "facturas and boletas use their own element names")
def _wrong_family(f: Facts) -> Iterable[Hit]:
    if f.tipo is None:
        return
    if f.is_boleta:
        for boleta_name, factura_name in _BOLETA_ONLY.items():
            if factura_name in f.emisor:
                yield Hit(
                    f"Encabezado.Emisor.{factura_name}",
                    f"boletas use {boleta_name}, not {factura_name}",
                    f"rename {factura_name} to {boleta_name}",
                )
        for path, section, name in (
            ("Encabezado.Emisor.Acteco", f.emisor, "Acteco"),
            ("Encabezado.Receptor.GiroRecep", f.receptor, "GiroRecep"),
            ("Encabezado.Totales.TasaIVA", f.totales, "TasaIVA"),
        ):
            if not is_blank(section.get(name)):
                yield Hit(path, f"boletas do not carry {name}", f"remove {name}")
        return
    for boleta_name, factura_name in _BOLETA_ONLY.items():
        if boleta_name in f.emisor:
            yield Hit(
                f"Encabezado.Emisor.{boleta_name}",
                f"tipo {f.tipo} uses {factura_name}, not {boleta_name}",
                f"rename {boleta_name} to {factura_name}",
            )
    for path, section, name in (
        ("Encabezado.IdDoc.IndMntNeto", f.iddoc, "IndMntNeto"),
        ("Encabezado.Receptor.TelefonoRecep", f.receptor, "TelefonoRecep"),
    ):
        if not is_blank(section.get(name)):
            yield Hit(path, f"only boletas carry {name}", f"remove {name}")


@rule("LINE_COUNT", "error", "1-60 Detalle lines (1000 on boletas)")
def _line_count(f: Facts) -> Iterable[Hit]:
    if f.tipo is None:
        return
    limit = MAX_DETALLE_BOLETA if f.is_boleta else MAX_DETALLE
    count = len(f.lines_raw)
    if count == 0:
        yield Hit("Detalle", "the document has no Detalle lines", "add at least one line")
    elif count > limit:
        yield Hit(
            "Detalle",
            f"{count} lines; tipo {f.tipo} carries at most {limit}",
            f"split it into documents of at most {limit} lines",
        )


@rule("LINE_NUMBERING", "error", "NroLinDet numbers the lines 1..n in order")
def _line_numbering(f: Facts) -> Iterable[Hit]:
    for i, line in enumerate(f.lines_raw):
        given = line.get("NroLinDet")
        if given is not None and as_int(given) != i + 1:
            yield Hit(
                f"Detalle[{i}].NroLinDet",
                f"line {i + 1} is numbered {given}",
                "number lines 1, 2, 3... in order, or omit NroLinDet to number them",
            )

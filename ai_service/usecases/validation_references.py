"""Validation rules on references (notas 56/61 and what they modify) and on duplicates of
documents the company already issued (manual "Formato DTE", Referencia fields 1-9)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from ai_service.usecases.validation import Hit, rule
from ai_service.usecases.validation_context import (
    Facts,
    IssuedDocument,
    as_date,
    as_dec,
    as_int,
    as_rut,
)
from dte_core.caf import add_months
from dte_core.codes import (
    RUT_CONSUMIDOR_FINAL,
    CodRef,
)

#: TpoDocRef codes of the manual (Referencia field 2); other numbers are rejected.
TPO_DOC_REF = frozenset(
    {30, 32, 33, 34, 35, 38, 39, 40, 41, 43, 45, 46, 48, 50, 52, 55, 56, 60, 61, 103, 110, 111}
    | {112, *range(801, 816), *range(820, 824)}
)
#: Tipos this service issues: a reference to one of them can be checked in the history.
OWN_TIPOS = frozenset({33, 34, 39, 41, 46, 52, 56, 61})


# --------------------------------------------------------------------------------- references


@dataclass(frozen=True)
class _Ref:
    index: int
    tipo: int
    folio: int | None
    cod: int | None
    fecha: date | None
    other_rut: bool  # RUTOtr: issued by another contribuyente, not in this company's history


def _tributarias(f: Facts) -> Iterator[_Ref]:
    for i, ref in enumerate(f.refs_raw):
        tipo = as_int(ref.get("TpoDocRef")) if str(ref.get("TpoDocRef", "")).isdigit() else None
        if tipo is None or tipo >= 800:
            continue
        yield _Ref(
            i,
            tipo,
            as_int(ref.get("FolioRef")),
            as_int(ref.get("CodRef")),
            as_date(ref.get("FchRef")),
            bool(ref.get("RUTOtr")),
        )


def modifying_refs(f: Facts) -> list[_Ref]:
    return [r for r in _tributarias(f) if r.cod is not None]


def _originals(f: Facts) -> Iterator[tuple[_Ref, IssuedDocument | None]]:
    """The nota's modifying references to this company's documents, with what history has."""
    history = f.context.history
    if history is None or not f.is_nota:
        return
    for ref in modifying_refs(f):
        if ref.tipo in OWN_TIPOS and ref.folio and not ref.other_rut:
            yield ref, history.get(ref.tipo, ref.folio)


@rule("NOTA_REFERENCE_MISSING", "error", "notas reference the document they modify")
def _nota_ref(f: Facts) -> Iterable[Hit]:
    if not f.is_nota or modifying_refs(f):
        return
    path = "Referencia[0].CodRef" if f.refs_raw else "Referencia"
    yield Hit(
        path,
        f"a nota ({f.tipo}) must reference the document it modifies, with a CodRef",
        "add Referencia: TpoDocRef, FolioRef, FchRef of the original and CodRef 1/2/3",
    )


@rule("REF_TPODOCREF_INVALID", "error", "numeric TpoDocRef are codes of the manual")
def _tpodocref(f: Facts) -> Iterable[Hit]:
    for i, ref in enumerate(f.refs_raw):
        text = str(ref.get("TpoDocRef", ""))
        if text.isdigit() and int(text) not in TPO_DOC_REF:
            yield Hit(
                f"Referencia[{i}].TpoDocRef",
                f"TpoDocRef {text} is not a document code of the SII",
                "use the SII code (33 factura, 52 guía, 801 orden de compra...) or a text code",
            )


@rule("REF_FOLIO_ZERO", "error", "FolioRef is 0 only with IndGlobal=1")
def _folio_zero(f: Facts) -> Iterable[Hit]:
    for i, ref in enumerate(f.refs_raw):
        if str(ref.get("FolioRef", "")).strip() == "0" and as_int(ref.get("IndGlobal")) != 1:
            yield Hit(
                f"Referencia[{i}].FolioRef",
                "FolioRef 0 without IndGlobal",
                "give the referenced folio, or set IndGlobal 1 for a global reference",
            )


@rule("CODREF_SINGLE_REFERENCE", "error", "CodRef 1 and 2 reference exactly one document")
def _single_ref(f: Facts) -> Iterable[Hit]:
    refs = list(_tributarias(f))
    strict = [r for r in refs if r.cod in (CodRef.ANULA, CodRef.CORRIGE_TEXTO)]
    if strict and len(refs) > 1:
        yield Hit(
            "Referencia",
            f"CodRef {strict[0].cod} must be the only tax-document reference ({len(refs)} given)",
            "issue one nota per referenced document",
        )


@rule("CODREF_TEXT_WITH_AMOUNTS", "error", "CodRef 2 (corrige texto) carries no amounts")
def _codref_text(f: Facts) -> Iterable[Hit]:
    if not f.is_nota or not any(r.cod == CodRef.CORRIGE_TEXTO for r in modifying_refs(f)):
        return
    for i, line in enumerate(f.lines_raw):
        if (as_dec(line.get("MontoItem")) or 0) > 0 or (as_dec(line.get("PrcItem")) or 0) > 0:
            yield Hit(
                f"Detalle[{i}].MontoItem",
                f"line {i + 1} has an amount but CodRef 2 only corrects text",
                "set the amounts to 0, or use CodRef 3 to correct amounts",
            )


@rule("REF_FOLIO_UNKNOWN", "error", "a nota modifies a document that was issued", needs=["history"])
def _ref_unknown(f: Facts) -> Iterable[Hit]:
    for ref, original in _originals(f):
        if original is None:
            yield Hit(
                f"Referencia[{ref.index}].FolioRef",
                f"no {ref.tipo} with folio {ref.folio} was issued by this company",
                "check TpoDocRef and FolioRef; for another RUT's document add RUTOtr",
            )


@rule("REF_RECEPTOR_MISMATCH", "error", "a nota goes to the original's receptor", needs=["history"])
def _ref_receptor(f: Facts) -> Iterable[Hit]:
    for ref, original in _originals(f):
        if original and f.rut_receptor and as_rut(original.rut_receptor) != f.rut_receptor:
            yield Hit(
                "Encabezado.Receptor.RUTRecep",
                f"tipo {ref.tipo} folio {ref.folio} was issued to {original.rut_receptor}, not"
                f" {f.rut_receptor}",
                f"address the nota to {original.rut_receptor}",
            )


@rule("FCHREF_MISMATCH", "warning", "FchRef is the original's date", needs=["history"])
def _fchref(f: Facts) -> Iterable[Hit]:
    for ref, original in _originals(f):
        if original and ref.fecha and ref.fecha != original.fecha_emision:
            yield Hit(
                f"Referencia[{ref.index}].FchRef",
                f"tipo {ref.tipo} folio {ref.folio} is dated {original.fecha_emision},"
                f" not {ref.fecha}",
                f"set FchRef {original.fecha_emision}",
            )


@rule(
    "CREDIT_EXCEEDS_BALANCE",
    "error",
    "a nota de crédito credits at most what remains of the original",
    needs=["history"],
)
def _credit_balance(f: Facts) -> Iterable[Hit]:
    total = f.mnt_total()
    if f.tipo != 61 or total is None:
        return
    for ref, original in _originals(f):
        crediting = ref.cod in (CodRef.ANULA, CodRef.CORRIGE_MONTOS)
        if original and crediting and total > original.balance:
            yield Hit(
                "Encabezado.Totales.MntTotal",
                f"credits {total} but only {original.balance} remains of tipo {ref.tipo}"
                f" folio {ref.folio} (total {original.mnt_total}, credited {original.credited})",
                f"credit at most {original.balance}",
            )


@rule(
    "CODREF_ANULA_AMOUNT", "error", "CodRef 1 (anula) repeats the original total", needs=["history"]
)
def _anula_amount(f: Facts) -> Iterable[Hit]:
    total = f.mnt_total()
    if total is None:
        return
    for ref, original in _originals(f):
        if original and ref.cod == CodRef.ANULA and total != original.mnt_total:
            yield Hit(
                "Encabezado.Totales.MntTotal",
                f"CodRef 1 annuls tipo {ref.tipo} folio {ref.folio} of {original.mnt_total},"
                f" but the nota totals {total}",
                "copy the original's lines, or use CodRef 3 for a partial correction",
            )


@rule("NC_PLAZO_REBAJA", "warning", "notas de crédito within 3 months reduce the débito (art. 70)")
def _nc_plazo(f: Facts) -> Iterable[Hit]:
    if f.tipo != 61 or f.fch_emis is None or as_int(f.iddoc.get("IndNoRebaja")) == 1:
        return
    limit = add_months(f.fch_emis, -f.policy.nota_credito_months)
    for ref in modifying_refs(f):
        if ref.cod != CodRef.CORRIGE_TEXTO and ref.fecha and ref.fecha < limit:
            yield Hit(
                "Encabezado.IdDoc.IndNoRebaja",
                f"the referenced document ({ref.fecha}) is over {f.policy.nota_credito_months}"
                " months old: the nota no longer reduces the débito fiscal (art. 70 DL 825)",
                "set IndNoRebaja 1, or confirm with your accountant",
            )
            return


# --------------------------------------------------------------------------------- duplicates


@rule("DUPLICATE_FOLIO", "error", "the folio was not already issued", needs=["history", "tipo"])
def _dup_folio(f: Facts) -> Iterable[Hit]:
    history = f.context.history
    if history is None or f.folio is None or f.tipo is None:
        return
    issued = history.get(f.tipo, f.folio)
    if issued is not None:
        yield Hit(
            "Encabezado.IdDoc.Folio",
            f"{f.tipo} folio {f.folio} was already issued on {issued.fecha_emision} to"
            f" {issued.rut_receptor}",
            "leave Folio empty to take the next free one; a folio is used once",
        )


@rule(
    "POSSIBLE_DUPLICATE",
    "warning",
    "no document of the same tipo, receptor and total was issued days before",
    needs=["history", "tipo"],
)
def _dup_doc(f: Facts) -> Iterable[Hit]:
    history = f.context.history
    total = f.mnt_total()
    if history is None or f.rut_receptor is None or f.fch_emis is None or total is None:
        return
    if str(f.rut_receptor) == RUT_CONSUMIDOR_FINAL:
        return  # anonymous boletas of equal amounts are normal
    window = timedelta(days=f.policy.duplicate_window_days)
    same = [
        d
        for d in history.for_receptor(str(f.rut_receptor), f.fch_emis - window, f.fch_emis + window)
        if d.tipo_dte == f.tipo and d.mnt_total == total and d.folio != f.folio
    ]
    if same:
        folios = ", ".join(f"{d.folio} ({d.fecha_emision})" for d in same[:5])
        yield Hit(
            "Encabezado.Totales.MntTotal",
            f"{f.tipo} to {f.rut_receptor} for {total} was already issued: folio {folios}",
            "check it is not the same sale issued twice before sending",
        )

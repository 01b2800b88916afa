"""Validation before sending: every rule fires on a document that breaks it and stays silent on
one that does not; all findings come at once, even when dte_core cannot parse the document."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ai_service.llm.base import Engine, LLMResult
from ai_service.llm.config import DEFAULT_PROMPTS_DIR
from ai_service.llm.prompts import PromptRegistry
from ai_service.usecases import validation_rules
from ai_service.usecases.validation import (
    CafSummary,
    InMemoryHistory,
    IssuedDocument,
    IssuingContext,
    ValidationExplanation,
    ValidationPolicy,
    ValidationResult,
    explain,
    rules,
    validate_document,
)
from ai_service.usecases.validation_rules import comuna_index, official_comuna, suggest_comuna
from dte_core.caf import Caf, add_months
from dte_core.errors import InvalidDocumentError
from dte_core.models import parse_documento
from dte_core.rut import check_digit
from dte_core.testkit.caf import make_caf_xml
from tests.issuing_kit import ALL_TYPES, EMISOR, RECEPTOR, factura, sii_key

TODAY = date(2026, 6, 15)
ORIGINAL_DATE = TODAY - timedelta(days=10)  # factura 33 folio 1, what the notas reference
ORIGINAL_TOTAL = 119_000  # factura(): 100.000 neto + 19.000 IVA


def rut(number: int) -> str:
    return f"{number}-{check_digit(number)}"


OTHER_RUT = rut(96_790_240)


# ------------------------------------------------------------------------------ builders


def doc(tipo: int = 33, **idoc: Any) -> dict[str, Any]:
    """A valid document of ``tipo`` dated TODAY; notas reference factura 33 folio 1."""
    d = factura(tipo, FchEmis=TODAY.isoformat(), **idoc)
    for ref in d.get("Referencia", []):
        ref["FchRef"] = ORIGINAL_DATE.isoformat()
    return d


def _walk(d: Any, path: str) -> tuple[Any, str | int]:
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    for part in parts[:-1]:
        d = d[part]
    return d, parts[-1]


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        parent, key = _walk(d, path)
        parent[key] = value

    return apply


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        parent, key = _walk(d, path)
        del parent[key]

    return apply


def cafs(**over: Any) -> list[CafSummary]:
    """A CAF for every tipo, folios 1-100, authorised a month ago, 90 folios left."""
    base: dict[str, Any] = {
        "folio_desde": 1,
        "folio_hasta": 100,
        "fecha_autorizacion": TODAY - timedelta(days=30),
        "remaining": 90,
        "rut_emisor": EMISOR,
    }
    out = []
    for tipo in ALL_TYPES:
        fields = {**base, **(over if tipo in (33, 39, 61) else {})}
        out.append(CafSummary(tipo_dte=tipo, **fields))
    return out


def history(*extra: IssuedDocument, credited: int = 0) -> InMemoryHistory:
    original = IssuedDocument(33, 1, RECEPTOR, ORIGINAL_DATE, ORIGINAL_TOTAL, credited=credited)
    return InMemoryHistory([original, *extra])


def context(**over: Any) -> IssuingContext:
    values: dict[str, Any] = {
        "company_rut": EMISOR,
        "cafs": cafs(),
        "history": history(),
        "today": TODAY,
    }
    values.update(over)
    return IssuingContext(**values)


def check(document: dict[str, Any], ctx: IssuingContext | None = None) -> ValidationResult:
    return validate_document(document, ctx or context())


# ------------------------------------------------------------------------------ rule cases

Mutation = Callable[[dict[str, Any]], None]


@dataclass
class Case:
    rule: str
    field: str  # where the bad variant's finding points
    bad: list[Mutation]
    good: list[Mutation] = field(default_factory=list)
    tipo: int = 33
    good_tipo: int | None = None
    ctx: dict[str, Any] = field(default_factory=dict)
    good_ctx: dict[str, Any] | None = None

    def build(self, bad: bool) -> tuple[dict[str, Any], IssuingContext]:
        tipo = self.tipo if bad or self.good_tipo is None else self.good_tipo
        d = doc(tipo)
        for mutate in self.bad if bad else self.good:
            mutate(d)
        over = self.ctx if bad or self.good_ctx is None else self.good_ctx
        return d, context(**over)


E, R, ID, T = "Encabezado.Emisor", "Encabezado.Receptor", "Encabezado.IdDoc", "Encabezado.Totales"
REF = "Referencia[0]"
ZERO_LINES = put("Detalle", [{"NmbItem": "Corrige giro del receptor", "MontoItem": 0}])

CASES = [
    # parties
    Case("RUT_EMISOR_INVALID", f"{E}.RUTEmisor", [put(f"{E}.RUTEmisor", "76086428-4")]),
    Case("RUT_RECEPTOR_INVALID", f"{R}.RUTRecep", [put(f"{R}.RUTRecep", "77777777-8")]),
    Case(
        "RUT_TRANSPORTE_INVALID",
        "Encabezado.Transporte.RUTTrans",
        [put("Encabezado.Transporte", {"Patente": "AB1234", "RUTTrans": "11111111-2"})],
        [put("Encabezado.Transporte", {"Patente": "AB1234", "RUTTrans": "11111111-1"})],
        tipo=52,
    ),
    Case(
        "RUT_OTRO_INVALID",
        f"{REF}.RUTOtr",
        [put(f"{REF}.RUTOtr", "11111111-2")],
        [put(f"{REF}.RUTOtr", "11111111-1")],
        tipo=61,
    ),
    Case("RUT_OUT_OF_RANGE", f"{R}.RUTRecep", [put(f"{R}.RUTRecep", rut(99_999))]),
    Case("EMISOR_NOT_COMPANY", f"{E}.RUTEmisor", [], ctx={"company_rut": OTHER_RUT}, good_ctx={}),
    Case(
        "RECEPTOR_IS_EMISOR",
        f"{R}.RUTRecep",
        [put(f"{R}.RUTRecep", EMISOR)],
        [put(f"{R}.RUTRecep", EMISOR), put(f"{ID}.IndTraslado", 5)],  # traslado interno
        good_tipo=52,
    ),
    Case(
        "RECEPTOR_CONSUMIDOR_FINAL",
        f"{R}.RUTRecep",
        [put(f"{R}.RUTRecep", "66666666-6")],
        good_tipo=39,  # boletas carry it
    ),
    Case("GIRO_EMISOR_MISSING", f"{E}.GiroEmis", [drop(f"{E}.GiroEmis")]),
    Case(
        "GIRO_RECEPTOR_MISSING",
        f"{R}.GiroRecep",
        [drop(f"{R}.GiroRecep")],
        [drop(f"{R}.GiroRecep")],
        good_tipo=61,  # optional on notas (manual field 57)
    ),
    Case("RECEPTOR_NAME_MISSING", f"{R}.RznSocRecep", [drop(f"{R}.RznSocRecep")], good_tipo=39),
    Case("ACTECO_MISSING", f"{E}.Acteco", [drop(f"{E}.Acteco")], good_tipo=39),
    Case(
        "ACTECO_FORMAT",
        f"{E}.Acteco[1]",
        [put(f"{E}.Acteco", [620200, 6202])],
        [put(f"{E}.Acteco", [620200, 473000])],
    ),
    Case(
        "ADDRESS_MISSING",
        f"{R}.DirRecep",
        [drop(f"{R}.DirRecep")],
        [drop(f"{R}.DirRecep")],
        good_tipo=61,
    ),
    Case(
        "COMUNA_MISSING",
        f"{E}.CmnaOrigen",
        [drop(f"{E}.CmnaOrigen")],
        [drop(f"{E}.CmnaOrigen")],
        good_tipo=56,
    ),
    Case(
        "COMUNA_UNKNOWN",
        f"{R}.CmnaRecep",
        [put(f"{R}.CmnaRecep", "Providenca")],
        [put(f"{R}.CmnaRecep", "ÑUÑOA"), put(f"{E}.CmnaOrigen", "san pedro de la paz")],
    ),
    Case(
        "EMAIL_INVALID",
        f"{R}.CorreoRecep",
        [put(f"{R}.CorreoRecep", "pagos@cliente")],
        [put(f"{R}.CorreoRecep", "pagos@cliente.cl")],
    ),
    Case(
        "TEXT_TOO_LONG",
        f"{R}.GiroRecep",
        [put(f"{R}.GiroRecep", "x" * 41)],
        [put(f"{R}.GiroRecep", "x" * 40)],
    ),
    # CAF and folios
    Case(
        "CAF_MISSING",
        f"{ID}.TipoDTE",
        [],
        ctx={"cafs": [c for c in cafs() if c.tipo_dte != 33]},
        good_ctx={},
    ),
    Case(
        "CAF_EXPIRED",
        f"{ID}.Folio",
        [],
        ctx={"cafs": cafs(fecha_autorizacion=add_months(TODAY, -7))},
        good_ctx={"cafs": cafs(fecha_autorizacion=add_months(TODAY, -5))},
    ),
    Case(
        "CAF_EXPIRING_SOON",
        f"{ID}.Folio",
        [],
        ctx={"cafs": cafs(fecha_autorizacion=add_months(TODAY, -6) + timedelta(days=5))},
        good_ctx={},
    ),
    Case("FOLIO_OUT_OF_RANGE", f"{ID}.Folio", [put(f"{ID}.Folio", 500)], [put(f"{ID}.Folio", 50)]),
    Case("FOLIOS_LOW", f"{ID}.Folio", [], ctx={"cafs": cafs(remaining=3)}, good_ctx={}),
    Case(
        "FCHEMIS_BEFORE_CAF",
        f"{ID}.FchEmis",
        [put(f"{ID}.FchEmis", (TODAY - timedelta(days=40)).isoformat())],
        [put(f"{ID}.FchEmis", (TODAY - timedelta(days=30)).isoformat())],
    ),
    # dates
    Case("FCHEMIS_OUT_OF_RANGE", f"{ID}.FchEmis", [put(f"{ID}.FchEmis", "2002-12-31")]),
    Case(
        "FCHEMIS_FUTURE",
        f"{ID}.FchEmis",
        [put(f"{ID}.FchEmis", (TODAY + timedelta(days=1)).isoformat())],
    ),
    Case(
        "FCHEMIS_TOO_OLD",
        f"{ID}.FchEmis",
        [put(f"{ID}.FchEmis", (TODAY - timedelta(days=61)).isoformat())],
        [put(f"{ID}.FchEmis", (TODAY - timedelta(days=29)).isoformat())],
    ),
    Case(
        "FCHVENC_BEFORE_FCHEMIS",
        f"{ID}.FchVenc",
        [put(f"{ID}.FchVenc", (TODAY - timedelta(days=1)).isoformat())],
        [put(f"{ID}.FchVenc", (TODAY + timedelta(days=30)).isoformat())],
    ),
    Case(
        "PERIODO_INVERTED",
        f"{ID}.PeriodoHasta",
        [put(f"{ID}.PeriodoDesde", "2026-06-01"), put(f"{ID}.PeriodoHasta", "2026-05-01")],
        [put(f"{ID}.PeriodoDesde", "2026-05-01"), put(f"{ID}.PeriodoHasta", "2026-05-31")],
    ),
    Case(
        "FCHREF_AFTER_FCHEMIS",
        f"{REF}.FchRef",
        [put(f"{REF}.FchRef", (TODAY + timedelta(days=1)).isoformat())],
        tipo=61,
    ),
    # tipos
    Case("GUIA_INDTRASLADO", f"{ID}.IndTraslado", [drop(f"{ID}.IndTraslado")], tipo=52),
    Case(
        "GUIA_TRANSPORTE",
        "Encabezado.Transporte",
        [put(f"{ID}.TipoDespacho", 2)],
        [put(f"{ID}.TipoDespacho", 2), put("Encabezado.Transporte", {"Patente": "AB1234"})],
        tipo=52,
    ),
    Case("BOLETA_INDSERVICIO", f"{ID}.IndServicio", [drop(f"{ID}.IndServicio")], tipo=39),
    Case(
        "FIELD_WRONG_FAMILY",
        f"{E}.RznSoc",
        [put(f"{E}.RznSoc", "Empresa Demo SpA")],
        tipo=39,
    ),
    Case(
        "LINE_COUNT",
        "Detalle",
        [put("Detalle", [{"NmbItem": f"item {i}", "PrcItem": 10} for i in range(61)])],
        [put("Detalle", [{"NmbItem": f"item {i}", "PrcItem": 10} for i in range(60)])],
    ),
    Case(
        "LINE_NUMBERING",
        "Detalle[1].NroLinDet",
        [put("Detalle[0].NroLinDet", 1), put("Detalle[1].NroLinDet", 5)],
        [put(f"Detalle[{i}].NroLinDet", i + 1) for i in range(3)],
    ),
    # amounts
    Case("EXENTA_WITH_IVA", f"{T}.IVA", [put(T, {"IVA": 1900})], tipo=34),
    Case(
        "AFECTA_WITHOUT_IVA",
        f"{T}.MntNeto",
        [put(f"Detalle[{i}].IndExe", 1) for i in range(3)],
        [put("Detalle[0].IndExe", 1)],
    ),
    Case("TASA_IVA_INVALID", f"{T}.TasaIVA", [put(T, {"TasaIVA": 10})], [put(T, {"TasaIVA": 19})]),
    Case(
        "IVA_ARITHMETIC",
        f"{T}.IVA",
        [put(T, {"MntNeto": 100_000, "IVA": 19_001})],
        [put(T, {"MntNeto": 100_000, "IVA": 19_000})],
    ),
    Case(
        "TOTAL_ARITHMETIC",
        f"{T}.MntTotal",
        [put(T, {"MntNeto": 100_000, "IVA": 19_000, "MntTotal": 120_000})],
        [put(T, {"MntNeto": 100_000, "IVA": 19_000, "MntTotal": 119_000})],
    ),
    Case(
        "TOTALS_LINES_MISMATCH",
        f"{T}.MntNeto",
        [put(T, {"MntNeto": 90_000})],
        [put(T, {"MntNeto": 100_000, "MntTotal": 119_000})],
    ),
    Case(
        "MONTOITEM_ARITHMETIC",
        "Detalle[0].MontoItem",
        [put("Detalle[0].MontoItem", 1)],
        [put("Detalle[0].MontoItem", 90_000)],
    ),
    Case(
        "TOTAL_NOT_POSITIVE",
        f"{T}.MntTotal",
        [put(f"Detalle[{i}].PrcItem", 0) for i in range(3)],
        [put(f"{REF}.CodRef", 2), ZERO_LINES],  # a nota that corrects text totals 0
        good_tipo=61,
    ),
    Case("NEGATIVE_AMOUNT", "Detalle[0].PrcItem", [put("Detalle[0].PrcItem", -4500)]),
    Case(
        "DISCOUNT_OVER_100",
        "Detalle[0].DescuentoPct",
        [put("Detalle[0].DescuentoPct", 150)],
        [put("Detalle[0].DescuentoPct", 50)],
    ),
    Case(
        "BOLETA_RECEPTOR_135UF",
        f"{R}.RUTRecep",
        [put("Detalle[0].PrcItem", 300_000)],
        [put("Detalle[0].PrcItem", 300_000), put(f"{R}.RUTRecep", RECEPTOR)],
        tipo=39,
        ctx={"policy": ValidationPolicy(uf_clp=Decimal(38_000))},
    ),
    # references
    Case("NOTA_REFERENCE_MISSING", "Referencia", [drop("Referencia")], tipo=61),
    Case(
        "REF_TPODOCREF_INVALID",
        f"{REF}.TpoDocRef",
        [put("Referencia", [{"TpoDocRef": "99", "FolioRef": "5", "FchRef": "2026-06-01"}])],
        [put("Referencia", [{"TpoDocRef": "801", "FolioRef": "5", "FchRef": "2026-06-01"}])],
    ),
    Case(
        "REF_FOLIO_ZERO",
        f"{REF}.FolioRef",
        [put("Referencia", [{"TpoDocRef": "52", "FolioRef": "0", "FchRef": "2026-06-01"}])],
        [
            put(
                "Referencia",
                [{"TpoDocRef": "52", "FolioRef": "0", "FchRef": "2026-06-01", "IndGlobal": 1}],
            )
        ],
    ),
    Case(
        "CODREF_SINGLE_REFERENCE",
        "Referencia",
        [
            put(f"{REF}.CodRef", 1),
            lambda d: d["Referencia"].append({**d["Referencia"][0], "FolioRef": "2"}),
        ],
        [lambda d: d["Referencia"].append({**d["Referencia"][0], "FolioRef": "2"})],  # CodRef 3
        tipo=61,
    ),
    Case(
        "CODREF_TEXT_WITH_AMOUNTS",
        "Detalle[0].MontoItem",
        [put(f"{REF}.CodRef", 2)],
        [put(f"{REF}.CodRef", 2), ZERO_LINES],
        tipo=61,
    ),
    Case("REF_FOLIO_UNKNOWN", f"{REF}.FolioRef", [put(f"{REF}.FolioRef", "7")], tipo=61),
    Case("REF_RECEPTOR_MISMATCH", f"{R}.RUTRecep", [put(f"{R}.RUTRecep", OTHER_RUT)], tipo=61),
    Case(
        "FCHREF_MISMATCH",
        f"{REF}.FchRef",
        [put(f"{REF}.FchRef", (ORIGINAL_DATE - timedelta(days=1)).isoformat())],
        tipo=61,
    ),
    Case(
        "CREDIT_EXCEEDS_BALANCE",
        f"{T}.MntTotal",
        [],
        tipo=61,
        ctx={"history": history(credited=50_000)},
        good_ctx={},
    ),
    Case(
        "CODREF_ANULA_AMOUNT",
        f"{T}.MntTotal",
        [put(f"{REF}.CodRef", 1), lambda d: d["Detalle"].pop()],
        [put(f"{REF}.CodRef", 1)],
        tipo=61,
    ),
    Case(
        "NC_PLAZO_REBAJA",
        f"{ID}.IndNoRebaja",
        [put(f"{REF}.FchRef", add_months(TODAY, -4).isoformat())],
        [put(f"{REF}.FchRef", add_months(TODAY, -4).isoformat()), put(f"{ID}.IndNoRebaja", 1)],
        tipo=61,
    ),
    # duplicates
    Case("DUPLICATE_FOLIO", f"{ID}.Folio", [put(f"{ID}.Folio", 1)], [put(f"{ID}.Folio", 2)]),
    Case(
        "POSSIBLE_DUPLICATE",
        f"{T}.MntTotal",
        [],
        ctx={
            "history": history(IssuedDocument(33, 9, RECEPTOR, TODAY - timedelta(days=2), 119_000))
        },
        good_ctx={
            "history": history(IssuedDocument(33, 9, RECEPTOR, TODAY - timedelta(days=2), 118_000))
        },
    ),
    # schema (what dte_core's parser reports and no specific rule covers)
    Case("SCHEMA_INVALID", f"{ID}.Foo", [put(f"{ID}.Foo", 1)]),
]


def test_every_rule_has_a_case_and_there_are_at_least_30() -> None:
    ids = [r.id for r in rules()]
    assert len(ids) == len(set(ids)) >= 30
    assert all(re.fullmatch(r"[A-Z0-9_]+", i) for i in ids)
    assert sorted(c.rule for c in CASES) == sorted(ids)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires_on_a_document_that_breaks_it(case: Case) -> None:
    result = check(*case.build(bad=True))
    hits = [f for f in result.findings if f.rule_id == case.rule]
    assert hits, f"{case.rule} did not fire; got {sorted(result.rule_ids())}"
    assert case.field in {f.field for f in hits}
    assert all(f.message and f.suggested_fix for f in hits)
    rule = next(r for r in rules() if r.id == case.rule)
    expected = "blocked" if any(f.severity == "error" for f in result.findings) else "warnings"
    assert result.decision == expected
    assert rule.severity in {f.severity for f in hits}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_is_silent_on_a_document_that_keeps_it(case: Case) -> None:
    result = check(*case.build(bad=False))
    assert case.rule not in result.rule_ids(), result.findings


# ------------------------------------------------------------------------------ engine


@pytest.mark.parametrize("tipo", ALL_TYPES)
def test_a_valid_document_of_every_tipo_is_ok_with_every_rule_run(tipo: int) -> None:
    d = doc(tipo)
    parse_documento(d)  # the baseline is what dte_core accepts
    result = check(d)
    assert result.findings == []
    assert result.decision == "ok"
    assert result.engine == "local"
    assert result.rules_skipped == [] and result.confidence == 1.0
    assert result.rules_run == len(rules())


def test_all_findings_come_at_once_even_when_dte_core_cannot_parse_the_document() -> None:
    d = doc(33)
    d["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    d["Encabezado"]["Receptor"]["CmnaRecep"] = "Las Codnes"
    d["Encabezado"]["IdDoc"]["FchEmis"] = (TODAY + timedelta(days=3)).isoformat()
    d["Encabezado"]["IdDoc"]["Folio"] = 500
    d["Detalle"][1]["MontoItem"] = 4000
    d["Detalle"][2]["NmbItem"] = "x" * 81
    d["Encabezado"]["Totales"] = {"MntNeto": 100_000, "IVA": 1_900}
    with pytest.raises(InvalidDocumentError):
        parse_documento(d)
    result = check(d)
    found = {(f.rule_id, f.field) for f in result.findings}
    assert {
        ("RUT_RECEPTOR_INVALID", "Encabezado.Receptor.RUTRecep"),
        ("COMUNA_UNKNOWN", "Encabezado.Receptor.CmnaRecep"),
        ("FCHEMIS_FUTURE", "Encabezado.IdDoc.FchEmis"),
        ("FOLIO_OUT_OF_RANGE", "Encabezado.IdDoc.Folio"),
        ("MONTOITEM_ARITHMETIC", "Detalle[1].MontoItem"),
        ("TEXT_TOO_LONG", "Detalle[2].NmbItem"),
        ("IVA_ARITHMETIC", "Encabezado.Totales.IVA"),
    } <= found
    assert result.decision == "blocked"
    comuna = next(f for f in result.findings if f.rule_id == "COMUNA_UNKNOWN")
    assert "Las Condes" in (comuna.suggested_fix or "")
    # errors first, and a field dte_core's parser also rejected is reported once
    severities = [f.severity for f in result.findings]
    assert severities == sorted(severities, key=lambda s: s != "error")
    assert [f.field for f in result.findings].count("Encabezado.Receptor.RUTRecep") == 1
    assert "SCHEMA_INVALID" not in result.rule_ids()


def test_input_that_is_not_an_object_is_reported_not_raised() -> None:
    result = validate_document(["not", "a", "document"], IssuingContext(today=TODAY))
    assert result.decision == "blocked"
    assert [(f.rule_id, f.field) for f in result.findings] == [("SCHEMA_INVALID", "Documento")]


def _leaves(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, f"{path}[{i}]")]
    return [path]


@pytest.mark.parametrize("tipo", [33, 39, 52, 61])
def test_garbage_in_any_field_is_reported_never_raised(tipo: int) -> None:
    base = doc(tipo)
    base["Encabezado"]["Totales"] = {"MntNeto": 100_000, "IVA": 19_000, "MntTotal": 119_000}
    garbage: list[Any] = [None, "", "x", -1, 10**30, "1e999", [], {"a": 1}, True]
    for path in _leaves(base):
        for value in garbage:
            d = copy.deepcopy(base)
            put(path, value)(d)
            result = check(d)  # must not raise
            assert result.rules_failed == [], (path, value)
            if value in ({"a": 1}, []):
                assert result.decision == "blocked", (path, value)


def test_rules_without_their_context_are_skipped_and_lower_the_confidence() -> None:
    result = validate_document(doc(61), IssuingContext(today=TODAY))
    assert result.decision == "ok"
    assert {"CAF_MISSING", "DUPLICATE_FOLIO", "REF_FOLIO_UNKNOWN", "EMISOR_NOT_COMPANY"} <= set(
        result.rules_skipped
    )
    assert result.confidence == round(result.rules_run / len(rules()), 3) < 1


def test_cafs_without_folios_block_and_a_real_caf_can_be_given_as_is() -> None:
    assert "CAF_MISSING" in check(doc(33), context(cafs=[])).rule_ids()
    raw = make_caf_xml(
        sii_key=sii_key(),
        rut_emisor=EMISOR,
        razon_social="EMPRESA DEMO SPA",
        tipo_dte=33,
        folio_desde=1,
        folio_hasta=20,
        fecha_autorizacion=add_months(TODAY, -7),
    )
    caf = Caf.from_bytes(raw)
    result = check(doc(33, Folio=5), context(cafs=[caf]))
    assert "CAF_EXPIRED" in result.rule_ids()
    assert "FOLIO_OUT_OF_RANGE" not in result.rule_ids()


def test_folios_low_takes_the_folio_stores_count_when_given() -> None:
    assert "FOLIOS_LOW" in check(doc(33), context(folios_remaining={33: 4})).rule_ids()
    assert "FOLIOS_LOW" not in check(doc(33), context(folios_remaining={33: 11})).rule_ids()
    low_per_caf = context(cafs=cafs(remaining=3), folios_remaining={33: 500})
    assert "FOLIOS_LOW" not in check(doc(33), low_per_caf).rule_ids()


def test_caf_summary_applies_the_sii_expiry_rule() -> None:
    fa = date(2026, 1, 31)
    assert CafSummary(33, 1, 10, fa).expires_on == date(2026, 7, 31)
    assert CafSummary(39, 1, 10, fa).expires_on is None  # boleta folios never lapse
    assert not CafSummary(39, 1, 10, fa).is_expired(date(2030, 1, 1))


def test_a_caf_of_another_rut_does_not_count() -> None:
    other = [CafSummary(33, 1, 100, TODAY - timedelta(days=5), rut_emisor=OTHER_RUT)]
    findings = check(doc(33), context(cafs=other)).findings
    missing = next(f for f in findings if f.rule_id == "CAF_MISSING")
    assert "another RUT" in missing.message


def test_history_matches_receptor_ruts_whatever_their_spelling() -> None:
    h = InMemoryHistory([IssuedDocument(33, 4, "77.777.777-7", TODAY, 5)])
    assert [d.folio for d in h.for_receptor("777777777", TODAY, TODAY)] == [4]
    assert h.for_receptor(RECEPTOR, TODAY + timedelta(days=1), TODAY + timedelta(days=9)) == []


def test_email_without_at_sign_is_an_error_and_a_missing_tld_a_warning() -> None:
    d = doc(33)
    d["Encabezado"]["Receptor"]["CorreoRecep"] = "pagos cliente.cl"
    d["Encabezado"]["Emisor"]["CorreoEmisor"] = "ventas@empresa"
    by_field = {f.field: f.severity for f in check(d).findings if f.rule_id == "EMAIL_INVALID"}
    assert by_field == {
        "Encabezado.Receptor.CorreoRecep": "error",
        "Encabezado.Emisor.CorreoEmisor": "warning",
    }


def test_indtraslado_outside_a_guia_is_rejected() -> None:
    findings = check(doc(33, IndTraslado=1)).findings
    assert ("GUIA_INDTRASLADO", "Encabezado.IdDoc.IndTraslado") in {
        (f.rule_id, f.field) for f in findings
    }


def test_a_factura_afecta_with_zero_iva_is_an_error() -> None:
    d = doc(33)
    d["Encabezado"]["Totales"] = {"MntNeto": 100_000, "IVA": 0}
    hits = [f for f in check(d).findings if f.rule_id == "AFECTA_WITHOUT_IVA"]
    assert [(f.field, f.severity) for f in hits] == [("Encabezado.Totales.IVA", "error")]


def test_descuento_monto_that_disagrees_with_its_percentage() -> None:
    d = doc(33)
    d["Detalle"][0].update(DescuentoPct=10, DescuentoMonto=1)
    hits = [f for f in check(d).findings if f.rule_id == "MONTOITEM_ARITHMETIC"]
    assert [f.field for f in hits] == ["Detalle[0].DescuentoMonto"]
    assert "9000" in hits[0].message


# ------------------------------------------------------------------------------ comunas


def test_the_official_comuna_list_has_all_346_and_matches_loosely() -> None:
    path = Path(validation_rules.__file__).with_name("data") / "comunas.txt"
    names = [
        line.split("|")[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(names) == len(set(names)) == 346
    assert set(comuna_index()[0].values()) == set(names)
    assert official_comuna("NUNOA") == "Ñuñoa"
    assert official_comuna("Llay-Llay") == "Llaillay"
    assert official_comuna("o higgins") == "O'Higgins"
    assert official_comuna("Springfield") is None
    assert suggest_comuna("Vina del Mr") == "Viña del Mar"
    assert suggest_comuna("Zzzzzz") is None


# ------------------------------------------------------------------------------ explain


@dataclass
class FakeLLM:
    """An LLMClient answering with a fixed explanation (or its own local engine)."""

    answer: ValidationExplanation | None
    calls: list[str] = field(default_factory=list)

    def complete(self, task, prompt, schema, *, company_id, local, timeout=None):  # type: ignore[no-untyped-def]
        self.calls.append(prompt.user)
        output = self.answer if self.answer is not None else local.run()
        return LLMResult(output=output, engine=Engine("anthropic", "claude-haiku-5-5"))


def _broken() -> tuple[dict[str, Any], ValidationResult]:
    d = doc(33)
    d["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    return d, check(d)


def test_explain_without_an_llm_phrases_the_findings_locally() -> None:
    d, result = _broken()
    answer = explain(result, d)
    assert answer.engine.provider == "local"
    assert [(x.field, x.code) for x in answer.output.fixes] == [
        (f.field, f.rule_id) for f in result.findings
    ]
    assert "error" in answer.output.summary


def test_explain_uses_the_llm_phrasing_when_it_keeps_every_finding() -> None:
    d, result = _broken()
    phrased = ValidationExplanation(
        summary="Corrija el RUT del cliente.",
        fixes=[
            {
                "field": f.field,
                "code": f.rule_id,
                "explanation": "El dígito verificador no corresponde.",
                "suggested_fix": "Use 77777777-7.",
            }
            for f in result.findings
        ],
    )
    llm = FakeLLM(phrased)
    answer = explain(result, d, llm=llm, prompts=PromptRegistry(DEFAULT_PROMPTS_DIR))
    assert answer.engine.provider == "anthropic"
    assert answer.output == phrased
    assert "77777777-8" in llm.calls[0]  # the document and the findings went in as data


def test_explain_discards_an_llm_answer_that_changes_the_findings() -> None:
    d, result = _broken()
    invented = ValidationExplanation(
        summary="x",
        fixes=[
            {
                "field": "Encabezado.IdDoc.Folio",
                "code": "MADE_UP",
                "explanation": "x",
                "suggested_fix": "x",
            }
        ],
    )
    answer = explain(result, d, llm=FakeLLM(invented), prompts=PromptRegistry(DEFAULT_PROMPTS_DIR))
    assert answer.engine.provider == "local"
    assert answer.fallback_reason == "explanation_mismatch"
    assert {x.code for x in answer.output.fixes} == result.rule_ids()


def test_findings_never_depend_on_the_llm() -> None:
    d, result = _broken()
    explain(result, d, llm=FakeLLM(None), prompts=PromptRegistry(DEFAULT_PROMPTS_DIR))
    assert check(copy.deepcopy(d)) == result

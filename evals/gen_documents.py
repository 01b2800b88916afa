"""Cases of validation (documents about to be issued, each broken in one known way or clean) and
extraction (the words a PDF's text layer gives, with the printed truth).

Validation documents are the generated companies' received invoices turned around: the supplier
is the emisor, in the SII-named JSON the API takes. Each mutation breaks one thing and names the
rule that must block it; a clean document must not be blocked.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ai_service.context.models import ReceivedInvoice
from evals import companies
from evals.cases import Case

DATE = "2026-11-20"
Mutation = Callable[[dict[str, Any]], None]


def issuing_json(invoice: ReceivedInvoice, receptor_name: str) -> dict[str, Any]:
    detalle = []
    for ln in invoice.lines[:60]:
        item: dict[str, Any] = {"NmbItem": ln.name[:80]}
        if ln.quantity is not None and ln.unit_price is not None:
            item["QtyItem"] = float(ln.quantity) if ln.quantity % 1 else int(ln.quantity)
            price = ln.unit_price
            item["PrcItem"] = float(price) if price % 1 else int(price)
        else:
            item["QtyItem"], item["PrcItem"] = 1, ln.amount
        if invoice.tipo_dte == 34:
            item["IndExe"] = 1
        detalle.append(item)
    return {
        "Encabezado": {
            "IdDoc": {"TipoDTE": invoice.tipo_dte, "Folio": invoice.folio, "FchEmis": DATE},
            "Emisor": {
                "RUTEmisor": str(invoice.emisor_rut),
                "RznSoc": invoice.emisor_name,
                "GiroEmis": (invoice.emisor_giro or "Comercio")[:80],
                "Acteco": [469000],
                "DirOrigen": "Av. Libertador Bernardo O'Higgins 1449",
                "CmnaOrigen": "Santiago",
            },
            "Receptor": {
                "RUTRecep": str(invoice.receptor_rut),
                "RznSocRecep": receptor_name,
                "GiroRecep": "Actividades de empresa",
                "DirRecep": "Av. Apoquindo 4501",
                "CmnaRecep": "Las Condes",
            },
        },
        "Detalle": detalle,
    }


def _enc(doc: dict[str, Any]) -> dict[str, Any]:
    enc: dict[str, Any] = doc["Encabezado"]
    return enc


def _wrong_dv(rut: str) -> str:
    number, dv = rut.split("-")
    digits = "0123456789K"
    return f"{number}-{digits[(digits.index(dv.upper()) + 3) % 11]}"


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _totales(doc: dict[str, Any], iva_delta: int = 0, total_delta: int = 0) -> None:
    neto = sum(
        _half_up(Decimal(str(d["QtyItem"])) * Decimal(str(d["PrcItem"]))) for d in doc["Detalle"]
    )
    iva = _half_up(Decimal(neto) * Decimal("0.19")) + iva_delta
    _enc(doc)["Totales"] = {
        "MntNeto": neto,
        "TasaIVA": 19,
        "IVA": iva,
        "MntTotal": neto + iva + total_delta,
    }


MUTATIONS: dict[str, tuple[Mutation, list[str]]] = {
    "clean": (lambda d: None, []),
    "clean_with_totals": (lambda d: _totales(d), []),
    "rut_emisor_dv": (
        lambda d: _enc(d)["Emisor"].update(RUTEmisor=_wrong_dv(_enc(d)["Emisor"]["RUTEmisor"])),
        ["RUT_EMISOR_INVALID"],
    ),
    "rut_receptor_dv": (
        lambda d: _enc(d)["Receptor"].update(RUTRecep=_wrong_dv(_enc(d)["Receptor"]["RUTRecep"])),
        ["RUT_RECEPTOR_INVALID"],
    ),
    "receptor_is_emisor": (
        lambda d: _enc(d)["Receptor"].update(RUTRecep=_enc(d)["Emisor"]["RUTEmisor"]),
        ["RECEPTOR_IS_EMISOR"],
    ),
    "no_giro_emisor": (lambda d: _enc(d)["Emisor"].pop("GiroEmis"), ["GIRO_EMISOR_MISSING"]),
    "no_giro_receptor": (
        lambda d: _enc(d)["Receptor"].pop("GiroRecep"),
        ["GIRO_RECEPTOR_MISSING"],
    ),
    "no_acteco": (lambda d: _enc(d)["Emisor"].pop("Acteco"), ["ACTECO_MISSING"]),
    "no_comuna_origen": (lambda d: _enc(d)["Emisor"].pop("CmnaOrigen"), ["COMUNA_MISSING"]),
    "future_date": (
        # after any plausible "today", before the SII's 2050-12-31 limit
        lambda d: _enc(d)["IdDoc"].update(FchEmis="2050-03-01"),
        ["FCHEMIS_FUTURE"],
    ),
    # given Totales that do not add up also differ from what the lines give
    "iva_wrong": (
        lambda d: _totales(d, iva_delta=1500),
        ["IVA_ARITHMETIC", "TOTALS_LINES_MISMATCH"],
    ),
    "total_wrong": (
        lambda d: _totales(d, total_delta=-10_000),
        ["TOTAL_ARITHMETIC", "TOTALS_LINES_MISMATCH"],
    ),
    "discount_over_100": (
        lambda d: d["Detalle"][0].update(DescuentoPct=120),
        ["DISCOUNT_OVER_100"],
    ),
    "name_too_long": (
        lambda d: d["Detalle"][0].update(NmbItem=(d["Detalle"][0]["NmbItem"] + " X" * 60)),
        ["TEXT_TOO_LONG"],
    ),
}


def validation_cases() -> Iterator[Case]:
    names = sorted(MUTATIONS)
    n = 0
    for kind in companies.KINDS:
        receptor = companies.past_context(kind).company_name
        for doc in companies.future_documents(kind):
            inv = doc.invoice
            if inv.tipo_dte != 33 or doc.label.anomalies:
                continue
            name = names[n % len(names)]
            n += 1
            mutate, rules = MUTATIONS[name]
            raw = issuing_json(inv, receptor)
            mutate(raw)
            yield Case(
                id=f"validation:{doc.id}:{name}",
                input={"document": raw},
                expected={"blocked": bool(rules), "errors": sorted(rules)},
                meta={"company": kind, "split": "test", "tags": [name]},
            )


def validation_hard_cases(specs: list[dict[str, Any]]) -> Iterator[Case]:
    """Hand-written documents, given in full in the spec file."""
    for spec in specs:
        yield Case(
            id=spec["id"],
            input={"document": copy.deepcopy(spec["document"])},
            expected={"blocked": bool(spec["errors"]), "errors": sorted(spec["errors"])},
            meta={"company": "", "split": "hard", "tags": spec.get("tags", [])},
        )


# ------------------------------------------------------------------------------ extraction

EXTRACTION_FIELDS = ("rut_emisor", "tipo_dte", "folio", "fch_emis", "mnt_neto", "iva", "mnt_total")
#: sii-layout samples are slow to render (~0.3 s: a TED is signed); odd layouts take ~2 ms
N_SII, N_ODD = 60, 240


def _words_of(pdf: bytes) -> list[list[Any]]:
    """The page's words, without the caption under the timbre: the PDF417 is drawn from a TED
    signed with a CAF key made afresh each run, so its width (and where the caption is centred)
    changes between runs, while nothing extraction reads is there."""
    from ai_service.extraction import pdf_text

    words = []
    for page in pdf_text.page_words(pdf):
        caption = min(
            (
                a.top
                for a, b in itertools.pairwise(page)
                if a.text == "Timbre" and b.text.startswith("Electr")
            ),
            default=None,
        )
        for w in page:
            if caption is None or w.top < caption - 1:
                words.append([w.text, round(w.x0), round(w.top), round(w.x1), round(w.bottom)])
    return words


def extraction_cases() -> Iterator[Case]:
    from ai_service.extraction import testkit

    rng = random.Random("dte-ai-evals:extraction")  # noqa: S311 - data, not secrets
    for family, count in (("sii", N_SII), ("odd", N_ODD)):
        for n in range(count):
            sample = testkit.sii_sample(rng) if family == "sii" else testkit.odd_sample(rng)
            truth = sample.data.truth
            yield Case(
                id=f"extraction:{family}:{n:03d}",
                input={"words": _words_of(sample.pdf), "engine": "pdf_text"},
                expected={
                    "fields": {k: truth[k] for k in EXTRACTION_FIELDS},
                    "n_lines": len(sample.data.items),
                },
                meta={"company": "", "split": "test", "tags": [family]},
            )


def extraction_hard_cases(specs: list[dict[str, Any]]) -> Iterator[Case]:
    """Hand-written printed lines (OCR slips, other labels); each line becomes words left to
    right at 12 pt line spacing, as a text layer would give them."""
    for spec in specs:
        words: list[list[Any]] = []
        for row, line in enumerate(spec["lines"]):
            x = 40.0
            for token in line.split():
                width = 5.5 * len(token)
                words.append([token, round(x), 40 + 14 * row, round(x + width), 50 + 14 * row])
                x += width + 3.0
        yield Case(
            id=spec["id"],
            input={"words": words, "engine": spec.get("engine", "pdf_text")},
            expected={"fields": spec["fields"], "n_lines": spec.get("n_lines")},
            meta={"company": "", "split": "hard", "tags": spec.get("tags", [])},
        )

"""Invoices the project makes itself, with their ground truth, for tests, evals and benches.

Two families: stamped DTEs printed by :mod:`dte_core.printing` (the SII layout), and hand-made
"odd" layouts drawn with reportlab (other positions, labels such as "Neto" / "Monto Neto" /
"Afecto", "RUT" / "R.U.T.", several date and amount formats). :func:`scan` turns a PDF into
what a scanner returns: a slightly rotated, noisy, blurred raster.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from typing import Any, Final

from lxml import etree

from ai_service.extraction.result import HEADER_FIELDS, ExtractionResult
from dte_core.caf import Caf
from dte_core.codes import EXENTA_TIPOS
from dte_core.printing import PrintOptions, render_pdf
from dte_core.rut import Rut, check_digit
from dte_core.ted import build_ted
from dte_core.xmlsafe import SII_NS

_EMPRESAS: Final = (
    "Comercial Los Andes SpA", "Ingeniería y Montajes Austral Ltda", "Servicios Ñuble S.A.",
    "Distribuidora El Roble Limitada", "Constructora Pehuén SpA", "Transportes Maipo Ltda",
    "Agrícola Valle Central S.A.", "Consultora Quillay SpA",
)  # fmt: skip
_ITEMS: Final = (
    "Servicio de mantención mensual", "Licencia de software anual", "Tableros eléctricos 3 tomas",
    "Cable THHN 2,5 mm rollo", "Arriendo de grúa horquilla", "Asesoría contable",
    "Resma papel carta", "Flete Santiago - Rancagua", "Válvula de bola 1/2 pulgada",
    "Horas de soporte técnico", "Kit de herramientas", "Capacitación en seguridad",
)  # fmt: skip
_COMUNAS: Final = ("Santiago", "Providencia", "Las Condes", "Temuco", "Rancagua", "Quillota")
SCANNABLE_TIPOS: Final = (33, 34, 46, 52, 56, 61)
_EMISORES: Final = ("76354771-K", "96670340-7", "76086428-5", "60910000-1")


@dataclass
class InvoiceData:
    tipo: int
    folio: int
    fecha: date
    emisor: tuple[str, str]  # (RUT, razón social)
    receptor: tuple[str, str]
    items: list[tuple[str, Decimal, int, int]]  # (descripción, cantidad, precio, monto)
    neto: int | None
    exento: int | None
    iva: int | None
    total: int

    @property
    def truth(self) -> dict[str, str | int | None]:
        return {
            "rut_emisor": self.emisor[0],
            "rut_receptor": self.receptor[0],
            "tipo_dte": self.tipo,
            "folio": self.folio,
            "fch_emis": self.fecha.isoformat(),
            "mnt_neto": self.neto,
            "mnt_exe": self.exento,
            "iva": self.iva,
            "mnt_total": self.total,
        }


@dataclass
class Sample:
    name: str
    data: InvoiceData
    pdf: bytes
    xml: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def random_rut(rng: random.Random, low: int = 50_000_000, high: int = 99_999_999) -> str:
    number = rng.randint(low, high)
    return str(Rut(number, check_digit(number)))


def random_invoice(rng: random.Random, tipo: int | None = None) -> InvoiceData:
    tipo = tipo or rng.choice(SCANNABLE_TIPOS)
    items = []
    for _ in range(rng.randint(1, 6)):
        qty = Decimal(rng.choice((1, 1, 2, 3, 5, 10, 12, 24)))
        price = rng.choice(
            (990, 4500, 12_990, 35_000, 125_000, 1_258_950, rng.randint(500, 900_000))
        )
        items.append((rng.choice(_ITEMS), qty, price, int(qty * price)))
    subtotal = sum(m for *_, m in items)
    exenta = tipo in EXENTA_TIPOS
    neto = None if exenta else subtotal
    iva = None if exenta else int((Decimal(subtotal) * 19 / 100).to_integral_value())
    emisor_rut = rng.choice(_EMISORES)  # few emisores: each needs its CAF key
    receptor_rut = random_rut(rng, 1_000_000, 49_999_999)
    return InvoiceData(
        tipo=tipo,
        folio=rng.randint(1, 2_500_000),
        fecha=date(2024, 1, 1) + timedelta(days=rng.randint(0, 700)),
        emisor=(emisor_rut, rng.choice(_EMPRESAS)),
        receptor=(receptor_rut, rng.choice(_EMPRESAS)),
        items=items,
        neto=neto,
        exento=subtotal if exenta else None,
        iva=iva,
        total=subtotal + (iva or 0),
    )


# ----------------------------------------------------------------------- SII-layout (printed)
@lru_cache(maxsize=16)
def _caf(rut: str, tipo: int) -> Caf:
    from dte_core.testkit.caf import make_caf_xml

    caf_xml = make_caf_xml(
        sii_key=_sii_key(),
        rut_emisor=rut,
        razon_social="EMPRESA DE PRUEBA",
        tipo_dte=tipo,
        folio_desde=1,
        folio_hasta=2_500_000,
        fecha_autorizacion=date(2024, 1, 1),
    )
    return Caf.from_bytes(caf_xml)


@lru_cache(maxsize=1)
def _sii_key() -> Any:
    from dte_core.testkit.caf import generate_sii_test_key

    return generate_sii_test_key()


def dte_xml(data: InvoiceData) -> bytes:
    """An unsigned ``<DTE>`` with a real TED (stamped with a test CAF): enough to print."""
    ns = SII_NS

    def sub(parent: etree._Element, tag: str, text: object = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{ns}}}{tag}")
        if text is not None:
            el.text = str(text)
        return el

    dte = etree.Element(f"{{{ns}}}DTE", nsmap={None: ns}, version="1.0")  # type: ignore[dict-item]
    doc = sub(dte, "Documento")
    doc.set("ID", f"F{data.folio}T{data.tipo}")
    enc = sub(doc, "Encabezado")
    iddoc = sub(enc, "IdDoc")
    sub(iddoc, "TipoDTE", data.tipo)
    sub(iddoc, "Folio", data.folio)
    sub(iddoc, "FchEmis", data.fecha.isoformat())
    emisor = sub(enc, "Emisor")
    sub(emisor, "RUTEmisor", data.emisor[0])
    sub(emisor, "RznSoc", data.emisor[1])
    sub(emisor, "GiroEmis", "Servicios y comercio")
    sub(emisor, "DirOrigen", "Av. Libertador B. O'Higgins 1449")
    sub(emisor, "CmnaOrigen", "Santiago")
    receptor = sub(enc, "Receptor")
    sub(receptor, "RUTRecep", data.receptor[0])
    sub(receptor, "RznSocRecep", data.receptor[1])
    sub(receptor, "GiroRecep", "Comercio")
    sub(receptor, "DirRecep", "Los Carrera 120")
    sub(receptor, "CmnaRecep", "Temuco")
    totales = sub(enc, "Totales")
    if data.neto is not None:
        sub(totales, "MntNeto", data.neto)
    if data.exento is not None:
        sub(totales, "MntExe", data.exento)
    if data.iva is not None:
        sub(totales, "TasaIVA", "19")
        sub(totales, "IVA", data.iva)
    sub(totales, "MntTotal", data.total)
    for n, (name, qty, price, monto) in enumerate(data.items, start=1):
        det = sub(doc, "Detalle")
        sub(det, "NroLinDet", n)
        if data.exento is not None:
            sub(det, "IndExe", 1)
        sub(det, "NmbItem", name)
        sub(det, "QtyItem", qty)
        sub(det, "PrcItem", price)
        sub(det, "MontoItem", monto)
    if data.tipo in (56, 61):
        ref = sub(doc, "Referencia")
        sub(ref, "NroLinRef", 1)
        sub(ref, "TpoDocRef", 33)
        sub(ref, "FolioRef", max(data.folio - 7, 1))
        sub(ref, "FchRef", data.fecha.isoformat())
        sub(ref, "CodRef", 3)
        sub(ref, "RazonRef", "Corrige montos")
    doc.append(build_ted(doc, _caf(data.emisor[0], data.tipo), timestamp=datetime(2024, 1, 2)))
    out = etree.tostring(dte, encoding="ISO-8859-1", xml_declaration=True)
    assert isinstance(out, bytes)
    return out


PRINT_OPTIONS: Final = PrintOptions(
    resolucion_numero=80, resolucion_fecha=date(2014, 8, 22), oficina_sii="SANTIAGO CENTRO"
)


def sii_sample(rng: random.Random, tipo: int | None = None) -> Sample:
    data = random_invoice(rng, tipo)
    xml = dte_xml(data)
    return Sample(f"sii-{data.tipo}-{data.folio}", data, render_pdf(xml, PRINT_OPTIONS), xml)


def odd_sample(rng: random.Random, tipo: int | None = None) -> Sample:
    from ai_service.extraction.odd_layouts import random_style, render_odd

    data = random_invoice(rng, tipo)
    style = random_style(rng)
    return Sample(
        f"odd-{data.tipo}-{data.folio}", data, render_odd(data, style), None, {"style": style}
    )


# ----------------------------------------------------------------------------- scans, scores
def scan(
    pdf: bytes,
    *,
    dpi: int = 300,
    angle: float = 1.0,
    noise: float = 0.01,
    blur: float = 0.6,
    seed: int = 0,
    fmt: str = "PNG",
) -> bytes:
    """What a flatbed scanner returns for the first page: rotated, grainy, speckled, blurred."""
    import numpy as np
    import pypdfium2
    from PIL import Image, ImageFilter

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    finally:
        document.close()
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image).astype(np.float64) + rng.normal(0, 12, (image.height, image.width))
    speckle = rng.random(pixels.shape)
    pixels[speckle < noise / 2] = 0
    pixels[speckle > 1 - noise / 2] = 255
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    out = BytesIO()
    image.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


@dataclass
class Score:
    correct: int = 0
    total: int = 0
    spurious: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 1.0

    def add(self, other: Score) -> None:
        self.correct += other.correct
        self.total += other.total
        self.spurious += other.spurious
        self.misses += other.misses


def score_fields(
    result: ExtractionResult, truth: dict[str, str | int | None], name: str = ""
) -> Score:
    """Field-level exact match over the fields the document has; values it lacks but the
    extraction reports count as ``spurious``."""
    score = Score()
    for field_name in HEADER_FIELDS:
        expected, got = truth[field_name], result.value(field_name)
        if expected is None:
            score.spurious += got not in (None, 0)
            continue
        score.total += 1
        if got == expected:
            score.correct += 1
        else:
            score.misses.append(f"{name}:{field_name} expected {expected!r} got {got!r}")
    return score


def score_lines(result: ExtractionResult, data: InvoiceData, name: str = "") -> Score:
    """Line items: descripción (prefix, as printed), cantidad, precio and monto, in order."""
    score = Score()
    for n, (desc, qty, price, monto) in enumerate(data.items):
        got = result.lines[n] if n < len(result.lines) else None
        for label, ok in (
            (
                "descripcion",
                got is not None
                and desc.startswith(got.descripcion)
                and len(got.descripcion) >= min(len(desc), 20),
            ),
            ("cantidad", got is not None and got.cantidad == qty),
            ("precio", got is not None and got.precio_unitario == price),
            ("monto", got is not None and got.monto == monto),
        ):
            score.total += 1
            score.correct += ok
            if not ok:
                score.misses.append(
                    f"{name}:line{n + 1}.{label} expected {(desc, qty, price, monto)} got {got}"
                )
    score.spurious += max(0, len(result.lines) - len(data.items))
    return score

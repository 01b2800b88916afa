"""Hand-made invoice layouts (reportlab) that are not the project's own SII print: the box on
the left or centred, other labels ("RUT", "Neto", "Afecto", "Total a pagar"), other date and
amount formats, totals laid out in a row with values under their labels, quantity first.

Test and bench material (see :mod:`ai_service.extraction.testkit`); never used in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from io import BytesIO
from typing import Final

from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.pdfgen.canvas import Canvas

from dte_core.printing import DOCUMENT_NAMES
from dte_core.rut import Rut

_MESES: Final = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


@dataclass(frozen=True)
class Style:
    box: str  # "right" | "left" | "center"
    rut_label: str
    folio_format: str
    date_label: str
    date_format: str  # "dmy/" | "dmy-" | "iso" | "words"
    receptor_label: str
    receptor_rut_label: str
    neto_label: str
    exento_label: str
    iva_label: str
    total_label: str
    money: str  # "$ {}" | "{}" | "${}"
    totals: str  # "column" | "row" (values under labels)
    qty_first: bool
    dotted_ruts: bool
    page: tuple[float, float]


def random_style(rng: random.Random) -> Style:
    return Style(
        box=rng.choice(("right", "left", "center")),
        rut_label=rng.choice(("RUT", "R.U.T.", "RUT:", "R.U.T.:")),
        folio_format=rng.choice(("N° {}", "Nº {}", "FOLIO N° {}", "Folio: {}")),
        date_label=rng.choice(("Fecha:", "Fecha Emisión:", "Fecha de Emisión:", "FECHA")),
        date_format=rng.choice(("dmy/", "dmy-", "iso", "words")),
        receptor_label=rng.choice(("Señor(es):", "Cliente:", "Razón Social:", "Receptor:")),
        receptor_rut_label=rng.choice(("RUT:", "R.U.T.:", "Rut Cliente:")),
        neto_label=rng.choice(("Neto", "Monto Neto", "Afecto", "Sub Total Neto")),
        exento_label=rng.choice(("Exento", "Monto Exento", "Monto No Afecto o Exento")),
        iva_label=rng.choice(("IVA 19%", "I.V.A.", "IVA (19%)", "19% IVA")),
        total_label=rng.choice(("Total", "TOTAL A PAGAR", "Monto Total", "Total General")),
        money=rng.choice(("$ {}", "{}", "${}")),
        totals=rng.choice(("column", "column", "row")),
        qty_first=rng.random() < 0.35,
        dotted_ruts=rng.random() < 0.7,
        page=rng.choice((LETTER, A4)),
    )


def _date(style: Style, value: object) -> str:
    from datetime import date

    assert isinstance(value, date)
    if style.date_format == "dmy/":
        return value.strftime("%d/%m/%Y")
    if style.date_format == "dmy-":
        return value.strftime("%d-%m-%Y")
    if style.date_format == "iso":
        return value.isoformat()
    return f"{value.day} de {_MESES[value.month - 1]} de {value.year}"


def render_odd(data: object, style: Style) -> bytes:
    """Draw ``data`` (a :class:`~ai_service.extraction.testkit.InvoiceData`) in ``style``."""
    from ai_service.extraction.testkit import InvoiceData

    assert isinstance(data, InvoiceData)
    out = BytesIO()
    width, height = style.page
    c = Canvas(out, pagesize=style.page)
    margin = 40.0
    right = width - margin

    def rut(text: str) -> str:
        return Rut.parse(text).formatted() if style.dotted_ruts else text

    def money(value: int) -> str:
        return style.money.format(f"{value:,}".replace(",", "."))

    # the document box
    box_w, box_h = 200.0, 78.0
    box_x = {"right": right - box_w, "left": margin, "center": (width - box_w) / 2}[style.box]
    top = height - margin
    c.setStrokeColor(Color(0.8, 0, 0))
    c.setLineWidth(1.5)
    c.rect(box_x, top - box_h, box_w, box_h)
    c.setFillColor(Color(0.8, 0, 0))
    c.setFont("Helvetica-Bold", 11)
    lines = [f"{style.rut_label} {rut(data.emisor[0])}", DOCUMENT_NAMES[data.tipo]]
    lines.append(style.folio_format.format(data.folio))
    for n, text in enumerate(lines):
        size = 11 if c.stringWidth(text, "Helvetica-Bold", 11) < box_w - 8 else 8
        c.setFont("Helvetica-Bold", size)
        c.drawCentredString(box_x + box_w / 2, top - 22 - n * 18, text)
    c.setFillColor(black)

    # emisor opposite the box (under it when centred)
    if style.box == "center":
        ex, ey = margin, top - box_h - 20
    else:
        ex, ey = (margin if style.box == "right" else width / 2 + 20), top - 12
    c.setFont("Helvetica-Bold", 13)
    c.drawString(ex, ey, data.emisor[1])
    c.setFont("Helvetica", 9)
    c.drawString(ex, ey - 14, "Casa matriz: Av. Providencia 1208, Providencia")
    c.drawString(ex, ey - 26, "Venta de insumos y servicios")

    # receptor and date
    y = top - box_h - (60 if style.box == "center" else 36)
    c.setFont("Helvetica", 10)
    c.drawString(margin, y, f"{style.receptor_label} {data.receptor[1]}")
    c.drawString(margin, y - 14, f"{style.receptor_rut_label} {rut(data.receptor[0])}")
    c.drawString(margin, y - 28, "Dirección: Los Carrera 120, Temuco")
    c.drawString(width / 2 + 40, y, f"{style.date_label} {_date(style, data.fecha)}")
    c.drawString(width / 2 + 40, y - 14, "Condición de venta: 30 días")

    # detail table
    y -= 60
    cols = (
        [("Cant.", margin + 30, "r"), ("Detalle", margin + 45, "l")]
        if style.qty_first
        else [("Descripción", margin, "l"), ("Cantidad", margin + 300, "r")]
    )
    cols += [("P. Unitario", right - 90, "r"), ("Total", right, "r")]
    c.setFont("Helvetica-Bold", 9)
    for header, x, align in cols:
        (c.drawRightString if align == "r" else c.drawString)(x, y, header)
    c.line(margin, y - 4, right, y - 4)
    c.setFont("Helvetica", 9)
    for name, qty, price, monto in data.items:
        y -= 15
        values = {"Cant.": f"{qty}", "Cantidad": f"{qty}", "Detalle": name, "Descripción": name}
        values |= {"P. Unitario": money(price), "Total": money(monto)}
        for header, x, align in cols:
            (c.drawRightString if align == "r" else c.drawString)(x, y, values[header])

    # totals
    rows = [
        (style.neto_label, data.neto),
        (style.exento_label, data.exento),
        (style.iva_label, data.iva),
        (style.total_label, data.total),
    ]
    shown = [(label, value) for label, value in rows if value is not None]
    y -= 40
    if style.totals == "row":
        step = (right - margin) / len(shown)
        for n, (label, value) in enumerate(shown):
            x = right - (len(shown) - 1 - n) * step
            c.setFont("Helvetica-Bold", 9)
            c.drawRightString(x, y, label)
            c.setFont("Helvetica", 10)
            c.drawRightString(x, y - 14, money(value))
    else:
        for label, value in shown:
            c.setFont("Helvetica-Bold" if "otal" in label or "OTAL" in label else "Helvetica", 10)
            c.drawString(right - 200, y, label)
            c.drawRightString(right, y, money(value))
            y -= 15
    c.setFont("Helvetica", 7)
    c.drawString(margin, margin, "Timbre Electrónico SII - Verifique documento: www.sii.cl")
    c.showPage()
    c.save()
    return out.getvalue()

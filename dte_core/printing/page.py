"""Drawing one document: header with the RUT box, receptor, detail (over as many pages as it
needs), references, totals and the timbre."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree
from reportlab.lib.colors import Color, black, white
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.printing.options import PrintOptions
from dte_core.printing.text import (
    DOCUMENT_NAMES,
    REFERENCE_NAMES,
    document_name,
    fit,
    format_amount,
    format_fecha,
    format_rut,
    printable,
    text_of,
    wrap,
)
from dte_core.printing.timbre import (
    ROW_RATIO,
    TIMBRE_LEFT,
    TIMBRE_MAX_H,
    module_size,
    timbre_codes,
    timbre_image,
)
from dte_core.ted import pdf417_payload

_RED: Final = Color(0.85, 0.0, 0.0)
_MARGIN: Final = 1.5 * cm
_LINE: Final = 11.0

# Detail columns: (header, Detalle child, x offset from the left margin, right-aligned)
_COLUMNS: Final = (
    ("Código", "CdgItem/VlrCodigo", 0.0, False),
    ("Descripción", "NmbItem", 62.0, False),
    ("Cantidad", "QtyItem", 340.0, True),
    ("Unidad", "UnmdItem", 346.0, False),
    ("Precio Unit.", "PrcItem", 440.0, True),
    ("% Desc.", "DescuentoPct", 480.0, True),
    ("Valor", "MontoItem", 0.0, True),  # x set to the right margin
)
_DESCRIPTION_WIDTH: Final = 230.0


class DocumentPages:
    """Draws one document: as many pages as its detail lines need."""

    def __init__(self, canvas: Canvas, documento: etree._Element, options: PrintOptions) -> None:
        self.c = canvas
        self.doc = documento
        self.opt = options
        self.width, self.height = options.page_size
        self.right = self.width - _MARGIN
        tipo_text = text_of(documento, "Encabezado/IdDoc/TipoDTE") or ""
        if not tipo_text.isdigit():
            raise InvalidDocumentError(
                "the document has no TipoDTE",
                fields=[FieldError("Encabezado.IdDoc.TipoDTE", "required", "needed to print")],
            )
        self.tipo = int(tipo_text)
        self.name = document_name(self.tipo)
        self.ted = documento.find("{*}TED")

    # ---------------------------------------------------------------- layout of the document
    def draw(self) -> None:
        rows = [self._detail_row(d) for d in self.doc.findall("{*}Detalle")]
        footer_top = _MARGIN + TIMBRE_MAX_H + 3 * _LINE  # timbre + captions, totals beside
        references = self.doc.findall("{*}Referencia")
        footer_top += (len(references) + 2) * _LINE if references else 0
        pending = rows
        while True:
            y = self._detail_header(self._header())
            if _height(pending) <= y - footer_top:
                self._detail_rows(pending, y)
                break
            fits = max(_rows_fitting(pending, y - _MARGIN - _LINE), 1)
            self._detail_rows(pending[:fits], y)
            pending = pending[fits:]
            self._font("Helvetica-Oblique", 8)
            self.c.drawRightString(self.right, _MARGIN, "continúa en la página siguiente")
            self.c.showPage()
        self._footer(references)
        self.c.showPage()

    def _font(self, name: str, size: float, color: Color = black) -> None:
        self.c.setFont(name, size)
        self.c.setFillColor(color)

    def _header(self) -> float:
        """Emisor top-left, RUT box top-right, receptor below; returns the y under it."""
        c, top = self.c, self.height - _MARGIN
        box_w, box_h = 7.0 * cm, 3.2 * cm
        box_x = self.right - box_w
        c.setStrokeColor(_RED)
        c.setLineWidth(2)
        c.rect(box_x, top - box_h, box_w, box_h, stroke=1, fill=0)
        center = box_x + box_w / 2
        rut = format_rut(text_of(self.doc, "Encabezado/Emisor/RUTEmisor"))
        name_lines = wrap(self.name, "Helvetica-Bold", 12, box_w - 12, 2)
        lines = [f"R.U.T.: {rut}", *name_lines, f"Nº {text_of(self.doc, 'Encabezado/IdDoc/Folio')}"]
        y = top - box_h / 2 + (len(lines) - 1) * 8 - 4
        for line in lines:
            self._font("Helvetica-Bold", 12, _RED)
            c.drawCentredString(center, y, line)
            y -= 16
        self._font("Helvetica-Bold", 10, _RED)
        c.drawCentredString(
            center,
            top - box_h - 13,
            fit(
                f"S.I.I. - {self.opt.oficina_sii}" if self.opt.oficina_sii else "S.I.I.",
                "Helvetica-Bold",
                10,
                box_w,
            ),
        )

        emisor = "Encabezado/Emisor/"
        self._font("Helvetica-Bold", 12)
        name_width = box_x - _MARGIN - 10
        rzn = text_of(self.doc, emisor + "RznSoc") or text_of(self.doc, emisor + "RznSocEmisor")
        c.drawString(_MARGIN, top - 12, fit(rzn or "", "Helvetica-Bold", 12, name_width))
        self._font("Helvetica", 9)
        y = top - 26
        giro = text_of(self.doc, emisor + "GiroEmis") or text_of(self.doc, emisor + "GiroEmisor")
        place = ", ".join(
            v for p in ("CmnaOrigen", "CiudadOrigen") if (v := text_of(self.doc, emisor + p))
        )
        for label, value in (
            ("Giro", giro),
            ("Dirección", text_of(self.doc, emisor + "DirOrigen")),
            ("Comuna", place or None),
            ("Email", text_of(self.doc, emisor + "CorreoEmisor")),
            ("Teléfono", text_of(self.doc, emisor + "Telefono")),
        ):
            if value:
                c.drawString(_MARGIN, y, fit(f"{label}: {value}", "Helvetica", 9, name_width))
                y -= _LINE
        return self._receptor(min(y, top - box_h - 20) - 6)

    def _receptor(self, top: float) -> float:
        rec = "Encabezado/Receptor/"
        iddoc = "Encabezado/IdDoc/"
        left = [
            ("Señor(es)", text_of(self.doc, rec + "RznSocRecep")),
            ("R.U.T.", format_rut(text_of(self.doc, rec + "RUTRecep")) or None),
            ("Giro", text_of(self.doc, rec + "GiroRecep")),
            ("Dirección", text_of(self.doc, rec + "DirRecep")),
            ("Comuna", text_of(self.doc, rec + "CmnaRecep")),
            ("Ciudad", text_of(self.doc, rec + "CiudadRecep")),
            ("Contacto", text_of(self.doc, rec + "Contacto")),
        ]
        pago = {"1": "Contado", "2": "Crédito", "3": "Sin costo"}
        right = [
            ("Fecha Emisión", format_fecha(text_of(self.doc, iddoc + "FchEmis"))),
            ("Fecha Vencimiento", format_fecha(text_of(self.doc, iddoc + "FchVenc")) or None),
            ("Forma de Pago", pago.get(text_of(self.doc, iddoc + "FmaPago") or "")),
        ]
        shown_left = [(k, v) for k, v in left if v]
        shown_right = [(k, v) for k, v in right if v]
        height = max(len(shown_left), len(shown_right), 1) * _LINE + 8
        self.c.setStrokeColor(black)
        self.c.setLineWidth(0.6)
        self.c.rect(_MARGIN, top - height, self.right - _MARGIN, height, stroke=1, fill=0)
        split = _MARGIN + (self.right - _MARGIN) * 0.62
        for x, width, pairs in (
            (_MARGIN + 5, split - _MARGIN - 10, shown_left),
            (split, self.right - split - 5, shown_right),
        ):
            y = top - _LINE
            for label, value in pairs:
                self._font("Helvetica-Bold", 9)
                self.c.drawString(x, y, f"{label}:")
                offset = stringWidth(f"{label}: ", "Helvetica-Bold", 9)
                self._font("Helvetica", 9)
                self.c.drawString(x + offset, y, fit(value, "Helvetica", 9, width - offset))
                y -= _LINE
        return top - height - 8

    # ---------------------------------------------------------------- detail
    def _detail_row(self, detalle: etree._Element) -> list[str]:
        cells = []
        for _, path, _, _ in _COLUMNS:
            value = text_of(detalle, path) or ""
            if path in ("QtyItem", "PrcItem", "MontoItem"):
                value = format_amount(value or None)
            cells.append(value)
        description = text_of(detalle, "DscItem")
        if description:
            cells.append(description)
        return cells

    def _detail_header(self, y: float) -> float:
        self.c.setFillColor(Color(0.9, 0.9, 0.9))
        self.c.rect(_MARGIN, y - 14, self.right - _MARGIN, 14, stroke=0, fill=1)
        self._font("Helvetica-Bold", 8)
        for header, _, x, right_aligned in _COLUMNS:
            self._cell(header, x, y - 10, right_aligned)
        return y - 14 - _LINE

    def _cell(self, text: str, x: float, y: float, right_aligned: bool) -> None:
        left = _MARGIN + 3 + x
        if right_aligned:
            self.c.drawRightString(self.right - 3 if x == 0.0 else left, y, text)
        else:
            self.c.drawString(left, y, text)

    def _detail_rows(self, rows: Sequence[list[str]], y: float) -> float:
        for row in rows:
            self._font("Helvetica", 8)
            for (_, path, x, right_aligned), value in zip(_COLUMNS, row, strict=False):
                if path == "NmbItem":
                    value = fit(value, "Helvetica", 8, _DESCRIPTION_WIDTH)
                self._cell(printable(value), x, y, right_aligned)
            for line in _description_lines(row):
                y -= 9
                self._font("Helvetica-Oblique", 7)
                self.c.drawString(_MARGIN + 65, y, line)
            y -= _LINE
        return y

    # ---------------------------------------------------------------- footer
    def _footer(self, references: Sequence[etree._Element]) -> None:
        y = _MARGIN + TIMBRE_MAX_H + 3 * _LINE
        if references:
            y += (len(references) + 1) * _LINE
            self._font("Helvetica-Bold", 8)
            self.c.drawString(_MARGIN, y, "Referencias:")
            for ref in references:
                y -= _LINE
                tpo = text_of(ref, "TpoDocRef") or ""
                name = REFERENCE_NAMES.get(tpo) or DOCUMENT_NAMES.get(
                    int(tpo) if tpo.isdigit() else 0, tpo
                )
                parts = [
                    name.title() if name.isupper() else name,
                    f"N° {text_of(ref, 'FolioRef') or ''}",
                ]
                if fecha := text_of(ref, "FchRef"):
                    parts.append(f"del {format_fecha(fecha)}")
                if razon := text_of(ref, "RazonRef"):
                    parts.append(f"- {razon}")
                self._font("Helvetica", 8)
                self.c.drawString(
                    _MARGIN + 5, y, fit(" ".join(parts), "Helvetica", 8, self.right - _MARGIN - 10)
                )
        self._totals()
        self._timbre()
        if self.opt.cedible:
            self._font("Helvetica-Bold", 14)
            self.c.drawRightString(self.right, _MARGIN + 2, "CEDIBLE")

    def _totals(self) -> None:
        tot = "Encabezado/Totales/"
        rows: list[tuple[str, str | None]] = [
            ("Monto Neto", text_of(self.doc, tot + "MntNeto")),
            ("Monto Exento", text_of(self.doc, tot + "MntExe")),
            (
                f"IVA {text_of(self.doc, tot + 'TasaIVA') or '19'}%".replace(".00%", "%"),
                text_of(self.doc, tot + "IVA"),
            ),
        ]
        for imp in self.doc.findall("{*}Encabezado/{*}Totales/{*}ImptoReten"):
            rows.append((f"Impuesto cód. {text_of(imp, 'TipoImp')}", text_of(imp, "MontoImp")))
        rows.append(("Total", text_of(self.doc, tot + "MntTotal")))
        shown = [(label, value) for label, value in rows if value is not None]
        x_label, y = self.right - 6.5 * cm, _MARGIN + TIMBRE_MAX_H + _LINE
        self.c.setStrokeColor(black)
        self.c.setLineWidth(0.6)
        height = len(shown) * 14 + 6
        self.c.rect(
            x_label - 5, y - height + 12, self.right - x_label + 5, height, stroke=1, fill=0
        )
        for label, value in shown:
            bold = label == "Total"
            self._font("Helvetica-Bold" if bold else "Helvetica", 10)
            self.c.drawString(x_label, y, label)
            self.c.drawRightString(self.right - 5, y, f"$ {format_amount(value)}")
            y -= 14

    def _timbre(self) -> None:
        if self.ted is None:
            self._font("Helvetica-Bold", 9, _RED)
            self.c.drawString(TIMBRE_LEFT, _MARGIN + 2 * _LINE, "DOCUMENTO SIN TIMBRE ELECTRÓNICO")
            return
        codes = timbre_codes(pdf417_payload(self.ted))
        width_modules = len(codes[0]) * 17 + 1
        module = module_size(codes)
        row_h = module * ROW_RATIO
        bottom = _MARGIN + 2 * _LINE
        top = bottom + row_h * len(codes)
        # white quiet zone first: the barcode must not touch other ink
        self.c.setFillColor(white)
        self.c.rect(
            TIMBRE_LEFT - 2 * module,
            bottom - 2 * module,
            width_modules * module + 4 * module,
            top - bottom + 4 * module,
            stroke=0,
            fill=1,
        )
        # One pixel per module, stretched: exact edges, and a text layer that parsers skip
        # (thousands of vector rects would cost a PDF parser half a second per page).
        self.c.drawImage(
            ImageReader(timbre_image(codes)),
            TIMBRE_LEFT,
            bottom,
            width=width_modules * module,
            height=top - bottom,
        )
        center = TIMBRE_LEFT + width_modules * module / 2
        self._font("Helvetica-Bold", 8)
        self.c.drawCentredString(center, bottom - _LINE + 2, "Timbre Electrónico SII")
        self._font("Helvetica", 7)
        res = f"Res. N° {self.opt.resolucion_numero} de {self.opt.resolucion_fecha.year}"
        self.c.drawCentredString(
            center, bottom - 2 * _LINE + 3, f"{res} - Verifique documento: www.sii.cl"
        )


def _description_lines(row: Sequence[str]) -> list[str]:
    if len(row) <= len(_COLUMNS):
        return []
    return wrap(row[len(_COLUMNS)], "Helvetica-Oblique", 7, _DESCRIPTION_WIDTH + 200, 3)


def _row_height(row: Sequence[str]) -> float:
    return _LINE + 9 * len(_description_lines(row))


def _height(rows: Sequence[Sequence[str]]) -> float:
    return sum(_row_height(row) for row in rows)


def _rows_fitting(rows: Sequence[Sequence[str]], room: float) -> int:
    used = 0.0
    for n, row in enumerate(rows):
        used += _row_height(row)
        if used > room:
            return n
    return len(rows)

"""Scans and image-only PDFs: rasterise (PDFium), clean up (de-noise, de-skew, threshold) and
read with Tesseract (``tesseract-ocr`` + ``tesseract-ocr-spa``) through pytesseract.

De-skew is a projection-profile search: text rows give the sharpest row-sum profile when the
page is level, so the angle that maximises its variance undoes a scanner's small rotation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np

from ai_service.extraction.guards import ExtractionError, ExtractionLimits, check_pixels
from ai_service.extraction.layout import Word, build_lines

#: Lowest resolution that still reads 8-point text; a page too big for it is refused.
_MIN_DPI: Final = 150
_MAX_SKEW_DEGREES: Final = 6.0
_MIN_WORD_CONFIDENCE: Final = 20.0
#: psm 3 (automatic page segmentation) finds the label and value columns of invoices.
_TESSERACT_CONFIG: Final = "--psm 3"


def rasterise_pdf(
    data: bytes,
    limits: ExtractionLimits,
    *,
    dpi: int | None = None,
    pages: Sequence[int] | None = None,
) -> list[Any]:
    """The pages (default all) as greyscale Pillow images at ``dpi`` (default
    ``limits.ocr_dpi``; less for huge pages)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    images = []
    try:
        for index in range(len(document)) if pages is None else pages:
            page = document[index]
            width, height = page.get_size()
            scale = (dpi or limits.ocr_dpi) / 72
            if width * height * scale * scale > limits.max_image_pixels:
                scale = math.sqrt(limits.max_image_pixels / (width * height))
            if scale * 72 < _MIN_DPI:
                check_pixels(
                    round(width * _MIN_DPI / 72),
                    round(height * _MIN_DPI / 72),
                    limits,
                    what=f"page {index + 1} at {_MIN_DPI} dpi",
                )
            images.append(page.render(scale=scale, grayscale=True).to_pil().convert("L"))
            page.close()
    except pypdfium2.PdfiumError as exc:
        raise ExtractionError(f"unreadable PDF: {exc}", code="unreadable_pdf") from exc
    finally:
        document.close()
    return images


def otsu_threshold(gray: np.ndarray[Any, Any]) -> int:
    """Otsu's threshold: grey levels at or below it are ink."""
    histogram = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    dark = np.cumsum(histogram)
    light = dark[-1] - dark
    moment = np.cumsum(histogram * np.arange(256))
    dark_mean = moment / np.maximum(dark, 1)
    light_mean = (moment[-1] - moment) / np.maximum(light, 1)
    return int(np.argmax(dark * light * (dark_mean - light_mean) ** 2))


def skew_angle(image: Any) -> float:
    """The rotation (degrees, counter-clockwise) that levels the text rows."""
    from PIL import Image

    small = image.copy()
    small.thumbnail((1200, 1200))
    gray = np.asarray(small, dtype=np.uint8)
    ink = Image.fromarray(((gray <= otsu_threshold(gray)) * 255).astype(np.uint8))

    def sharpness(angle: float) -> float:
        rotated = np.asarray(ink.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0))
        profile = rotated.sum(axis=1, dtype=np.float64)
        return float(np.square(np.diff(profile)).sum())

    def best(angles: Iterable[float]) -> float:
        return max(angles, key=sharpness)

    coarse = best(np.arange(-_MAX_SKEW_DEGREES, _MAX_SKEW_DEGREES + 0.01, 0.5))
    return round(best(np.arange(coarse - 0.5, coarse + 0.51, 0.1)), 2)


def level(image: Any) -> Any:
    """Greyscale -> median de-noise -> de-skew."""
    from PIL import Image, ImageFilter

    gray = image.convert("L").filter(ImageFilter.MedianFilter(3))
    angle = skew_angle(gray)
    if abs(angle) >= 0.1:
        gray = gray.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return gray


def binarise(gray: Any) -> Any:
    """Otsu binarisation: ink black, paper white, nothing between."""
    from PIL import Image

    pixels = np.asarray(gray, dtype=np.uint8)
    return Image.fromarray(np.where(pixels <= otsu_threshold(pixels), 0, 255).astype(np.uint8))


def preprocess(image: Any) -> Any:
    """Greyscale -> median de-noise -> de-skew -> Otsu binarisation."""
    return binarise(level(image))


def ocr_words(image: Any, *, page: int, lang: str, timeout: float) -> list[Word]:
    import pytesseract

    try:
        data = pytesseract.image_to_data(
            image,
            lang=lang,
            config=_TESSERACT_CONFIG,
            output_type=pytesseract.Output.DICT,
            timeout=timeout,
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise ExtractionError(
            "Tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-spa",
            code="ocr_unavailable",
        ) from exc
    except pytesseract.TesseractError as exc:
        raise ExtractionError(
            f"Tesseract failed ({exc.message}); is the '{lang}' language installed?",
            code="ocr_unavailable",
        ) from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise ExtractionError(
            f"OCR of page {page + 1} took over {timeout} s", code="ocr_timeout"
        ) from exc
    words = []
    for i, text in enumerate(data["text"]):
        if not text.strip() or float(data["conf"][i]) < _MIN_WORD_CONFIDENCE:
            continue
        left, top = data["left"][i], data["top"][i]
        group = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        right, bottom = left + data["width"][i], top + data["height"][i]
        words.append(Word(text.strip(), left, top, right, bottom, page, group))
    return words


def read_page(image: Any, *, page: int, lang: str, timeout: float) -> tuple[list[Word], list[Any]]:
    """Clean up and OCR one page, then take a second, closer look at RUTs that failed.

    Returns the words and the cleaned images (levelled grey, binarised) in which to look for
    the timbre: the raw scan's tilt and speckle defeat the barcode reader."""
    levelled = level(image)
    clean = binarise(levelled)
    words = ocr_words(clean, page=page, lang=lang, timeout=timeout)
    return reread_ruts(clean, words, lang=lang, timeout=timeout), [levelled, clean]


def read_images(
    images: list[Any], limits: ExtractionLimits, *, lang: str
) -> tuple[list[list[Word]], list[list[Any]]]:
    timeout = limits.ocr_timeout_seconds
    read = [read_page(image, page=n, lang=lang, timeout=timeout) for n, image in enumerate(images)]
    return [words for words, _ in read], [cleaned for _, cleaned in read]


_RUT_LABEL: Final = re.compile(r"^R\.?\s?U\.?\s?T\.?:?$|^RUT\b", re.IGNORECASE)
_RUT_CHARS: Final = "-c tessedit_char_whitelist=0123456789.-Kk"


def reread_ruts(image: Any, words: list[Word], *, lang: str, timeout: float) -> list[Word]:
    """Re-OCR, enlarged and as one line of RUT characters, what follows a "RUT" label whose
    line holds no RUT with a valid check digit: small bold digits are what Tesseract most
    often merges or drops on a full page."""
    from PIL import Image

    from ai_service.extraction.fields import line_has_valid_rut

    out = list(words)
    for line in build_lines(words):
        if line_has_valid_rut(line):
            continue
        for segment in line.segments:
            label = next((w for w in segment.words if _RUT_LABEL.match(w.text)), None)
            if label is None:
                continue
            h = label.height
            box = (
                int(label.x1 + h * 0.2),
                int(max(label.top - h * 0.4, 0)),
                int(min(label.x1 + h * 14, image.width)),
                int(min(label.bottom + h * 0.4, image.height)),
            )
            if box[2] - box[0] < h:
                continue
            crop = image.crop(box)
            crop = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.LANCZOS)
            text = _ocr_line(crop, lang=lang, timeout=timeout)
            if not text:
                continue
            # the re-read replaces what the first pass saw there
            out = [
                w
                for w in out
                if not (w.group == label.group and w.x0 >= label.x1 and w.x0 < box[2])
            ]
            out.append(
                Word(
                    text,
                    box[0],
                    label.top,
                    box[2],
                    label.bottom,
                    page=label.page,
                    group=label.group,
                )
            )
    return out


def _ocr_line(image: Any, *, lang: str, timeout: float) -> str:
    import pytesseract

    try:
        text = pytesseract.image_to_string(
            image, lang=lang, config=f"--psm 7 {_RUT_CHARS}", timeout=timeout
        )
    except (pytesseract.TesseractError, RuntimeError):
        return ""
    return " ".join(text.split())

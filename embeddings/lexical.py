"""Character n-gram features for Spanish invoice text: robust to typos, abbreviations, accents.

The embedding model is English-trained; an invoice line such as ``"arr. bodega quilicura"``
shares few word pieces with ``"Arriendo de bodegas"`` but many character 3–5-grams, once the
text is folded (lowercase, no accents) and the common abbreviations are spelled out.

Features are hashed (``HashingVectorizer``), so they need no fitted vocabulary and two
processes always produce the same vectors; ``fit_idf`` optionally down-weights n-grams that are
common across a known candidate set.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from embeddings.encoder import check_texts

DEFAULT_NGRAM_RANGE = (3, 5)
DEFAULT_N_FEATURES = 2**20

# Abbreviations seen on Chilean invoice lines (NmbItem is 80 characters, so words get cut).
# Only unambiguous ones: "rep" (reparación or repuesto?) or "cont" (contrato or contable?) stay.
SPANISH_INVOICE_ABBREVIATIONS: dict[str, str] = {
    "arr": "arriendo",
    "arrdo": "arriendo",
    "arrto": "arriendo",
    "serv": "servicio",
    "servs": "servicios",
    "srv": "servicio",
    "mant": "mantencion",
    "mantenc": "mantencion",
    "mantto": "mantencion",
    "mtto": "mantencion",
    "reparac": "reparacion",
    "comb": "combustible",
    "combust": "combustible",
    "lubric": "lubricante",
    "hon": "honorarios",
    "honor": "honorarios",
    "capac": "capacitacion",
    "mat": "materiales",
    "matl": "materiales",
    "mats": "materiales",
    "constr": "construccion",
    "ofic": "oficina",
    "of": "oficina",
    "insum": "insumos",
    "transp": "transporte",
    "tte": "transporte",
    "elec": "electricidad",
    "electr": "electricidad",
    "telef": "telefonia",
    "tel": "telefono",
    "cel": "celular",
    "inet": "internet",
    "lic": "licencia",
    "licenc": "licencia",
    "susc": "suscripcion",
    "suscrip": "suscripcion",
    "equip": "equipos",
    "herram": "herramientas",
    "pap": "papeleria",
    "seg": "seguro",
    "alim": "alimentacion",
    "colac": "colacion",
    "pub": "publicidad",
    "public": "publicidad",
    "mkt": "marketing",
    "depto": "departamento",
    "deptos": "departamentos",
    "dpto": "departamento",
    "proy": "proyecto",
    "ctto": "contrato",
    "hh": "horas hombre",
    "adm": "administracion",
    "admin": "administracion",
    "gral": "general",
    "prof": "profesional",
    "tecn": "tecnico",
    "instal": "instalacion",
    "sist": "sistema",
    "fact": "factura",
    "gto": "gasto",
    "gtos": "gastos",
    "estac": "estacionamiento",
    "pje": "pasaje",
    "aloj": "alojamiento",
    "viat": "viatico",
    "mens": "mensual",
    "limp": "limpieza",
    "vig": "vigilancia",
    "prod": "productos",
    "quim": "quimicos",
    "ferret": "ferreteria",
    "epp": "elementos de proteccion personal",
    "ppto": "presupuesto",
    "sw": "software",
    "softw": "software",
    "hw": "hardware",
    "impr": "impresora",
    "desp": "despacho",
    "corresp": "correspondencia",
    "calef": "calefaccion",
    "climat": "climatizacion",
    "bco": "banco",
    "distrib": "distribuidora",
    "edif": "edificio",
    "valpo": "valparaiso",
    "ccp": "concepcion",
    "stgo": "santiago",
}

_TOKEN = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lowercase without accents: ``"Mantención Ñuñoa"`` → ``"mantencion nunoa"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_text(
    text: str, abbreviations: dict[str, str] | None = SPANISH_INVOICE_ABBREVIATIONS
) -> str:
    """Folded words separated by single spaces, abbreviations spelled out.

    Punctuation is dropped (``"arr."`` and ``"arr"`` are the same token), so is every other
    non-alphanumeric character.
    """
    tokens = _TOKEN.findall(fold(text))
    if abbreviations:
        tokens = [abbreviations.get(token, token) for token in tokens]
    return " ".join(tokens)


class CharNgramFeaturizer:
    """Hashed, L2-normalised character n-grams (``char_wb``) of normalised text."""

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = DEFAULT_NGRAM_RANGE,
        n_features: int = DEFAULT_N_FEATURES,
        expand_abbreviations: bool = True,
    ) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.ngram_range = ngram_range
        self.expand_abbreviations = expand_abbreviations
        abbreviations = SPANISH_INVOICE_ABBREVIATIONS if expand_abbreviations else None
        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=ngram_range,
            n_features=n_features,
            alternate_sign=False,  # signs would let unrelated n-grams cancel in a cosine
            norm=None,
            preprocessor=lambda text: normalize_text(text, abbreviations),
            dtype=np.float32,
        )
        self._idf: Any = None

    @property
    def uses_idf(self) -> bool:
        return self._idf is not None

    def fit_idf(self, corpus: Iterable[str]) -> CharNgramFeaturizer:
        """Weight n-grams by inverse document frequency over ``corpus`` (e.g. the candidates)."""
        from sklearn.feature_extraction.text import TfidfTransformer

        texts = check_texts(list(corpus))
        self._idf = TfidfTransformer(norm=None, smooth_idf=True, sublinear_tf=True)
        self._idf.fit(self._vectorizer.transform(texts))
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """A sparse CSR matrix, one L2-normalised row per text (all-zero for empty text)."""
        from sklearn.preprocessing import normalize

        counts = self._vectorizer.transform(check_texts(texts))
        if self._idf is not None:
            counts = self._idf.transform(counts)
        return normalize(counts, norm="l2", copy=False)

    def similarity(self, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """Cosine similarity, shape ``(len(queries), len(candidates))``, in [0, 1]."""
        left = self.transform(queries)
        right = self.transform(candidates)
        return np.asarray((left @ right.T).toarray(), dtype=np.float32)

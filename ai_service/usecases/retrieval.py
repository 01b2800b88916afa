"""Sources the chat may cite: the SII knowledge base shipped in the repo and one company's data.

Retrieval is lexical (character n-grams on accent-folded text, which copes with Spanish
inflection, typos and abbreviations such as "fact." or "NC") plus word unigrams. The corpus
is built per company from that company's context only: another company's data is never in
the index, so no question can retrieve it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ai_service.context.models import CompanyContext
from embeddings.lexical import fold

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


@dataclass(frozen=True)
class Source:
    id: str  # "sii:iva#1" or "company:supplier:96790240-3"
    title: str
    text: str
    origin: str  # the law, manual or Odoo record the passage comes from
    kind: str  # "knowledge" or "company"


@dataclass(frozen=True)
class Hit:
    source: Source
    score: float


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip()
    return meta, text[match.end() :]


@lru_cache(maxsize=1)
def knowledge_base() -> tuple[Source, ...]:
    """Every ``## section`` of ``ai_service/knowledge/sii/*.md`` is one citable passage."""
    folder = resources.files("ai_service") / "knowledge" / "sii"
    sources: list[Source] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        meta, body = _front_matter(entry.read_text(encoding="utf-8"))
        stem = entry.name.removesuffix(".md")
        for n, section in enumerate(re.split(r"^## ", body, flags=re.M)[1:], start=1):
            heading, _, text = section.partition("\n")
            sources.append(
                Source(
                    id=f"sii:{stem}#{n}",
                    title=heading.strip(),
                    text=" ".join(text.split()),
                    origin=meta.get("source", meta.get("title", stem)),
                    kind="knowledge",
                )
            )
    return tuple(sources)


def _money(value: int) -> str:
    return f"${value:,.0f}".replace(",", ".")


def company_sources(context: CompanyContext) -> list[Source]:
    """One passage per Odoo record of this company."""
    out: list[Source] = []
    name = context.company_name

    def add(kind: str, key: str, title: str, text: str) -> None:
        out.append(Source(f"company:{kind}:{key}", title, text, f"Odoo de {name}", "company"))

    for s in context.suppliers:
        add(
            "supplier",
            str(s.rut),
            s.name,
            f"Proveedor {s.name}, RUT {s.rut}, giro {s.giro or '-'}.",
        )
    for p in context.projects:
        where = ", ".join(x for x in (p.address, p.comuna) if x)
        add(
            "project",
            p.code,
            p.name,
            f"Proyecto {p.code} {p.name}; dirección {where or '-'}; cliente {p.client or '-'}; "
            f"presupuesto {_money(p.budget) if p.budget else '-'}.",
        )
    for a in context.accounts:
        add("account", a.code, a.name, f"Cuenta de gasto {a.code}: {a.name}.")
    suppliers = context.supplier_by_rut
    for po in context.purchase_orders:
        lines = "; ".join(
            f"{ln.quantity} x {ln.product} a {_money(int(ln.unit_price))}" for ln in po.lines
        )
        supplier = suppliers.get(str(po.supplier_rut))
        add(
            "purchase_order",
            po.number,
            f"Orden de compra {po.number}",
            f"Orden de compra {po.number} del {po.date.isoformat()} a "
            f"{supplier.name if supplier else po.supplier_rut} (RUT {po.supplier_rut}), "
            f"proyecto {po.project_code or '-'}: {lines}.",
        )
    decisions = {d.invoice_key: d for d in context.decisions}
    for inv in context.invoices:
        booked = decisions.get(inv.key)
        items = "; ".join(line.name for line in inv.lines[:5])
        add(
            "invoice",
            inv.key,
            f"DTE {inv.tipo_dte} folio {inv.folio} de {inv.emisor_name}",
            f"Documento tipo {inv.tipo_dte} folio {inv.folio} de {inv.emisor_name} "
            f"(RUT {inv.emisor_rut}) del {inv.fecha.isoformat()}, neto {_money(inv.neto)}, "
            f"IVA {_money(inv.iva)}, total {_money(inv.total)}; detalle: {items}."
            + (
                f" Contabilizado en la cuenta {booked.account_code}"
                + (f", proyecto {booked.project_code}." if booked.project_code else ".")
                if booked
                else ""
            ),
        )
    return out


#: Spanish function words: they match everything, so they are not evidence of relevance.
STOPWORDS = frozenset(
    {
        "a",
        "al",
        "algo",
        "como",
        "con",
        "cual",
        "cuales",
        "cuando",
        "cuanto",
        "cuantos",
        "cuantas",
        "de",
        "del",
        "desde",
        "donde",
        "dos",
        "el",
        "ella",
        "en",
        "entre",
        "era",
        "es",
        "esa",
        "ese",
        "eso",
        "esta",
        "este",
        "esto",
        "hay",
        "la",
        "las",
        "le",
        "les",
        "lo",
        "los",
        "mas",
        "me",
        "mi",
        "mis",
        "muy",
        "no",
        "nos",
        "o",
        "para",
        "pero",
        "por",
        "que",
        "quien",
        "se",
        "segun",
        "ser",
        "si",
        "sin",
        "sobre",
        "son",
        "su",
        "sus",
        "tiene",
        "tengo",
        "un",
        "una",
        "uno",
        "unos",
        "unas",
        "y",
        "ya",
        "yo",
        "puedo",
        "debo",
        "hacer",
        "hace",
        "cuanta",
        "tu",
        "usted",
        "ustedes",
    }
)


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w{2,}", fold(text)) if w not in STOPWORDS]


class Retriever:
    """TF-IDF over content words and character 3-5-grams of the folded text.

    A passage counts as evidence only if it shares a content word (or a close spelling of one,
    through the character n-grams) with the question; function words never make a match.
    """

    def __init__(self, sources: Sequence[Source]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.sources = list(sources)
        texts = [" ".join(content_words(f"{s.title}. {s.text}")) for s in self.sources] or ["-"]
        self._words: Any = TfidfVectorizer(analyzer=str.split, sublinear_tf=True)
        self._chars: Any = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True
        )
        self._word_matrix = self._words.fit_transform(texts)
        self._char_matrix = self._chars.fit_transform(texts)

    def search(self, query: str, k: int = 5, *, min_score: float = 0.0) -> list[Hit]:
        text = " ".join(content_words(query))
        if not self.sources or not text:
            return []
        words = (self._word_matrix @ self._words.transform([text]).T).toarray().ravel()
        chars = (self._char_matrix @ self._chars.transform([text]).T).toarray().ravel()
        scores = 0.5 * words + 0.5 * chars
        order = scores.argsort()[::-1][:k]
        return [Hit(self.sources[i], float(scores[i])) for i in order if scores[i] > min_score]


def build_retriever(context: CompanyContext | None, extra: Iterable[Source] = ()) -> Retriever:
    sources = list(knowledge_base()) + list(extra)
    if context is not None:
        sources += company_sources(context)
    return Retriever(sources)

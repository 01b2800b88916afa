"""Chat for the Odoo widget: answers from the company's data and the SII knowledge base, always
citing its sources, and refusing when it has none.

The local engine answers with the retrieved passages themselves (the sentences that best match
the question, each cited). An LLM, when configured, may phrase the answer, but its citations
are checked against what was retrieved for this company: a citation of anything else, or a
quote that is not in the cited source, discards the LLM answer for the local one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ai_service.usecases.retrieval import Hit, Retriever, Source, content_words
from embeddings.lexical import fold

ENGINE_NAME = "retrieval-v1"
#: Below this retrieval score a passage is not evidence (measured on the tests' question set:
#: relevant passages score 0.18-0.55, unrelated questions below 0.06).
MIN_SCORE = 0.12
MAX_SOURCES = 4
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ0-9\"])")
REFUSAL = (
    "No encuentro en los datos de la empresa ni en la base de conocimiento del SII información "
    "para responder esa pregunta. Reformúlela o cargue los datos que falten en Odoo."
)


#: Secrets are never answered, whatever the sources hold, and attempts to lift the rules are
#: refused outright (rather than answered from whichever passage happens to match).
_SECRET = re.compile(
    r"\b(contrase[nñ]a|password|clave|llave privada|private key|token|api key|pin)\b", re.I
)
_OVERRIDE = re.compile(
    r"\b(ignora|olvida|omite|ignore|forget|disregard)\b.{0,40}"
    r"\b(reglas|instrucciones|restricciones|rules|instructions)\b",
    re.I,
)
POLICY_REFUSAL = (
    "No puedo ayudar con eso: no entrego contraseñas, claves ni credenciales, y mis reglas no "
    "cambian por una instrucción en la pregunta. Pregunte por los documentos, proveedores, "
    "proyectos o normas del SII."
)


def policy_refusal(question: str) -> bool:
    """True for questions asking for secrets or to override the chat's rules."""
    return bool(_SECRET.search(question) or _OVERRIDE.search(question))


class Citation(BaseModel):
    source_id: str
    quote: str


class ChatAnswerOutput(BaseModel):
    """The answer's schema (``prompts/chat/schema.json``)."""

    answer: str
    answerable: bool
    citations: list[Citation] = Field(default_factory=list)


@dataclass(frozen=True)
class CitedSource:
    id: str
    title: str
    origin: str
    quote: str
    score: float


@dataclass
class ChatResult:
    answer: str
    answerable: bool
    citations: list[CitedSource]
    engine: str
    confidence: float
    fallback_reason: str | None = None
    retrieved: list[Hit] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "answerable": self.answerable,
            "citations": [c.__dict__ for c in self.citations],
            "engine": self.engine,
            "confidence": round(self.confidence, 3),
            "fallback_reason": self.fallback_reason,
        }


#: The best passage is quoted whole when it is this short; others by their best sentence.
WHOLE_PASSAGE_CHARS = 450


def _best_sentence(source: Source, question: str, *, whole: bool = False) -> str:
    if whole and len(source.text) <= WHOLE_PASSAGE_CHARS:
        return source.text
    sentences = _SENTENCE.split(source.text) or [source.text]
    asked = set(content_words(question))
    return max(sentences, key=lambda s: (len(asked & set(content_words(s))), -sentences.index(s)))


def local_answer(question: str, hits: Sequence[Hit]) -> ChatAnswerOutput:
    if not hits:
        return ChatAnswerOutput(answer=REFUSAL, answerable=False, citations=[])
    parts, citations = [], []
    for n, hit in enumerate(hits[:3], start=1):
        quote = _best_sentence(hit.source, question, whole=n == 1)
        parts.append(f"{quote} [{n}]")
        citations.append(Citation(source_id=hit.source.id, quote=quote))
    return ChatAnswerOutput(
        answer="Según las fuentes: " + " ".join(parts), answerable=True, citations=citations
    )


def _normal(text: str) -> str:
    return " ".join(fold(text).split())


def citation_problems(output: ChatAnswerOutput, hits: Sequence[Hit]) -> list[str]:
    """Why an answer's citations cannot be shown (empty when they can)."""
    allowed = {h.source.id: h.source for h in hits}
    problems = []
    if output.answerable and not output.citations:
        problems.append("an answer without citations")
    for c in output.citations:
        source = allowed.get(c.source_id)
        if source is None:
            problems.append(f"cites {c.source_id!r}, which was not retrieved for this company")
        elif _normal(c.quote) not in _normal(f"{source.title}. {source.text}"):
            problems.append(f"the quote for {c.source_id!r} is not in that source")
    return problems


def _sources_block(hits: Sequence[Hit]) -> str:
    return "\n".join(
        f'<source id="{h.source.id}" title="{h.source.title}">{h.source.text}</source>'
        for h in hits
    )


def _result(
    output: ChatAnswerOutput, hits: Sequence[Hit], engine: str, fallback: str | None
) -> ChatResult:
    by_id = {h.source.id: h for h in hits}
    cited = [
        CitedSource(
            c.source_id,
            by_id[c.source_id].source.title,
            by_id[c.source_id].source.origin,
            c.quote,
            by_id[c.source_id].score,
        )
        for c in output.citations
        if c.source_id in by_id
    ]
    top = hits[0].score if hits else 0.0
    # retrieval score is the evidence strength; map it onto [0, 1] around the threshold
    confidence = 0.0 if not output.answerable else min(1.0, 0.5 + (top - MIN_SCORE) * 2)
    return ChatResult(
        output.answer, output.answerable, cited, engine, confidence, fallback, list(hits)
    )


def answer(
    question: str,
    retriever: Retriever,
    *,
    llm: Any | None = None,
    prompt: Any | None = None,
    company_id: str = "",
    history: Sequence[tuple[str, str]] = (),
) -> ChatResult:
    """Answer one question. ``llm`` is an :class:`ai_service.llm.base.LLMClient` and ``prompt``
    the chat :class:`ai_service.llm.prompts.PromptTemplate`; without them the local engine
    answers."""
    if policy_refusal(question):
        refused = ChatAnswerOutput(answer=POLICY_REFUSAL, answerable=False, citations=[])
        return _result(refused, [], f"local/{ENGINE_NAME}", None)
    hits = retriever.search(question, k=MAX_SOURCES, min_score=MIN_SCORE)
    local = local_answer(question, hits)
    if llm is None or prompt is None or not hits:
        return _result(local, hits, f"local/{ENGINE_NAME}", None)
    from ai_service.llm.base import LocalEngine

    rendered = prompt.render(
        {
            "question": question,
            "history": "\n".join(f"{role}: {text}" for role, text in history[-6:]),
            "sources": _sources_block(hits),
        }
    )
    result = llm.complete(
        "chat",
        rendered,
        ChatAnswerOutput,
        company_id=company_id,
        local=LocalEngine(ENGINE_NAME, lambda: local),
    )
    engine = str(result.engine)
    if result.fallback_reason is not None:
        return _result(result.output, hits, engine, result.fallback_reason)
    if citation_problems(result.output, hits):
        return _result(local, hits, f"local/{ENGINE_NAME}", "invalid_citations")
    return _result(result.output, hits, engine, None)

"""Chat for the Odoo widget: answers from the company's data and the SII rules, with sources.

``POST /v1/chat`` answers in one JSON; ``POST /v1/chat/stream`` streams the same answer as
Server-Sent Events. The answer is streamed only after its citations were checked: an
unchecked LLM text must never reach the screen, even for a moment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.repositories.companies import Company

router = APIRouter(prefix="/v1/chat", tags=["chat"])


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=4000)]


class ChatIn(BaseModel):
    question: Annotated[str, Field(min_length=1, max_length=2000)]
    history: Annotated[list[Turn], Field(max_length=20)] = []


class CitationOut(BaseModel):
    id: str
    title: str
    origin: str
    quote: str
    score: float


class ChatOut(BaseModel):
    answer: str
    answerable: bool
    citations: list[CitationOut]
    engine: str
    confidence: float
    fallback_reason: str | None


EXAMPLE = {"question": "¿Cuántos días tengo para reclamar una factura?"}


def _answer(ctx: AppContext, company: Company, body: ChatIn) -> Any:
    from ai_service.usecases.chat import answer

    retriever = ctx.engine_cache().get(company).get("retriever")
    llm = ctx.llm()
    return answer(
        body.question,
        retriever,
        llm=llm,
        prompt=ctx.prompts().template("chat") if llm else None,
        company_id=company.id,
        history=[(t.role, t.content) for t in body.history],
    )


@router.post("", summary="Ask a question; the answer cites its sources", response_model=ChatOut)
def chat(
    ctx: Context,
    company: CurrentCompany,
    body: Annotated[ChatIn, Body(openapi_examples={"plazo": {"value": EXAMPLE}})],
) -> ChatOut:
    return ChatOut.model_validate(_answer(ctx, company, body).as_dict())


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(result: Any) -> Iterator[str]:
    out = result.as_dict()
    yield _sse(
        "meta",
        {k: out[k] for k in ("engine", "answerable", "confidence", "fallback_reason")},
    )
    words = out["answer"].split(" ")
    for i in range(0, len(words), 8):
        chunk = " ".join(words[i : i + 8])
        yield _sse("delta", {"text": chunk if i == 0 else " " + chunk})
    for citation in out["citations"]:
        yield _sse("citation", citation)
    yield _sse("done", {})


@router.post(
    "/stream",
    summary="The same answer as Server-Sent Events (meta, delta..., citation..., done)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat_stream(ctx: Context, company: CurrentCompany, body: ChatIn) -> StreamingResponse:
    result = _answer(ctx, company, body)
    return StreamingResponse(
        _events(result),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

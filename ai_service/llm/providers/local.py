"""The local "provider": it generates nothing, it runs the use case's deterministic engine.

Every use case owns an engine (rules, statistics, classical ML, embeddings) that works with no
network or key. It is what answers when ``local`` is configured, and what answers instead of
an LLM that timed out, failed or gave an unusable answer.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from ai_service.llm.base import LOCAL, Engine, LocalEngine

T = TypeVar("T", bound=BaseModel)

NAME = LOCAL


def run_local(engine: LocalEngine[T], schema: type[T]) -> tuple[T, Engine]:
    """Run ``engine`` and check it kept its promise to return a ``schema`` instance.

    An engine answering with the wrong type is a programming error, so it raises TypeError
    instead of being hidden behind a fallback.
    """
    output = engine.run()
    if not isinstance(output, schema):
        raise TypeError(
            f"local engine {engine.name!r} returned {type(output).__name__}, "
            f"expected {schema.__name__}"
        )
    return output, Engine(provider=NAME, model=engine.name)

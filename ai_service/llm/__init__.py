"""LLM providers behind one interface, with the local engine as the always-available fallback.

Use cases import :class:`LLMClient`, :class:`LocalEngine`, :class:`LLMResult` and
:class:`RenderedPrompt` from here; the service wires an
:class:`~ai_service.llm.orchestrator.Orchestrator` with
:func:`~ai_service.llm.orchestrator.build_llm_client`. Importing this package loads no SDK.
"""

from ai_service.llm.base import (
    Engine,
    LLMClient,
    LLMProvider,
    LLMResult,
    LocalEngine,
    ProviderResponse,
    RenderedPrompt,
    Usage,
)
from ai_service.llm.errors import FallbackReason, LLMError, PromptError

__all__ = [
    "Engine",
    "FallbackReason",
    "LLMClient",
    "LLMError",
    "LLMProvider",
    "LLMResult",
    "LocalEngine",
    "PromptError",
    "ProviderResponse",
    "RenderedPrompt",
    "Usage",
]

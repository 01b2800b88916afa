"""Providers by name (``local``, ``anthropic``, ``ollama``), built on first use from config.

Building a provider is where a missing API key shows up (:class:`NotConfigured`); the
orchestrator turns that into a local answer with ``fallback_reason="not_configured"``. A failed
build is not cached, so fixing configuration and rebuilding the registry is enough.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from ai_service.llm.base import LOCAL, LLMProvider
from ai_service.llm.breaker import CircuitBreaker
from ai_service.llm.config import LLMConfig
from ai_service.llm.errors import NotConfigured

ProviderFactory = Callable[[LLMConfig], LLMProvider]


def _anthropic(config: LLMConfig) -> LLMProvider:
    from ai_service.llm.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config.anthropic)


def _ollama(config: LLMConfig) -> LLMProvider:
    from ai_service.llm.providers.ollama import OllamaProvider

    return OllamaProvider(config.ollama)


DEFAULT_FACTORIES: Mapping[str, ProviderFactory] = {"anthropic": _anthropic, "ollama": _ollama}


class ProviderRegistry:
    def __init__(
        self,
        config: LLMConfig,
        *,
        factories: Mapping[str, ProviderFactory] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``factories`` replaces or adds builders by name (tests inject mock transports)."""
        self.config = config
        self._factories = {**DEFAULT_FACTORIES, **(factories or {})}
        self._providers: dict[str, LLMProvider] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return [LOCAL, *sorted(self._factories)]

    def get(self, name: str) -> LLMProvider:
        """The provider called ``name``; raises NotConfigured if it cannot be built."""
        if name == LOCAL:
            raise ValueError("the local engine is not a remote provider; run it directly")
        with self._lock:
            provider = self._providers.get(name)
            if provider is not None:
                return provider
            factory = self._factories.get(name)
            if factory is None:
                raise NotConfigured(f"unknown LLM provider {name!r}; known: {self.names()}")
            provider = factory(self.config)
            self._providers[name] = provider
            return provider

    def breaker(self, name: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                kwargs = {} if self._clock is None else {"clock": self._clock}
                breaker = CircuitBreaker(
                    failure_threshold=self.config.breaker.failure_threshold,
                    reset_after_seconds=self.config.breaker.reset_after_seconds,
                    **kwargs,
                )
                self._breakers[name] = breaker
            return breaker

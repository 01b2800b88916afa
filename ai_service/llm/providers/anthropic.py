"""Anthropic through the official ``anthropic`` SDK (>= 2, which speaks httpx2).

Structured output uses the Messages API ``output_config.format`` (JSON schema); the stable
system part carries ``cache_control`` so repeated calls read it from the prompt cache. The SDK's
own retries are off (``max_retries=0``): retries and back-off belong to the orchestrator.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ai_service.llm.base import ProviderResponse, RenderedPrompt, Usage
from ai_service.llm.config import AnthropicConfig
from ai_service.llm.errors import (
    InvalidOutput,
    NotConfigured,
    ProviderError,
    ProviderFailure,
    ProviderTimeout,
    RateLimited,
    Refusal,
    Truncated,
)

if TYPE_CHECKING:
    import anthropic
    import httpx2
    from anthropic.types import Message

NAME = "anthropic"
_TRUNCATING_STOPS = frozenset({"max_tokens", "model_context_window_exceeded"})


class AnthropicProvider:
    name = NAME

    def __init__(self, config: AnthropicConfig, *, http_client: httpx2.Client | None = None):
        if config.api_key is None or not config.api_key.get_secret_value().strip():
            raise NotConfigured("anthropic is selected but no API key is configured")
        self._config = config
        self._http_client = http_client
        self._client: anthropic.Anthropic | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> anthropic.Anthropic:
        with self._lock:
            if self._client is None:
                import anthropic

                assert self._config.api_key is not None
                self._client = anthropic.Anthropic(
                    api_key=self._config.api_key.get_secret_value(),
                    base_url=self._config.base_url,
                    timeout=self._config.timeout_seconds,
                    max_retries=0,
                    http_client=self._http_client,
                )
            return self._client

    def model_for(self, prompt: RenderedPrompt) -> str:
        return self._config.model or prompt.models.get(NAME) or self._config.default_model

    def request_params(
        self, prompt: RenderedPrompt, output_schema: Mapping[str, Any], *, model: str
    ) -> dict[str, Any]:
        """The Messages API body for one prompt (also one request of a Message Batch)."""
        from anthropic import transform_schema

        params: dict[str, Any] = {
            "model": model,
            "max_tokens": prompt.max_tokens,
            "system": [
                {"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": prompt.user}],
            "output_config": {
                "format": {"type": "json_schema", "schema": transform_schema(dict(output_schema))}
            },
        }
        # The current API rejects sampling parameters such as temperature; whatever a prompt
        # pins for anthropic (e.g. stop_sequences, metadata) passes through as given.
        params.update(prompt.params_for(NAME))
        return params

    def generate(
        self,
        prompt: RenderedPrompt,
        output_schema: Mapping[str, Any],
        *,
        model: str,
        timeout: float,
    ) -> ProviderResponse:
        params = self.request_params(prompt, output_schema, model=model)
        try:
            message = self.client.messages.create(**params, timeout=timeout)
        except Exception as exc:
            raise translate_error(exc) from exc
        return parse_message(message)


def parse_message(message: Message) -> ProviderResponse:
    """Turn a Messages API reply into parsed JSON, or raise why it cannot be used."""
    usage = Usage(
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
        cache_write_tokens=message.usage.cache_creation_input_tokens or 0,
        cache_read_tokens=message.usage.cache_read_input_tokens or 0,
    )
    if message.stop_reason == "refusal":
        raise Refusal("the model declined to answer", usage=usage)
    if message.stop_reason in _TRUNCATING_STOPS:
        raise Truncated(
            f"output cut off (stop_reason {message.stop_reason}); raise max_tokens", usage=usage
        )
    text = "".join(block.text for block in message.content if block.type == "text")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidOutput("the model's answer is not JSON", usage=usage) from exc
    return ProviderResponse(
        data=data, model=message.model, usage=usage, stop_reason=message.stop_reason
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from this API; fall back to exponential back-off


def translate_error(exc: Exception) -> ProviderFailure:
    """Map an SDK exception to the LLM error tree (callers ``raise ... from exc``)."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout("anthropic did not answer in time")
    if isinstance(exc, anthropic.RateLimitError):
        return RateLimited("anthropic rate limit", retry_after=_retry_after(exc.response.headers))
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        # 529 (overloaded) and other 5xx are the provider's trouble and may clear up.
        return ProviderError(
            f"anthropic answered HTTP {status} ({exc.type or 'error'})",
            transient=status >= 500 or status == 408,
            status_code=status,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("cannot reach anthropic", transient=True)
    if isinstance(exc, ValueError | anthropic.APIResponseValidationError):
        # A body that is not JSON (a proxy's HTML error page, a cut connection).
        return ProviderError("anthropic sent an unreadable response", transient=True)
    return ProviderError(f"anthropic call failed: {type(exc).__name__}")

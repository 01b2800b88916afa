"""A local or LAN Ollama server through the official ``ollama`` client.

``format`` carries the task's JSON schema (Ollama constrains decoding to it); ``num_ctx`` is
always explicit because Ollama's small default context silently drops the start of long
documents. The client has no per-call timeout, so one client is kept per timeout value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ai_service.llm.base import ProviderResponse, RenderedPrompt, Usage
from ai_service.llm.config import OllamaConfig
from ai_service.llm.errors import (
    InvalidOutput,
    NotConfigured,
    ProviderError,
    ProviderFailure,
    ProviderTimeout,
    RateLimited,
    Truncated,
)

if TYPE_CHECKING:
    import ollama
    from ollama import ChatResponse

NAME = "ollama"


class OllamaProvider:
    name = NAME

    def __init__(self, config: OllamaConfig, **client_kwargs: Any) -> None:
        """``client_kwargs`` go to the underlying httpx client (tests pass ``transport=``)."""
        if not config.enabled:
            raise NotConfigured("ollama is selected but not enabled in configuration")
        self._config = config
        self._client_kwargs = client_kwargs
        self._clients: dict[float, ollama.Client] = {}
        self._lock = threading.Lock()

    def client(self, timeout: float) -> ollama.Client:
        with self._lock:
            client = self._clients.get(timeout)
            if client is None:
                import ollama

                client = ollama.Client(
                    host=self._config.host, timeout=timeout, **self._client_kwargs
                )
                self._clients[timeout] = client
            return client

    def model_for(self, prompt: RenderedPrompt) -> str:
        return self._config.model or prompt.models.get(NAME) or self._config.default_model

    def request_params(
        self, prompt: RenderedPrompt, output_schema: Mapping[str, Any], *, model: str
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_ctx": self._config.num_ctx,
            "num_predict": prompt.max_tokens,
        }
        options.update(prompt.params_for(NAME))
        return {
            "model": model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "format": dict(output_schema),
            "options": options,
            "keep_alive": self._config.keep_alive,
            "stream": False,
        }

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
            response = self.client(timeout).chat(**params)
        except Exception as exc:
            raise translate_error(exc) from exc
        return parse_chat(response)


def parse_chat(response: ChatResponse) -> ProviderResponse:
    usage = Usage(
        input_tokens=response.prompt_eval_count or 0, output_tokens=response.eval_count or 0
    )
    if response.done_reason == "length":
        raise Truncated("output cut off at num_predict; raise max_tokens", usage=usage)
    text = response.message.content or ""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidOutput("the model's answer is not JSON", usage=usage) from exc
    return ProviderResponse(
        data=data, model=response.model or "", usage=usage, stop_reason=response.done_reason
    )


def translate_error(exc: Exception) -> ProviderFailure:
    import httpx
    import ollama
    import pydantic

    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout("ollama did not answer in time")
    if isinstance(exc, ollama.ResponseError):
        status = exc.status_code
        if status == 429:
            return RateLimited("ollama is busy (HTTP 429)")
        return ProviderError(
            f"ollama answered HTTP {status}: {exc.error}"[:300],
            transient=status >= 500,
            status_code=status,
        )
    if isinstance(exc, ConnectionError | httpx.TransportError):
        # The client turns httpx.ConnectError into the builtin ConnectionError.
        return ProviderError("cannot reach ollama", transient=True)
    if isinstance(exc, ValueError | pydantic.ValidationError):
        return ProviderError("ollama sent an unreadable response", transient=True)
    return ProviderError(f"ollama call failed: {type(exc).__name__}")

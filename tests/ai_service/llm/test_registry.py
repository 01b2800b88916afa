"""The provider registry builds lazily, and importing the LLM layer loads no SDK."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import SecretStr

from ai_service.llm.config import AnthropicConfig, LLMConfig
from ai_service.llm.errors import NotConfigured
from ai_service.llm.providers.anthropic import AnthropicProvider
from ai_service.llm.registry import ProviderRegistry


def test_importing_the_layer_loads_no_sdk_and_no_client() -> None:
    code = (
        "import sys\n"
        "import ai_service.llm, ai_service.llm.orchestrator, ai_service.llm.batch\n"
        "import ai_service.llm.providers.anthropic, ai_service.llm.providers.ollama\n"
        "from ai_service.llm.orchestrator import build_llm_client\n"
        "from ai_service.llm.config import LLMConfig\n"
        "build_llm_client(LLMConfig(provider='anthropic', redis_url='redis://127.0.0.1:1/0'))\n"
        "print(sorted(m for m in ('anthropic', 'ollama', 'redis', 'httpx2') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_providers_are_built_once_on_first_use() -> None:
    built: list[str] = []

    def factory(config: LLMConfig) -> AnthropicProvider:
        built.append("anthropic")
        return AnthropicProvider(config.anthropic)

    registry = ProviderRegistry(
        LLMConfig(anthropic=AnthropicConfig(api_key=SecretStr("k"))),
        factories={"anthropic": factory},
    )
    assert built == []
    first = registry.get("anthropic")
    assert registry.get("anthropic") is first and built == ["anthropic"]
    assert registry.breaker("anthropic") is registry.breaker("anthropic")
    assert registry.names() == ["local", "anthropic", "ollama"]


def test_unknown_or_unconfigured_providers() -> None:
    registry = ProviderRegistry(LLMConfig())
    with pytest.raises(NotConfigured, match="unknown LLM provider"):
        registry.get("openai")
    with pytest.raises(NotConfigured, match="API key"):
        registry.get("anthropic")
    with pytest.raises(NotConfigured, match="not enabled"):
        registry.get("ollama")
    with pytest.raises(ValueError):
        registry.get("local")


def test_local_engine_returning_the_wrong_type_is_a_bug() -> None:
    from ai_service.llm.base import LocalEngine
    from ai_service.llm.providers.local import run_local

    from .conftest import Classification

    engine: Any = LocalEngine("broken", lambda: {"account_code": "1"})
    with pytest.raises(TypeError, match="broken"):
        run_local(engine, Classification)

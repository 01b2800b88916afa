"""The LLM boundary's exception tree and the machine codes a fallback reports.

A provider raises one of these (``raise ... from`` the SDK error); the orchestrator turns it
into a fallback to the local engine whose ``LLMResult.fallback_reason`` is the error's code.
Only :class:`PromptError` escapes to callers: a broken prompt file is a deployment defect, not
something to paper over with the local engine.
"""

from __future__ import annotations

from enum import StrEnum

from ai_service.llm.base import Usage


class FallbackReason(StrEnum):
    """Why a result came from the local engine although an LLM provider was configured."""

    TIMEOUT = "timeout"
    PROVIDER_ERROR = "provider_error"
    RATE_LIMITED = "rate_limited"
    REFUSAL = "refusal"
    TRUNCATED = "truncated"
    INVALID_OUTPUT = "invalid_output"
    CIRCUIT_OPEN = "circuit_open"
    PROMPT_UNEVALUATED = "prompt_unevaluated"
    NOT_CONFIGURED = "not_configured"


class LLMError(Exception):
    """Base of every LLM-layer error. ``usage`` holds tokens billed before the failure."""

    code = "llm_error"

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage or Usage()
        #: Provider calls made before giving up (set by the orchestrator's retry loop).
        self.attempts = 0


class ProviderFailure(LLMError):
    """A provider call did not yield usable output; ``reason`` is what the result reports."""

    reason: FallbackReason = FallbackReason.PROVIDER_ERROR
    #: Worth another attempt (HTTP 429/5xx, transport errors); decided by the provider adapter.
    transient = False
    #: Says the provider is unhealthy (counts towards opening its circuit breaker).
    unhealthy = True

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.reason.value


class ProviderTimeout(ProviderFailure):
    reason = FallbackReason.TIMEOUT


class ProviderError(ProviderFailure):
    """HTTP error, transport error or an unreadable response body."""

    reason = FallbackReason.PROVIDER_ERROR

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        status_code: int | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, usage=usage)
        self.transient = transient
        self.status_code = status_code


class RateLimited(ProviderFailure):
    reason = FallbackReason.RATE_LIMITED
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refusal(ProviderFailure):
    reason = FallbackReason.REFUSAL
    unhealthy = False


class Truncated(ProviderFailure):
    """The model hit max_tokens (or its context window) before finishing the JSON."""

    reason = FallbackReason.TRUNCATED
    unhealthy = False


class InvalidOutput(ProviderFailure):
    """The text is not JSON, or the JSON does not validate against the task's schema."""

    reason = FallbackReason.INVALID_OUTPUT
    unhealthy = False


class NotConfigured(LLMError):
    """The provider is named in configuration but lacks what it needs (API key, model)."""

    code = "not_configured"


class PromptError(LLMError):
    """A prompt file is missing, unreadable or inconsistent, or an input variable is missing."""

    code = "prompt_invalid"

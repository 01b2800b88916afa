"""Provider HTTP in evals: a transport that records every raw response body (``record``) and one
that serves the recorded bodies back (``replay``), both under the REAL provider adapters, so a
replay exercises the SDK, the adapter's parser and the schema validation exactly as production.

One recording per case: the runner says which case is being asked (:meth:`Tape.at`). The
request's body hash is recorded too; a replayed request that differs (the prompt rendered
differently) is answered with an error, which the adapter turns into a fallback the scores show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ai_service.llm.base import canonical_json
from ai_service.llm.config import LLMConfig
from ai_service.llm.registry import ProviderFactory

#: a synthetic recording (made by tests, never by a provider) carries this, and the gate refuses
#: to count it unless the workspace explicitly allows synthetic fixtures
SYNTHETIC = "synthetic"


def request_sha256(body: bytes) -> str:
    try:
        return hashlib.sha256(canonical_json(json.loads(body)).encode()).hexdigest()
    except ValueError:
        return hashlib.sha256(body).hexdigest()


@dataclass
class Tape:
    """Recordings by case id: ``{case_id: {status, body, request_sha256, ...}}``."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    current: str | None = None
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    synthetic: bool = False

    def at(self, case_id: str) -> None:
        self.current = case_id

    def serve(self, request_body: bytes) -> tuple[int, bytes]:
        assert self.current is not None, "Tape.at(case) before each call"
        entry = self.entries.get(self.current)
        if entry is None:
            self.missing.append(self.current)
            return 599, b'{"type":"error","error":{"type":"not_recorded","message":"no recording"}}'
        if entry["request_sha256"] != request_sha256(request_body):
            self.mismatches.append(self.current)
            return 599, b'{"type":"error","error":{"type":"request_changed","message":"differs"}}'
        return int(entry["status"]), json.dumps(entry["body"]).encode()

    def keep(self, request_body: bytes, status: int, body: bytes, provider: str) -> None:
        assert self.current is not None
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        entry = {
            "case_id": self.current,
            "provider": provider,
            "request_sha256": request_sha256(request_body),
            "status": status,
            "body": parsed,
        }
        if self.synthetic:
            entry[SYNTHETIC] = True
        self.entries[self.current] = entry

    def lines(self) -> list[str]:
        return [canonical_json(self.entries[k]) for k in sorted(self.entries)]

    @classmethod
    def from_lines(cls, text: str) -> Tape:
        tape = cls()
        for line in text.splitlines():
            if line.strip():
                entry = json.loads(line)
                tape.entries[entry["case_id"]] = entry
                tape.synthetic = tape.synthetic or bool(entry.get(SYNTHETIC))
        return tape


Upstream = Callable[[Any], Any]  # an httpx(2) request -> response, e.g. a real transport


_HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _headers(response: Any) -> dict[str, str]:
    """The upstream headers minus those describing the wire encoding already undone."""
    return {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}


def _tape_handler(
    tape: Tape, mode: str, upstream: Any, http: Any, provider: str
) -> Callable[[Any], Any]:
    """A mock-transport handler over the tape; ``http`` is the module of the provider's client
    (httpx2 for the Anthropic SDK, httpx for the ollama client: same API, distinct types)."""

    def handler(request: Any) -> Any:
        body = request.read()
        if mode == "replay":
            status, content = tape.serve(body)
            return http.Response(
                status, content=content, headers={"content-type": "application/json"}
            )
        response = upstream.handle_request(request) if upstream else None
        if response is None:
            raise RuntimeError("recording needs an upstream transport")
        response.read()
        tape.keep(body, response.status_code, response.content, provider)
        return http.Response(
            response.status_code, content=response.content, headers=_headers(response)
        )

    return handler


def anthropic_factory(tape: Tape, mode: str, upstream: Any = None) -> ProviderFactory:
    """The real AnthropicProvider over an httpx2 client whose transport is the tape."""
    import httpx2

    from ai_service.llm.providers.anthropic import AnthropicProvider

    handler = _tape_handler(tape, mode, upstream, httpx2, "anthropic")

    def factory(config: LLMConfig) -> AnthropicProvider:
        client = httpx2.Client(transport=httpx2.MockTransport(handler))
        return AnthropicProvider(config.anthropic, http_client=client)

    return factory


def ollama_factory(tape: Tape, mode: str, upstream: Any = None) -> ProviderFactory:
    """The real OllamaProvider whose httpx client runs on the tape."""
    import httpx

    from ai_service.llm.providers.ollama import OllamaProvider

    handler = _tape_handler(tape, mode, upstream, httpx, "ollama")

    def factory(config: LLMConfig) -> OllamaProvider:
        return OllamaProvider(config.ollama, transport=httpx.MockTransport(handler))

    return factory


FACTORIES = {"anthropic": anthropic_factory, "ollama": ollama_factory}

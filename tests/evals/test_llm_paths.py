"""Every task's LLM path renders its prompt, builds a real Messages API request through the
Anthropic adapter and, when the answer is unusable, lands on the local engine; recording and
replaying work the same through the Ollama adapter. Upstreams are SYNTHETIC."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import httpx2
import pytest

from evals import gate, lockfile, tasks
from evals.cases import load_cases
from evals.paths import Workspace
from evals.run import predict
from evals.wire import Tape

from .conftest import TASK, SyntheticExplainer, synthetic_message


@pytest.mark.parametrize("name", sorted(tasks.registry()))
def test_llm_path_sends_a_real_request_and_falls_back_on_a_refusal(name: str) -> None:
    seen: list[dict[str, Any]] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        body = synthetic_message({})
        body["stop_reason"] = "refusal"
        return httpx2.Response(200, json=body)

    task = tasks.get(name)
    cases = [c for c in load_cases(Workspace().datasets, name) if c.split == "test"]
    if name in ("classification", "project_matching"):
        # production asks the LLM only where the engine abstains: pick such cases
        labels = predict(task, cases)
        cases = [c for c, p in zip(cases, labels, strict=True) if p.label is None]
    cases = cases[:3]
    tape = Tape()
    client = gate._client(
        "anthropic", tape, "record", upstream=httpx2.MockTransport(refuse), api_key="sk-synthetic"
    )
    local = predict(task, cases)
    preds = predict(
        task, cases, client=client, prompts=_prompts(), before_case=lambda c: tape.at(c.id)
    )

    for request in seen:
        assert request["output_config"]["format"]["type"] == "json_schema"
        assert request["model"].startswith("claude-")
    for got, want in zip(preds, local, strict=True):
        if seen:
            assert got.engine.startswith("local/") or got.engine == "local/no-findings"
        # the local engine's answer, in the LLM schema and back: the same where both say it
        shared = set(got.data) & set(want.data) - {"outcome"}
        assert {k: got.data[k] for k in shared} == {k: want.data[k] for k in shared}
        if name in ("classification", "project_matching"):
            assert got.ranked[0] == want.ranked[0]
    if name not in ("validation", "chat"):
        assert len(seen) == len(cases)
        assert all(p.fallback_reason == "refusal" for p in preds)


def _prompts() -> Any:
    from ai_service.llm.prompts import PromptRegistry

    return PromptRegistry(Workspace().prompts)


class SyntheticOllama:
    """POST /api/chat answering like SyntheticExplainer, in Ollama's wire format."""

    def __init__(self) -> None:
        self.explainer = SyntheticExplainer()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/chat"
        body = json.loads(request.content)
        as_anthropic = httpx2.Request(
            "POST",
            "https://synthetic.invalid/v1/messages",
            json={"messages": [{"role": "user", "content": body["messages"][1]["content"]}]},
        )
        text = json.loads(self.explainer(as_anthropic).content)["content"][0]["text"]
        return httpx.Response(
            200,
            json={
                "synthetic": True,
                "model": "qwen3:8b",
                "created_at": "2026-12-01T00:00:00Z",
                "message": {"role": "assistant", "content": text},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 300,
                "eval_count": 60,
            },
        )


def test_record_and_replay_through_the_ollama_adapter(workspace: Workspace) -> None:
    api = SyntheticOllama()
    outcome, passed = gate.record(
        workspace, tasks.get(TASK), "ollama", upstream=httpx.MockTransport(api), synthetic=True
    )
    assert passed, outcome.regressions
    [entry] = lockfile.load(workspace).values()
    assert (entry.provider, entry.model) == ("ollama", "qwen3:8b")
    assert gate.check(workspace).ok
    report = gate.replay(workspace)
    assert report.ok, report.problems
    recorded = lockfile.resolve(workspace, entry.recordings).read_text(encoding="utf-8")
    tape = Tape.from_lines(recorded)
    assert tape.synthetic and tape.entries
    assert {e["provider"] for e in tape.entries.values()} == {"ollama"}


class _LoopbackOllama(BaseHTTPRequestHandler):
    """A SYNTHETIC Ollama server on loopback: /api/version and /api/chat."""

    api = SyntheticOllama()

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, b'{"version":"0.12.0"}')

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        request = httpx.Request("POST", "http://loopback/api/chat", content=self.rfile.read(length))
        self._send(200, self.api(request).content)


def test_record_over_real_http_to_a_loopback_server(workspace: Workspace) -> None:
    """The real transport path: reachability probe, HTTP, recording, lock, then replay."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoopbackOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        assert gate.provider_reachable("ollama", api_key=None, ollama_host=host) is None
        outcome, passed = gate.record(
            workspace, tasks.get(TASK), "ollama", ollama_host=host, synthetic=True
        )
    finally:
        server.shutdown()
        server.server_close()
    assert passed, outcome.regressions
    assert outcome.results["aggregate"]["accounting"]["input_tokens"] > 0
    assert gate.replay(workspace).ok  # the server is gone: replay needs only the recordings

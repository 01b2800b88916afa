"""Fixtures for the eval gate: a small workspace in a temporary folder (a slice of the real
validation dataset, its own baselines, lock, recordings and a copy of prompts/), and a
SYNTHETIC Anthropic upstream: an in-process Messages API that answers like a faithful model
(one fix per finding it is given). Recordings made through it are marked synthetic."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from evals import baselines, tasks
from evals.cases import dataset_path, load_cases, write_cases
from evals.paths import Workspace
from evals.run import run_local

FIXTURES = Path(__file__).parent / "fixtures"
TASK = "validation"
_ERRORS = re.compile(r"<errors>(.*?)</errors>", re.S)


def synthetic_message(answer: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "SYNTHETIC-anthropic-message.json").read_text())
    body = copy.deepcopy(body)
    body["content"][0]["text"] = json.dumps(answer, ensure_ascii=False)
    return body


class SyntheticExplainer:
    """POST /v1/messages: explains exactly the findings in the prompt's <errors>."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.url.path == "/v1/messages"
        prompt = json.loads(request.content)["messages"][0]["content"]
        match = _ERRORS.search(prompt)
        errors = json.loads(match.group(1)) if match else []
        answer = {
            "summary": f"El documento tiene {len(errors)} observación(es).",
            "fixes": [
                {
                    "field": e["field"],
                    "code": e["rule_id"],
                    "explanation": e["message"],
                    "suggested_fix": e["suggested_fix"] or "revise el campo",
                }
                for e in errors
            ],
        }
        return httpx2.Response(200, json=synthetic_message(answer))


@pytest.fixture
def explainer() -> SyntheticExplainer:
    return SyntheticExplainer()


@pytest.fixture
def upstream(explainer: SyntheticExplainer) -> httpx2.MockTransport:
    return httpx2.MockTransport(explainer)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A slice of the validation dataset (blocked and clean documents), blessed locally."""
    real = Workspace()
    cases = load_cases(real.datasets, TASK)
    picked = cases[:14] + [c for c in cases if c.split == "hard"][:4]
    datasets = tmp_path / "datasets"
    write_cases(dataset_path(datasets, TASK), picked)
    prompts = tmp_path / "prompts"
    shutil.copytree(real.prompts, prompts)
    ws = real.under(tmp_path, datasets=datasets, prompts=prompts, reject_synthetic=False)
    task = tasks.get(TASK)
    baselines.bless(ws, task, run_local(task, ws, write=False).results, reason="test")
    return ws


Recorder = Callable[..., Any]

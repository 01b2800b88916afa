"""``dte-ai company create|add-key`` and ``dte-ai serve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from typer.testing import CliRunner

from ai_service.cli import app
from ai_service.main import create_app
from ai_service.settings import Settings
from dte_core.storage import create_engine_for
from tests.ai_service.conftest import SECRET_KEY

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DTE_AI_DATABASE_URL", db_url)
    monkeypatch.setenv("DTE_AI_SECRET_KEY", SECRET_KEY)
    return Settings()


def _works(settings: Settings, key: str) -> int:
    engine = create_engine_for(settings.database_url)
    try:
        with TestClient(create_app(settings, engine=engine)) as client:
            status: int = client.get("/v1/cafs", headers={"X-API-Key": key}).status_code
            return status
    finally:
        engine.dispose()


def test_create_prints_the_company_and_a_working_key_once(env: Settings) -> None:
    result = runner.invoke(app, ["company", "create", "--rut", "76.086.428-5", "--name", "Demo"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["rut"] == "76086428-5"
    assert out["api_key"].startswith("dtk_")
    assert "not shown again" in result.stderr
    assert _works(env, out["api_key"]) == 200

    added = runner.invoke(app, ["company", "add-key", out["company_id"]])
    assert added.exit_code == 0, added.output
    new_key = json.loads(added.stdout)["api_key"]
    assert new_key != out["api_key"]
    assert _works(env, new_key) == 200


def test_bad_input_exits_2_with_a_json_error(env: Settings) -> None:
    bad = runner.invoke(app, ["company", "create", "--rut", "76086428-4", "--name", "Demo"])
    assert bad.exit_code == 2
    assert json.loads(bad.stderr)["error"]["code"] == "invalid_rut"
    create = ["company", "create", "--rut", "76086428-5", "--name", "D"]
    assert runner.invoke(app, create).exit_code == 0
    dup = runner.invoke(app, create)
    assert dup.exit_code == 2
    assert json.loads(dup.stderr)["error"]["code"] == "company_exists"
    missing = runner.invoke(app, ["company", "add-key", "no-such-company"])
    assert missing.exit_code == 2
    assert json.loads(missing.stderr)["error"]["code"] == "company_not_found"


def test_embedded_default_generates_its_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["company", "create", "--rut", "76086428-5", "--name", "Demo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "secret.key").exists()
    assert (tmp_path / "data" / "dte-ai.db").exists()
    assert _works(Settings(), json.loads(result.stdout)["api_key"]) == 200


def test_serve_migrates_then_runs_the_factory(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    result = runner.invoke(app, ["serve", "--host", "127.0.0.1", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "OpenAPI docs: http://127.0.0.1:8123/docs" in result.stdout
    assert calls == [
        (
            ("ai_service.main:create_app",),
            {"factory": True, "host": "127.0.0.1", "port": 8123, "workers": 1},
        )
    ]
    engine = create_engine_for(env.database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"companies", "api_keys", "documents", "caf_ranges"} <= tables

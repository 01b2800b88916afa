"""``dte-ai index build|rebuild|delete|query|evaluate`` through the typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from embeddings.cli import app
from embeddings.encoder import SentenceTransformerEncoder

runner = CliRunner()


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_encoder: SentenceTransformerEncoder
) -> Path:
    # shared_encoder: the weights are already loaded, so each command reuses them.
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def jsonl(path: Path, rows: list[Any]) -> str:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return str(path)


def invoke(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


PROJECTS = [
    {"id": "P-AROMOS", "text": "Construcción edificio Los Aromos, Maipú", "metadata": {"n": 1}},
    {"id": "P-ERP", "text": "Implementación ERP Odoo para Distribuidora Sur"},
    {"id": "P-SOLAR", "text": "Paneles solares fotovoltaicos en Rancagua"},
]


def test_build_query_rebuild_delete(data_dir: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "projects.jsonl", PROJECTS)
    built = invoke("build", "--company", "co-1", "--input", source)
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout) == {
        "company_id": "co-1",
        "written": 3,
        "unchanged": 0,
        "count": 3,
    }
    assert (data_dir / "chroma").is_dir()
    assert (data_dir / "embedding-cache.sqlite3").is_file()

    again = json.loads(invoke("build", "--company", "co-1", "--input", source).stdout)
    assert (again["written"], again["unchanged"]) == (0, 3)

    found = invoke("query", "--company", "co-1", "hormigon losa edif. aromos maipu", "-k", "2")
    assert found.exit_code == 0, found.output
    payload = json.loads(found.stdout)
    assert payload["matches"][0]["id"] == "P-AROMOS"
    assert payload["matches"][0]["metadata"] == {"n": 1}
    assert payload["engine"].startswith("hybrid:")
    assert len(payload["matches"]) == 2

    other = json.loads(invoke("query", "--company", "co-2", "aromos").stdout)
    assert other["matches"] == []

    rebuilt = invoke("rebuild", "--company", "co-1", "--input", "-", stdin=json.dumps(PROJECTS[1]))
    assert json.loads(rebuilt.stdout)["count"] == 1

    deleted = invoke("delete", "--company", "co-1", "--id", "P-ERP", "--id", "nope")
    assert json.loads(deleted.stdout)["count"] == 0


def test_bad_lines_are_all_reported_with_exit_2(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(
        '{"id": "1", "text": "ok"}\n'
        "not json\n"
        '{"text": "no id"}\n'
        '{"id": "3", "text": "  "}\n'
        '["a list"]\n'
        '{"id": "5", "text": "x", "metadata": 7}\n'
    )
    result = invoke("build", "--company", "co-1", "--input", str(source))
    assert result.exit_code == 2
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "invalid_documents"
    assert [f["field"] for f in error["fields"]] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
    assert not (data_dir / "chroma").exists()  # input is checked before the index is opened


def test_bad_company_and_missing_file_exit_2(data_dir: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "p.jsonl", PROJECTS[:1])
    bad_company = invoke("build", "--company", " co-1", "--input", source)
    assert bad_company.exit_code == 2
    assert json.loads(bad_company.stderr)["error"]["code"] == "invalid_company_id"
    missing = invoke("build", "--company", "co-1", "--input", str(tmp_path / "missing.jsonl"))
    assert missing.exit_code == 2
    assert json.loads(missing.stderr)["error"]["code"] == "unreadable_input"


def test_unusable_model_exits_1(data_dir: Path, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "p.jsonl", PROJECTS[:1])
    result = invoke(
        "build", "--company", "co-1", "--input", source, "--model-path", str(tmp_path / "none")
    )
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["code"] == "embedding_model_unavailable"


def test_evaluate_prints_the_spanish_measurement(data_dir: Path) -> None:
    result = invoke("evaluate")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["chosen_weight_on_dev"] == report["default_embedding_weight"]
    full = report["full"]
    assert full["hybrid"]["top1"] >= max(full["embedding"]["top1"], full["lexical"]["top1"])
    assert full["hybrid"]["queries"] == 96

"""``dte-ai analyze`` and ``dte-ai ai ...`` on a generated company."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ai_service.cli import app
from ai_service.synth.dte_xml import to_dte_xml
from tests.ai_service.conftest import SECRET_KEY
from tests.ai_service.test_ai_api import _company

runner = CliRunner()


@pytest.fixture
def loaded(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DTE_AI_DATABASE_URL", db_url)
    monkeypatch.setenv("DTE_AI_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    body, _, rut = _company()
    assert (
        runner.invoke(app, ["company", "create", "--rut", rut, "--name", "Constructora"]).exit_code
        == 0
    )
    ctx = tmp_path / "context.json"
    ctx.write_text(json.dumps(body), encoding="utf-8")
    result = runner.invoke(app, ["context", "load", str(ctx), "--company", rut])
    assert result.exit_code == 0, result.output
    return rut


def test_analyze_writes_one_line_per_document_and_reports_bad_files(
    loaded: str, tmp_path: Path
) -> None:
    _, future, _ = _company()
    files = []
    for doc in future[:3]:
        path = tmp_path / f"DTE--{doc.invoice.emisor_rut}--33--{doc.invoice.folio}.xml"
        path.write_bytes(to_dte_xml(doc.invoice))
        files.append(str(path))
    as_json = tmp_path / "invoice.json"
    as_json.write_text(json.dumps({"invoice": future[3].invoice.model_dump(mode="json")}))
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<DTE><unclosed>")
    out = tmp_path / "results.jsonl"
    result = runner.invoke(
        app, ["analyze", *files, str(as_json), str(broken), "--company", loaded, "--out", str(out)]
    )
    assert result.exit_code == 2
    errors = json.loads(result.stderr)["errors"]
    assert [e["file"] for e in errors] == [str(broken)]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4
    for line in lines:
        assert {"classification", "project", "purchase_order", "anomalies"} <= set(line)


def test_single_use_cases(loaded: str, tmp_path: Path) -> None:
    _, future, _ = _company()
    doc = next(d for d in future if d.label.decided)
    path = tmp_path / "one.xml"
    path.write_bytes(to_dte_xml(doc.invoice))
    for command in ("classify", "match", "reconcile", "anomalies"):
        result = runner.invoke(app, ["ai", command, str(path), "--company", loaded])
        assert result.exit_code == 0, (command, result.output)
        assert json.loads(result.stdout)
    classified = json.loads(
        runner.invoke(app, ["ai", "classify", str(path), "--company", loaded]).stdout
    )
    assert classified["invoice"]["decision"] == doc.label.account_code
    chat = runner.invoke(app, ["ai", "chat", "¿Cuál es la tasa del IVA?", "--company", loaded])
    assert json.loads(chat.stdout)["citations"][0]["id"] == "sii:iva#1"
    unknown = runner.invoke(app, ["ai", "classify", str(path), "--company", "11111111-1"])
    assert unknown.exit_code == 2

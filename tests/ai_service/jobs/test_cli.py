"""``dte-ai classify FOLDER_OR_ZIP --company RUT --out FILE``: ingests, runs the job in-process,
writes JSONL or CSV; bad input exits 2 with a JSON error."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from ai_service.cli import classify
from ai_service.repositories import context as context_repo
from ai_service.repositories.companies import create_company
from ai_service.secrets import SecretBox
from tests.ai_service.conftest import SECRET_KEY
from tests.ai_service.jobs.conftest import CONTEXT_SECTIONS, Company, make_zip

runner = CliRunner()
app = typer.Typer()
app.command("classify")(classify.classify)
app.add_typer(classify.jobs_app, name="jobs")


@pytest.fixture
def company(
    migrated_engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    construction: Company,
) -> Company:
    monkeypatch.setenv("DTE_AI_DATABASE_URL", db_url)
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DTE_AI_SECRET_KEY", SECRET_KEY)
    box = SecretBox(SECRET_KEY.encode())
    created, _ = create_company(migrated_engine, box, rut=construction.rut, name=construction.name)
    batches = [
        (kind, context_repo.validate_items(kind, construction.context_body[name], name))
        for name in CONTEXT_SECTIONS
        if (kind := context_repo.BY_FIELD[name])
    ]
    context_repo.upsert(migrated_engine, created.id, batches)
    create_company(migrated_engine, box, rut="76354771-K", name="Sin Contexto SpA")
    return construction


def test_a_folder_is_classified_into_jsonl(company: Company, tmp_path: Path) -> None:
    folder = tmp_path / "recibidos"
    (folder / "marzo").mkdir(parents=True)
    files = company.files(9)
    for name, data in files[:5]:
        (folder / name).write_bytes(data)
    for name, data in files[5:]:
        (folder / "marzo" / name).write_bytes(data)
    (folder / ".parcial.xml").write_bytes(b"<DTE")  # a partial download: ignored
    (folder / "notas.txt").write_text("no es un DTE")
    (folder / "roto.xml").write_bytes(b"<DTE>")
    out = tmp_path / "results.jsonl"
    result = runner.invoke(
        app, ["classify", str(folder), "--company", company.rut, "--out", str(out)]
    )
    assert result.exit_code == 1, result.output  # one document failed
    summary = json.loads(result.stdout)
    assert (summary["total"], summary["done"], summary["failed"]) == (10, 9, 1)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 10
    by_name = {line["filename"]: line for line in lines}
    assert by_name["roto.xml"]["error"]["code"] == "unreadable_xml"
    assert by_name["marzo/" + files[5][0]]["state"] == "done"
    truth = {d.invoice.key: d.label.account_code for d in company.documents}
    done = [line for line in lines if line["state"] == "done"]
    assert {line["result"]["invoice_key"] for line in done} == {
        f"{d.invoice.key}" for d in company.documents[:9]
    }
    right = sum(
        line["result"]["invoice"]["candidates"][0]["value"] == truth[line["result"]["invoice_key"]]
        for line in done
    )
    assert right >= 6
    assert "classifying" in result.stderr  # the progress bar


def test_a_zip_is_classified_into_csv(company: Company, tmp_path: Path) -> None:
    path = tmp_path / "lote.zip"
    path.write_bytes(make_zip(company.files(4)))
    out = tmp_path / "results.csv"
    result = runner.invoke(
        app, ["classify", str(path), "--company", company.rut, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["state"] for r in rows] == ["done"] * 4
    assert all(r["account"] or r["needs_review"] == "true" for r in rows)


@pytest.mark.parametrize(
    ("setup", "company_arg", "code"),
    [
        ("missing", None, "not_found"),
        ("empty_dir", None, "no_xml_files"),
        ("traversal_zip", None, "zip_path_traversal"),
        ("bomb_zip", None, "zip_bomb"),
        ("text_file", None, "unsupported_input"),
        ("ok_dir", "99999999-9", "unknown_company"),
        ("ok_dir", "76354771-K", "no_context"),
    ],
)
def test_bad_input_exits_2_with_a_json_error(
    company: Company, tmp_path: Path, setup: str, company_arg: str | None, code: str
) -> None:
    path = tmp_path / "input"
    if setup == "empty_dir":
        path.mkdir()
    elif setup == "traversal_zip":
        path.write_bytes(make_zip([("../fuera.xml", b"<DTE/>")]))
    elif setup == "bomb_zip":
        path.write_bytes(make_zip([("a.xml", b"\0" * (30 * 1024 * 1024))]))
    elif setup == "text_file":
        path.write_text("hola")
    elif setup == "ok_dir":
        path.mkdir()
        name, data = company.files(1)[0]
        (path / name).write_bytes(data)
    out = tmp_path / "out.jsonl"
    args = ["classify", str(path), "--company", company_arg or company.rut, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stderr)["error"]["code"] == code
    assert not out.exists()


def test_an_unreadable_trusted_sii_key_exits_2(
    company: Company, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DTE_AI_TRUSTED_SII_KEYS", str(tmp_path / "no-such-key.pem"))
    folder = tmp_path / "recibidos"
    folder.mkdir()
    name, data = company.files(1)[0]
    (folder / name).write_bytes(data)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["classify", str(folder), "--company", company.rut, "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert json.loads(result.stderr)["error"]["code"] == "unreadable_sii_key"
    assert not out.exists()

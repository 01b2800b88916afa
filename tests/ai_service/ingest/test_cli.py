"""`dte-ai dte verify` reproduces every README outcome; `dte-ai received ingest|watch|fetch-imap`
store, verify and answer with the documented exit codes."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ai_service.cli import app as dte_ai
from ai_service.cli import received
from ai_service.ingest.folder import FAILED, PROCESSED
from tests.ai_service.ingest.imap_server import ImapTestServer, Mailbox
from tests.issuing_kit import RECEPTOR

runner = CliRunner()

VALID = [
    "official/F60T33-ejemplo-oficial-SII.xml",
    "sii-dte/DTE--60910000-1--33--2336600.xml",
    "sii-dte/DTE--60910000-1--33--2336600--cleaned.xml",
    "sii-dte/DTE--76354771-K--33--170.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned.xml",
    "sii-dte/DTE--76399752-9--33--25568.xml",
    "sii-dte/DTE--76399752-9--33--25568--cleaned.xml",
    "sii-dte/DTE--96670340-7--61--110616--cleaned.xml",
]
INVALID = [
    "sii-dte/DTE--96670340-7--61--110616.xml",  # authentic, schema-invalid (DocPersonalizado)
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-bad-cert-no-base64.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-bad-cert.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml",
    "sii-dte/DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml",
]
ATTACKS = [
    "xml-attacks/billion-laughs-1.xml",
    "xml-attacks/billion-laughs-2.xml",
    "xml-attacks/external-entity-expansion-remote.xml",
    "xml-attacks/quadratic-blowup-entity-expansion.xml",
]
CONTEXT = {
    "official/F60T33-ejemplo-oficial-SII.xml": "without_sii_namespace",
    "sii-dte/DTE--60910000-1--33--2336600.xml": "in_place",
    "sii-dte/DTE--60910000-1--33--2336600--cleaned.xml": "without_sii_namespace",
    "sii-dte/DTE--76354771-K--33--170.xml": "namespace_restored",
    "sii-dte/DTE--76354771-K--33--170--cleaned.xml": "in_place",
    "sii-dte/DTE--76399752-9--33--25568.xml": "namespace_restored",
    "sii-dte/DTE--76399752-9--33--25568--cleaned.xml": "in_place",
    "sii-dte/DTE--96670340-7--61--110616--cleaned.xml": "without_sii_namespace",
    "sii-dte/DTE--96670340-7--61--110616.xml": "in_place",
}


def _verify(shared_sii: Path, rel: str) -> Any:
    return runner.invoke(dte_ai, ["dte", "verify", str(shared_sii / "samples" / rel)])


@pytest.mark.parametrize("rel", VALID)
def test_verify_accepts_every_authentic_schema_valid_sample(shared_sii: Path, rel: str) -> None:
    result = _verify(shared_sii, rel)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"]
    (doc,) = report["documents"]
    assert doc["authentic"] and doc["signature"]["detail"]["context"] == CONTEXT[rel]


@pytest.mark.parametrize("rel", INVALID)
def test_verify_rejects_invalid_samples_with_exit_1(shared_sii: Path, rel: str) -> None:
    result = _verify(shared_sii, rel)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (doc,) = report["documents"]
    if rel in CONTEXT:  # the DocPersonalizado download: authentic, only the schema fails
        assert doc["authentic"] and not doc["xsd"]["valid"]
        assert doc["signature"]["detail"]["context"] == CONTEXT[rel]
    else:
        assert not doc["valid"]


@pytest.mark.parametrize("rel", ATTACKS)
def test_verify_refuses_attacks_with_exit_2(shared_sii: Path, rel: str) -> None:
    result = _verify(shared_sii, rel)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "hostile_xml"


# --- dte-ai received ------------------------------------------------------------------------


@pytest.fixture
def company(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from ai_service.db.session import engine_for, migrate
    from ai_service.repositories.companies import create_company
    from ai_service.secrets import SecretBox
    from ai_service.settings import Settings

    monkeypatch.setenv("DTE_AI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    migrate(settings)
    engine = engine_for(settings)
    try:
        box = SecretBox(settings.secret_key_bytes())
        return create_company(engine, box, rut=RECEPTOR, name="Receptora")[0].id
    finally:
        engine.dispose()


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_ingest_exit_codes_and_idempotence(company: str, shared_sii: Path) -> None:
    samples = shared_sii / "samples"
    good = samples / "sii-dte" / "DTE--76354771-K--33--170.xml"
    result = runner.invoke(received.app, ["ingest", str(good), "--company", company])
    assert result.exit_code == 0, result.output
    (line,) = _lines(result.stdout)
    assert line["file"]["status"] == "processed" and line["documents"][0]["outcome"] == "new"
    again = runner.invoke(received.app, ["ingest", str(good), "--company", RECEPTOR])  # by RUT
    assert again.exit_code == 0
    (line2,) = _lines(again.stdout)
    assert not line2["file_created"] and line2["file"]["id"] == line["file"]["id"]
    forged = samples / "sii-dte" / "DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"
    assert runner.invoke(received.app, ["ingest", str(forged), "--company", company]).exit_code == 1
    attack = samples / "xml-attacks" / "billion-laughs-1.xml"
    refused = runner.invoke(received.app, ["ingest", str(attack), "--company", company])
    assert refused.exit_code == 2
    assert _lines(refused.stdout)[0]["error"]["code"] == "hostile_xml"


def test_ingest_unknown_company(company: str, shared_sii: Path) -> None:
    result = runner.invoke(received.app, ["ingest", "x.xml", "--company", "nobody"])
    assert result.exit_code == 2 and "unknown_company" in result.stderr


def test_watch_once_moves_files(company: str, shared_sii: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = (shared_sii / "samples" / "sii-dte" / "DTE--60910000-1--33--2336600.xml").read_bytes()
    (inbox / "factura.xml").write_bytes(good)
    (inbox / "roto.xml").write_bytes(b"<DTE>")
    args = ["watch", str(inbox), "--company", company, "--once", "--settle", "0"]
    result = runner.invoke(received.app, args)
    assert result.exit_code == 2, result.output  # one file was refused
    assert (inbox / PROCESSED / "factura.xml").read_bytes() == good
    assert (inbox / FAILED / "roto.xml").exists()
    assert (inbox / FAILED / "roto.xml.error.json").exists()
    assert sorted(p.name for p in inbox.iterdir()) == [FAILED, PROCESSED]


def test_fetch_imap(company: str, shared_sii: Path, tmp_path: Path) -> None:
    mailbox = Mailbox(user="dte", password="secreto")
    message = EmailMessage()
    message["Subject"] = "DTE"
    message.set_content("adjunto")
    xml = (shared_sii / "samples" / "sii-dte" / "DTE--76399752-9--33--25568.xml").read_bytes()
    message.add_attachment(xml, maintype="application", subtype="xml", filename="dte.xml")
    uid = mailbox.add(message.as_bytes())
    password_file = tmp_path / "imap-password"
    password_file.write_text("secreto\n")
    with ImapTestServer(mailbox) as server:
        result = runner.invoke(
            received.app,
            [
                "fetch-imap",
                "--company",
                company,
                "--host",
                "127.0.0.1",
                "--port",
                str(server.port),
                "--user",
                "dte",
                "--password-file",
                str(password_file),
                "--security",
                "plain",
            ],
        )
    assert result.exit_code == 0, result.output
    (line,) = _lines(result.stdout)
    assert line["uid"] == uid and line["attachment"] == "dte.xml"
    assert line["documents"][0]["authentic"] and mailbox.seen(uid)

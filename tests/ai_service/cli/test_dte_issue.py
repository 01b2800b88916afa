"""The `dte-ai dte issue` contract, checked end to end with an independent toolchain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from lxml import etree
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ai_service.cli import app
from tests.ai_service.cli.independent import check_ted, xmllint_valid, xmlsec1_verify
from tests.issuing_kit import PASSWORD, company_p12, envio_request, factura, make_kit, write_json

SII = "{http://www.sii.cl/SiiDte}"
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'dte.db'}"
    monkeypatch.setenv("DTE_AI_DATABASE_URL", url)
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path / "data"))
    return {"DTE_AI_DATABASE_URL": url}


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture(scope="module")
def cert_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, cert, _ = pkcs12.load_key_and_certificates(company_p12(), PASSWORD)
    path = tmp_path_factory.mktemp("pem") / "cert.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def _allocated(url: str) -> list[tuple[int, int, str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tipo_dte, folio, status FROM folio_allocations ORDER BY tipo_dte, folio")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_issue_writes_an_envio_that_an_independent_toolchain_accepts(
    tmp_path: Path,
    env: dict[str, str],
    kit,
    cert_pem: Path,
    shared_sii: Path,  # type: ignore[no-untyped-def]
) -> None:
    types = (33, 34, 46, 52, 56, 61)
    request = write_json(tmp_path / "in.json", envio_request(*(factura(t) for t in types)))
    out = tmp_path / "ENVIO.xml"
    result = runner.invoke(app, kit.issue_args(request, out, types))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [d["folio"] for d in summary["documents"]] == [1] * len(types)

    data = out.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "Ñandú".encode("iso-8859-1") in data

    ok, err = xmllint_valid(out, shared_sii / "schemas/dte/EnvioDTE_v10.xsd")
    assert ok, err
    root = etree.parse(str(out)).getroot()
    documentos = root.findall(f"{SII}SetDTE/{SII}DTE/{SII}Documento")
    assert len(documentos) == len(types)
    for documento in documentos:
        assert check_ted(documento, kit.trust_key.read_bytes()) == []
    signatures = len(types) + 1
    for index in range(1, signatures + 1):
        ok, err = xmlsec1_verify(out, cert_pem, index)
        assert ok, f"signature {index}: {err}"
    subtot = {
        int(s.findtext(f"{SII}TpoDTE")): int(s.findtext(f"{SII}NroDTE"))
        for s in root.iter(f"{SII}SubTotDTE")
    }
    assert subtot == dict.fromkeys(types, 1)
    assert _allocated(env["DTE_AI_DATABASE_URL"]) == [(t, 1, "issued") for t in types]


def test_tampering_is_caught_by_the_independent_toolchain(
    tmp_path: Path,
    env: dict[str, str],
    kit,
    cert_pem: Path,  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "ENVIO.xml"
    request = write_json(tmp_path / "in.json", envio_request(factura(33)))
    assert runner.invoke(app, kit.issue_args(request, out, (33,))).exit_code == 0
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(out.read_bytes().replace(b"<MntTotal>119000<", b"<MntTotal>119001<"))
    assert xmlsec1_verify(tampered, cert_pem, 1)[0] is False
    documento = etree.parse(str(tampered)).getroot().find(f"{SII}SetDTE/{SII}DTE/{SII}Documento")
    assert any("MNT" in p for p in check_ted(documento, kit.trust_key.read_bytes()))


def test_boletas_travel_in_an_envio_boleta(
    tmp_path: Path,
    env: dict[str, str],
    kit,
    cert_pem: Path,
    shared_sii: Path,  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "BOLETAS.xml"
    request = write_json(tmp_path / "in.json", envio_request(factura(39), factura(39), factura(41)))
    result = runner.invoke(app, kit.issue_args(request, out, (39, 41)))
    assert result.exit_code == 0, result.output
    ok, err = xmllint_valid(out, shared_sii / "schemas/boleta/EnvioBOLETA_v11.xsd")
    assert ok, err
    root = etree.parse(str(out)).getroot()
    assert etree.QName(root).localname == "EnvioBOLETA"
    for index in range(1, 5):
        assert xmlsec1_verify(out, cert_pem, index)[0]
    assert [d["folio"] for d in json.loads(result.stdout)["documents"]] == [1, 2, 1]


def test_invalid_input_exits_2_naming_every_field_and_allocates_nothing(
    tmp_path: Path,
    env: dict[str, str],
    kit,  # type: ignore[no-untyped-def]
) -> None:
    bad = factura(33)
    bad["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    bad["Detalle"][1]["QtyItem"] = "muchos"
    second = factura(61)
    del second["Referencia"]
    request = write_json(tmp_path / "in.json", envio_request(factura(33), bad, second))
    out = tmp_path / "ENVIO.xml"
    result = runner.invoke(app, kit.issue_args(request, out, (33, 61)))
    assert result.exit_code == 2
    error = json.loads(result.stderr)["error"]
    fields = {f["field"] for f in error["fields"]}
    assert "Documentos[1].Encabezado.Receptor.RUTRecep" in fields
    assert "Documentos[1].Detalle[1].QtyItem" in fields
    assert any(f.startswith("Documentos[2].Referencia") for f in fields)
    assert not out.exists()
    assert _allocated(env["DTE_AI_DATABASE_URL"]) == []

    good = write_json(tmp_path / "good.json", envio_request(factura(33)))
    assert runner.invoke(app, kit.issue_args(good, out, (33,))).exit_code == 0
    assert _allocated(env["DTE_AI_DATABASE_URL"]) == [(33, 1, "issued")]


def test_inconsistent_given_totals_are_reported_field_by_field(
    tmp_path: Path,
    env: dict[str, str],
    kit,  # type: ignore[no-untyped-def]
) -> None:
    doc = factura(33)
    doc["Encabezado"]["Totales"] = {
        "MntNeto": 100000,
        "TasaIVA": 19,
        "IVA": 19001,
        "MntTotal": 119000,
    }
    request = write_json(tmp_path / "in.json", envio_request(doc))
    result = runner.invoke(app, kit.issue_args(request, tmp_path / "o.xml", (33,)))
    assert result.exit_code == 2
    fields = {f["field"] for f in json.loads(result.stderr)["error"]["fields"]}
    assert "Documentos[0].Encabezado.Totales.IVA" in fields
    assert "Documentos[0].Encabezado.Totales.MntNeto" not in fields


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"{not json", "invalid_json"), (b"[1, 2]", "invalid_json")],
)
def test_unreadable_input_exits_2(
    tmp_path: Path,
    env: dict[str, str],
    kit,
    content: bytes,  # type: ignore[no-untyped-def]
    code: str,
) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(content)
    result = runner.invoke(app, kit.issue_args(path, tmp_path / "o.xml", (33,)))
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["code"] == code


def test_wrong_certificate_password_exits_2(tmp_path: Path, env: dict[str, str], kit) -> None:  # type: ignore[no-untyped-def]
    kit_pw = tmp_path / "pw.txt"
    kit_pw.write_text("wrong")
    args = kit.issue_args(
        write_json(tmp_path / "in.json", envio_request(factura(33))), tmp_path / "o.xml", (33,)
    )
    args[args.index("--cert-password-file") + 1] = str(kit_pw)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["code"] == "invalid_certificate"


def test_untrusted_caf_is_refused_before_any_folio(
    tmp_path: Path, env: dict[str, str], kit
) -> None:  # type: ignore[no-untyped-def]
    args = kit.issue_args(
        write_json(tmp_path / "in.json", envio_request(factura(33))), tmp_path / "o.xml", (33,)
    )
    i = args.index("--trust-sii-key")
    del args[i : i + 2]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["code"] == "caf_signature_invalid"


def test_folios_continue_across_runs_and_run_out_cleanly(
    tmp_path: Path, env: dict[str, str]
) -> None:
    small = make_kit(tmp_path / "small", hasta=3)
    out = tmp_path / "o.xml"
    two = write_json(tmp_path / "two.json", envio_request(factura(33), factura(33)))
    first = runner.invoke(app, small.issue_args(two, out, (33,)))
    assert [d["folio"] for d in json.loads(first.stdout)["documents"]] == [1, 2]
    second = runner.invoke(app, small.issue_args(two, out, (33,)))
    assert second.exit_code == 2
    assert json.loads(second.stderr)["error"]["code"] == "folios_exhausted"
    assert _allocated(env["DTE_AI_DATABASE_URL"]) == [(33, 1, "issued"), (33, 2, "issued")]


def test_console_script_runs_as_installed(tmp_path: Path, env: dict[str, str], kit) -> None:  # type: ignore[no-untyped-def]
    request = write_json(tmp_path / "in.json", envio_request(factura(33)))
    out = tmp_path / "ENVIO.xml"
    exe = Path(sys.executable).with_name("dte-ai")
    proc = subprocess.run(
        [str(exe), *kit.issue_args(request, out, (33,))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    verify = subprocess.run(
        [str(exe), "dte", "verify", str(out), "--trust-sii-key", str(kit.trust_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout
    assert json.loads(verify.stdout)["valid"] is True

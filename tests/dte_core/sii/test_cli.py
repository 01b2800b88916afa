"""``dte-ai sii-sim`` (ai_service/cli/sii.py): its refusals; serving is covered by the bench."""

from __future__ import annotations

import socket
from pathlib import Path

import typer
from typer.testing import CliRunner

from ai_service.cli.sii import sii_sim

app = typer.Typer()
app.command("sii-sim")(sii_sim)
app.command("noop")(lambda: None)  # two commands: typer keeps "sii-sim" as a sub-command
runner = CliRunner()


def test_unreadable_trusted_key_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "key.pem"
    bad.write_bytes(b"not a key")
    result = runner.invoke(app, ["sii-sim", "--trust-sii-key", str(bad), "--port", "0"])
    assert result.exit_code == 2
    assert "--trust-sii-key" in result.output


def test_busy_port_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["sii-sim", "--port", str(port)])
    assert result.exit_code == 2
    assert "cannot listen" in result.output

"""``dte-ai sii-sim``: run the local SII simulator (DTEWS SOAP, DTEUpload, boleta REST, reclamos).

Point a client at it with ``SiiClient(cert, base_url="http://HOST:PORT")`` (boletas:
``BoletaClient(cert, base_url="http://HOST:PORT/recursos/v1")``). Exit code 2 for unreadable keys.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def sii_sim(
    host: Annotated[str, typer.Option("--host", help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 = any free port)")] = 8089,
    trust_sii_key: Annotated[
        list[Path] | None,
        typer.Option("--trust-sii-key", help="extra CAF-signing public key the simulator trusts"),
    ] = None,
    step_seconds: Annotated[
        float | None,
        typer.Option("--step-seconds", help="also advance envíos one stage per N seconds"),
    ] = None,
    token_ttl: Annotated[float, typer.Option("--token-ttl", help="token lifetime, s")] = 3600.0,
) -> None:
    from dte_core.caf import SiiKeyring
    from dte_core.errors import DteError
    from dte_core.sii.simstate import SimulatorConfig
    from dte_core.sii.simulator import SiiSimulator, SimulatorServer

    keyring = SiiKeyring.default()
    try:
        for key_path in trust_sii_key or []:
            keyring = keyring.with_trusted_key(key_path.read_bytes())
    except (OSError, DteError) as exc:
        typer.echo(f"error: --trust-sii-key: {exc}", err=True)
        raise typer.Exit(2) from exc
    config = SimulatorConfig(keyring=keyring, step_seconds=step_seconds, token_ttl=token_ttl)
    try:
        server = SimulatorServer(SiiSimulator(config), host=host, port=port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"SII simulator on {server.url} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop_listening()

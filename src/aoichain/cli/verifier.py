"""``aoichain verifier``: one validator or committee member as its own daemon."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from aoichain.cli._app import PasswordFileOpt, app, cli_errors, err_console, fail


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def verifier(
    key: Annotated[
        Path,
        typer.Option(
            "--key", help="This verifier's keystore (a committee member's or a validator's)."
        ),
    ],
    deployments: Annotated[
        Path, typer.Option("--deployments", help="The deployment's public deployments.json.")
    ],
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            help="Its own node of a chain, KEY=URL (repeatable); others: the file's URLs.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free one).")] = 0,
    password_file: PasswordFileOpt = None,
    ready: Annotated[
        Path | None,
        typer.Option("--ready", help="Write {label, address, url} here once listening."),
    ] = None,
) -> None:
    """Serve one verifier's signatures to relayers until Ctrl-C.

    Finds which verifier the key is in the deployment (committee-I or
    validator-CHAIN-I), reads the chains through its own nodes, and answers
    over HTTP with signatures it makes only after checking each claim on
    those nodes. Prints one JSON line {label, address, url} when it listens.
    """
    from aoichain.chain.daemon import start_verifier

    nodes: dict[str, str] = {}
    for item in node or []:
        chain, sep, url = item.partition("=")
        if not sep or not chain or not url:
            fail(f"--node takes KEY=URL (e.g. P=http://10.0.0.5:8545); got {item!r}")
        nodes[chain] = url
    with cli_errors():
        found, server = start_verifier(
            key, deployments, password_file=password_file, nodes=nodes, host=host, port=port
        )
    url = f"http://{host}:{server.server_address[1]}"
    shown = {"label": found.label, "address": found.address, "url": url}
    if ready is not None:
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(json.dumps(shown) + "\n")
        os.replace(tmp, ready)
    print(json.dumps(shown), flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        err_console.print(f"{found.label}: stopping")
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous)

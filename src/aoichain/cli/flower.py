"""``aoichain flower``: the files a federation on several machines needs.

``node-config`` writes a worker's SuperNode config, ``verifiers`` asks running
verifier daemons who they are and writes where they listen, ``app`` writes
the Flower app (and the resolved run config) the publisher runs with ``flwr
run``. The whole walk-through: ``docs/many-machines.md``.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from aoichain.cli._app import app, cli_errors, console, fail
from aoichain.cli.run import ConfigOpt, DataOpt, RoundsOpt, SeedOpt, WorkersOpt, _overrides

flower_app = typer.Typer(
    name="flower",
    help="Write the files of a Flower federation on several machines (node configs, the app).",
    no_args_is_help=True,
)
app.add_typer(flower_app)

DeploymentsOpt = Annotated[
    Path, typer.Option("--chains", help="The deployment's public deployments.json.")
]
PasswordOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Keystore password file on that machine (default: $AOICHAIN_KEY_PASSWORD).",
    ),
]


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            fail(f"{option} takes KEY=URL (e.g. M=http://10.0.0.2:8545); got {item!r}")
        out[key] = value
    return out


@flower_app.command("node-config")
def node_config(
    space: Annotated[str, typer.Option("--space", help="P (an IIoT node) or V (its twin).")],
    node: Annotated[int, typer.Option("--node", help="Which IIoT node (0-based).")],
    key: Annotated[Path, typer.Option("--key", help="The worker's keystore, on its machine.")],
    deployments: DeploymentsOpt,
    out: Annotated[Path, typer.Option("--out", help="The node config file to write.")],
    config: ConfigOpt = None,
    rounds: RoundsOpt = None,
    workers: WorkersOpt = None,
    data: DataOpt = None,
    seed: SeedOpt = None,
    chain_url: Annotated[
        list[str] | None,
        typer.Option("--node-url", help="Its own node of a chain, KEY=URL (M and its subchain)."),
    ] = None,
    password_file: PasswordOpt = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="A folder the worker may keep data in.")
    ] = None,
) -> None:
    """Write one worker's node config (give it to flower-supernode --node-config FILE).

    The worker's private facts (type, chosen item, phase, its node's stream
    and privacy policy) are drawn from the run config exactly as the
    in-process engine draws them, so a federation reproduces that run. Paths
    are as the worker's machine sees them.
    """
    from aoichain.chain.remote import read_deployment
    from aoichain.flower.settings import worker_settings, write_node_config
    from aoichain.workflow import load_run_config, prepare

    nodes = _pairs(chain_url, "--node-url")
    with cli_errors():
        cfg = load_run_config(config, _overrides(rounds, workers, None, data, None, seed))
        settings = worker_settings(
            prepare(cfg),
            read_deployment(deployments),
            space,
            node,
            key=key,
            deployments=deployments,
            password_file=password_file,
            chains=nodes,
            cache=cache,
        )
        path = write_node_config(out, settings)
    console.print(f"worker {settings.label} (subchain {settings.subchain}) -> {path}")
    console.print(
        f"run it: flower-supernode --superlink HOST:PORT --node-config {path} "
        "--root-certificates CA.crt --auth-supernode-private-key KEY"
    )


@flower_app.command("verifiers")
def verifiers(
    urls: Annotated[list[str], typer.Argument(help="Each verifier daemon's URL.")],
    out: Annotated[Path, typer.Option("--out", help="The verifiers file to write.")],
) -> None:
    """Ask running verifier daemons who they are; write where each listens (public)."""
    from aoichain.chain.remote import write_verifiers

    entries = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/identity", timeout=10) as answer:
                shown = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            fail(f"no verifier answers at {url}: {exc}", 1)
        entries[str(shown["label"])] = (str(shown["address"]), url)
    path = write_verifiers(out, entries)
    console.print(f"{len(entries)} verifiers -> {path}")


@flower_app.command("app")
def flower_app_files(
    out: Annotated[Path, typer.Option("--out", help="Folder for app/ and run.toml.")],
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="The run folder the ServerApp writes.")
    ],
    deployments: DeploymentsOpt,
    publisher_key: Annotated[
        Path, typer.Option("--publisher-key", help="The publisher's keystore.")
    ],
    relayer_key: Annotated[Path, typer.Option("--relayer-key", help="The relayer's keystore.")],
    verifiers_file: Annotated[
        Path,
        typer.Option("--verifiers", help="Where the verifiers listen (aoichain flower verifiers)."),
    ],
    config: ConfigOpt = None,
    rounds: RoundsOpt = None,
    workers: WorkersOpt = None,
    data: DataOpt = None,
    seed: SeedOpt = None,
    password_file: PasswordOpt = None,
) -> None:
    """Write the Flower app the publisher runs (OUT/app) and its resolved run config.

    Every path is made absolute: they are read on this machine, by the
    ServerApp the SuperLink starts. Then: flwr run OUT/app CONNECTION --stream.
    """
    from aoichain.flower.federation import write_app_files
    from aoichain.workflow import load_run_config

    with cli_errors():
        cfg = load_run_config(config, _overrides(rounds, workers, None, data, None, seed))
        folder = write_app_files(
            out,
            cfg,
            run_dir=run_dir,
            deployments=deployments,
            publisher_key=publisher_key,
            relayer_key=relayer_key,
            verifiers=verifiers_file,
            password_file=password_file,
        )
    console.print(f"app -> {folder}; run it: flwr run {folder} CONNECTION --stream")

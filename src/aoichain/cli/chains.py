"""``aoichain chains up``: local anvil nodes with the contracts deployed, kept up until Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aoichain.cli._app import PasswordFileOpt, app, cli_errors, console, err_console, fail

chains_app = typer.Typer(
    name="chains",
    help="Run the ledger's four chains (M, R, P, V) as local anvil nodes.",
    no_args_is_help=True,
)
app.add_typer(chains_app)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@chains_app.command("up")
def up(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for deployments.json, keys/, state/ and the nodes' logs."
        ),
    ] = Path("chains"),
    committee_size: Annotated[
        int | None, typer.Option("--committee-size", help="Relay committee n [default: 5].")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", help="Committee signatures k [default: 3].")
    ] = None,
    validators: Annotated[
        int | None, typer.Option("--validators", help="Validators per chain [default: 3].")
    ] = None,
    validator_threshold: Annotated[
        int | None,
        typer.Option(
            "--validator-threshold", help="Validator signatures per checkpoint [default: 2]."
        ),
    ] = None,
    physical: Annotated[
        int | None,
        typer.Option("--physical-subchains", help="Subchains of the physical space [default: 1]."),
    ] = None,
    virtual: Annotated[
        int | None,
        typer.Option("--virtual-subchains", help="Subchains of the virtual space [default: 1]."),
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="Keystore password file (default: $AOICHAIN_KEY_PASSWORD; empty: loopback only).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deployments file path and URLs as JSON.")
    ] = False,
) -> None:
    """Start anvil nodes (M, R, the subchains), deploy the contracts, keep them up until Ctrl-C.

    Writes OUT/deployments.json (public: chain ids, URLs, addresses, the
    committee and validators), OUT/keys/ (one keystore per party: deployer,
    relayer, committee members, validators; mode 0600) and OUT/state/ (each
    chain's state, saved within a second of every block). A node that dies
    is restarted from its state on its URL (one line on stderr). Run again
    on the same OUT, it brings every chain back as it was. Runs attach with
    ``aoichain run --chains OUT/deployments.json``.
    """
    from aoichain.chain import ChainConfig
    from aoichain.chain.local import up as start_up
    from aoichain.chain.nodes import Supervisor

    with cli_errors():
        given: dict[str, Any] = {
            "committee_size": committee_size,
            "threshold": threshold,
            "subchain_validators": validators,
            "subchain_threshold": validator_threshold,
        }
        if physical is not None or virtual is not None:
            given["subchains"] = {
                "P": 1 if physical is None else physical,
                "V": 1 if virtual is None else virtual,
            }
        cfg = ChainConfig(
            backend="anvil",
            password_file=password_file,
            **{k: v for k, v in given.items() if v is not None},
        )
        # Ctrl-C and SIGTERM both end the command cleanly, even when a parent
        # shell started it with SIGINT ignored (background jobs).
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            network, resumed = start_up(cfg, out)
            try:
                _show(network.deployment.chains, out, resumed, as_json)
                supervisor = Supervisor(
                    network.nodes,
                    lambda line: err_console.print(escape(line), highlight=False, soft_wrap=True),
                )
                while True:
                    supervisor.tick()
                    time.sleep(Supervisor.TICK_S)
            except KeyboardInterrupt:
                err_console.print("stopping the nodes (saving their state)")
            finally:
                network.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _show(chains: Mapping[str, Any], out: Path, resumed: bool, as_json: bool) -> None:
    path = out / "deployments.json"
    if as_json:
        urls = {k: c.rpc_url for k, c in chains.items()}
        print(
            json.dumps({"deployments": str(path), "rpc_urls": urls, "resumed": resumed}), flush=True
        )
        return
    table = Table(title="aoichain chains")
    for column in ("chain", "name", "chain id", "RPC URL", "contract"):
        table.add_column(column)
    for key, c in chains.items():
        table.add_row(key, c.name, str(c.chain_id), str(c.rpc_url), c.contract)
    console.print(table)
    did = "brought back the chains of" if resumed else "wrote"
    console.print(
        f"{did} {path}, {out / 'keys'} and {out / 'state'}; press Ctrl-C to stop the nodes"
    )


@chains_app.command("deploy")
def deploy(
    rpc: Annotated[
        Path,
        typer.Option(
            "--rpc", help="A TOML/JSON file of running nodes: [chains.M] rpc_url = ..., R, P, V."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for deployments.json and keys/.")
    ] = Path("chains"),
    committee_size: Annotated[int, typer.Option("--committee-size", help="Relay committee n.")] = 5,
    threshold: Annotated[int, typer.Option("--threshold", help="Committee signatures k.")] = 3,
    validators: Annotated[int, typer.Option("--validators", help="Validators per chain.")] = 3,
    validator_threshold: Annotated[
        int, typer.Option("--validator-threshold", help="Validator signatures per checkpoint.")
    ] = 2,
    password_file: PasswordFileOpt = None,
) -> None:
    """Deploy the contracts on nodes that run elsewhere (reachable by URL) and return.

    Writes OUT/deployments.json (public, with the nodes' URLs as given) and
    OUT/keys/ (deployer, relayer, committee members, validators; mode 0600):
    what ``chains up`` writes, for nodes on other machines. Accounts are
    funded where the nodes allow it (anvil); elsewhere fund the listed
    addresses first.
    """
    from aoichain.chain import ChainConfig, Network

    with cli_errors():
        cfg = ChainConfig(
            backend="rpc",
            rpc_file=rpc,
            committee_size=committee_size,
            threshold=threshold,
            subchain_validators=validators,
            subchain_threshold=validator_threshold,
            password_file=password_file,
        )
        if (out / "keys").exists() and any((out / "keys").iterdir()):
            fail(f"{out / 'keys'} already holds keys; give another --out (keys are never replaced)")
        with Network.start(cfg, workers={}, keys_dir=out / "keys", for_run=False) as network:
            path = network.deployment.write(out / "deployments.json")
    console.print(f"wrote {path} and {out / 'keys'}")

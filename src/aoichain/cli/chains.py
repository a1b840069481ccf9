"""``aoichain chains up``: four local anvil nodes with the contracts deployed, until Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from aoichain.cli._app import PasswordFileOpt, app, cli_errors, console, err_console, fail

chains_app = typer.Typer(
    name="chains",
    help="Run the ledger's four chains (M, R, P, V) as local anvil nodes.",
    no_args_is_help=True,
)
app.add_typer(chains_app)


CommitteeSizeOpt = Annotated[int, typer.Option("--committee-size", help="Relay committee n.")]
ThresholdOpt = Annotated[int, typer.Option("--threshold", help="Committee signatures k.")]
ValidatorsOpt = Annotated[int, typer.Option("--validators", help="Validators per chain.")]
ValidatorThresholdOpt = Annotated[
    int, typer.Option("--validator-threshold", help="Validator signatures per checkpoint.")
]


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@chains_app.command("up")
def up(
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for deployments.json, keys/ and the nodes' logs."),
    ] = Path("chains"),
    committee_size: CommitteeSizeOpt = 5,
    threshold: ThresholdOpt = 3,
    validators: ValidatorsOpt = 3,
    validator_threshold: ValidatorThresholdOpt = 2,
    physical: Annotated[
        int, typer.Option("--physical-subchains", help="Subchains of the physical space.")
    ] = 1,
    virtual: Annotated[
        int, typer.Option("--virtual-subchains", help="Subchains of the virtual space.")
    ] = 1,
    password_file: PasswordFileOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deployments file path and URLs as JSON.")
    ] = False,
) -> None:
    """Start anvil nodes (M, R, the subchains), deploy the contracts, wait for Ctrl-C.

    Writes OUT/deployments.json (public: chain ids, URLs, addresses, the
    committee and validators) and OUT/keys/ (one keystore per party: deployer,
    relayer, committee members, validators; mode 0600). Runs attach with
    ``aoichain run --chains OUT/deployments.json``.
    """
    from aoichain.chain import ChainConfig, Network

    with cli_errors():
        cfg = ChainConfig(
            backend="anvil",
            committee_size=committee_size,
            threshold=threshold,
            subchain_validators=validators,
            subchain_threshold=validator_threshold,
            subchains={"P": physical, "V": virtual},
            password_file=password_file,
        )
        if (out / "keys").exists() and any((out / "keys").iterdir()):
            fail(f"{out / 'keys'} already holds keys; give another --out (keys are never replaced)")
        # Ctrl-C and SIGTERM both end the command cleanly, even when a parent
        # shell started it with SIGINT ignored (background jobs).
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        network = Network.start(
            cfg, workers={}, keys_dir=out / "keys", log_dir=out / "logs", for_run=False
        )
        try:
            path = network.deployment.write(out / "deployments.json")
            chains = network.deployment.chains
            if as_json:
                urls = {k: c.rpc_url for k, c in chains.items()}
                print(json.dumps({"deployments": str(path), "rpc_urls": urls}), flush=True)
            else:
                table = Table(title="aoichain chains")
                for column in ("chain", "name", "chain id", "RPC URL", "contract"):
                    table.add_column(column)
                for key, c in chains.items():
                    table.add_row(key, c.name, str(c.chain_id), str(c.rpc_url), c.contract)
                console.print(table)
                console.print(f"wrote {path} and {out / 'keys'}; press Ctrl-C to stop the nodes")
            while True:
                dead = network.dead_nodes()
                if dead:
                    fail(
                        f"the anvil node of chain(s) {', '.join(dead)} stopped; see {out / 'logs'}",
                        1,
                    )
                time.sleep(0.2)
        except KeyboardInterrupt:
            err_console.print("stopping the nodes")
        finally:
            network.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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
    committee_size: CommitteeSizeOpt = 5,
    threshold: ThresholdOpt = 3,
    validators: ValidatorsOpt = 3,
    validator_threshold: ValidatorThresholdOpt = 2,
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

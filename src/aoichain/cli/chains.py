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

from aoichain.cli._app import app, cli_errors, console, err_console, fail

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
        Path, typer.Option("--out", help="Folder for deployments.json and the nodes' logs.")
    ] = Path("chains"),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of every key (committee, validators).")
    ] = 0,
    committee_size: Annotated[int, typer.Option("--committee-size", help="Relay committee n.")] = 5,
    threshold: Annotated[int, typer.Option("--threshold", help="Committee signatures k.")] = 3,
    validators: Annotated[int, typer.Option("--validators", help="Validators per chain.")] = 3,
    validator_threshold: Annotated[
        int, typer.Option("--validator-threshold", help="Validator signatures per checkpoint.")
    ] = 2,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deployments file path and URLs as JSON.")
    ] = False,
) -> None:
    """Start four anvil nodes, deploy the contracts, write OUT/deployments.json, wait for Ctrl-C.

    Runs attach to these nodes with ``backend = "rpc"`` and
    ``rpc_file = "OUT/deployments.json"`` (same seed and committee sizes).
    """
    from aoichain.chain import Ledger, LedgerConfig
    from aoichain.chain.config import CHAIN_KEYS

    with cli_errors():
        cfg = LedgerConfig(
            backend="anvil",
            key_seed=seed,
            committee_size=committee_size,
            threshold=threshold,
            subchain_validators=validators,
            subchain_threshold=validator_threshold,
        )
        # Ctrl-C and SIGTERM both end the command cleanly, even when a parent
        # shell started it with SIGINT ignored (background jobs).
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        ledger = Ledger.start(cfg, n_workers={"P": 0, "V": 0}, log_dir=out / "logs")
        try:
            path = ledger.write_deployments(out / "deployments.json")
            deployments = ledger.deployments()
            if as_json:
                urls = {k: c["rpc_url"] for k, c in deployments["chains"].items()}
                print(json.dumps({"deployments": str(path), "rpc_urls": urls}), flush=True)
            else:
                table = Table(title="aoichain chains")
                for column in ("chain", "name", "chain id", "RPC URL", "contract"):
                    table.add_column(column)
                for key in CHAIN_KEYS:
                    c = deployments["chains"][key]
                    ((name, contract),) = c["contracts"].items()
                    table.add_row(
                        key,
                        c["name"],
                        str(c["chain_id"]),
                        c["rpc_url"],
                        f"{name} {contract['address']}",
                    )
                console.print(table)
                console.print(f"wrote {path}; press Ctrl-C to stop the nodes")
            while True:
                dead = ledger.dead_nodes()
                if dead:
                    fail(
                        f"the anvil node of chain(s) {', '.join(dead)} stopped; see {out / 'logs'}",
                        1,
                    )
                time.sleep(0.2)
        except KeyboardInterrupt:
            err_console.print("stopping the nodes")
        finally:
            ledger.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

"""``aoichain run`` and ``aoichain compare``: the federated task end to end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aoichain.cli._app import app, cli_errors, console, err_console

if TYPE_CHECKING:
    from aoichain.workflow import RoundMetrics, RunSummary

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="A TOML run config; every value has a default.")
]
RoundsOpt = Annotated[int | None, typer.Option("--rounds", help="Round limit.")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="IIoT nodes; each has a virtual twin (M = 2x).")
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="A folder of SKAB-format CSV streams (default: the generator)."),
]
ChainsOpt = Annotated[
    str | None,
    typer.Option(
        "--chains", help="embedded (default), anvil, or a deployments.json of running nodes."
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seeds types, data and training.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]


def _overrides(
    rounds: int | None,
    workers: int | None,
    scheme: str | None,
    data: Path | None,
    chains: str | None,
    seed: int | None,
) -> dict[str, Any]:
    over: dict[str, Any] = {}
    task: dict[str, Any] = {}
    if rounds is not None:
        task["rounds"] = rounds
    if scheme is not None:
        task["scheme"] = scheme
    if seed is not None:
        task["seed"] = seed
    if task:
        over["task"] = task
    if workers is not None:
        over["workers"] = {"physical": workers}
    if data is not None:
        over["data"] = {"source": "folder", "folder": str(data)}
    if chains is not None:
        if chains in ("embedded", "anvil"):
            over["chain"] = {"backend": chains}
        else:
            over["chain"] = {"backend": "rpc", "rpc_file": chains}
    return over


class _RoundProgress:
    """A rich progress bar with the latest round's accuracy, AoI and chain activity."""

    def __init__(self, total: int, label: str = "rounds", *, quiet_stdout: bool = False) -> None:
        # With --json, stdout holds the JSON alone: the progress goes to stderr.
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err_console if quiet_stdout else console,
            transient=False,
        )
        self.total = total
        self.task = self.progress.add_task(label, total=total, info="setting up")

    def status(self, message: str) -> None:
        self.progress.update(self.task, info=message)

    def round(self, row: RoundMetrics, prefix: str = "") -> None:
        info = (
            f"{prefix}acc {row.accuracy:.3f}  AoI {row.mean_aoi:.1f}s  "
            f"updates {row.accepted}/{row.accepted + row.rejected}  "
            f"tx {row.transactions}  gas {row.gas:,}"
        )
        self.progress.update(self.task, completed=row.round + 1, info=info)


def _summary_table(summary: RunSummary, title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    keys = [
        ("scheme", "{}"),
        ("rounds_run", "{}"),
        ("final_accuracy", "{:.4f}"),
        ("final_roc_auc", "{:.4f}"),
        ("mean_aoi_s", "{:.2f} s"),
        ("mean_latency_s", "{:.2f} s"),
        ("updates_accepted", "{}"),
        ("updates_rejected", "{}"),
        ("sp_utility_contract", "{:.2f}"),
        ("sp_utility_predicted_for_drawn_types", "{:.2f}"),
        ("sp_utility_measured", "{:.2f}"),
        ("paid_wei", "{:,}"),
        ("reclaimed_wei", "{:,}"),
        ("gas_total", "{:,}"),
    ]
    for key, fmt in keys:
        table.add_row(key.replace("_", " "), fmt.format(getattr(summary, key)))
    return table


@app.command()
def run(
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("results/run"),
    rounds: RoundsOpt = None,
    workers: WorkersOpt = None,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            help="Incentive scheme: CA, CC, CS, flat, or a plug-in 'package.module:name'.",
        ),
    ] = None,
    data: DataOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Finish the run in this folder from its journal (chains that outlive runs).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the federated task: publish, allocate, train, upload, relay, aggregate, pay."""
    from aoichain.errors import InvalidInput
    from aoichain.jsonio import dumps
    from aoichain.report.run_report import write_run_report
    from aoichain.workflow import load_run_config, resumable_config, resume_run, run_task

    with cli_errors():
        over = _overrides(rounds, workers, scheme, data, chains, seed)
        if resume is not None:
            if over or config is not None:
                raise InvalidInput("--resume takes the run's own config: give no other options")
            out = resume
            cfg = resumable_config(resume)
        else:
            cfg = load_run_config(config, over)
        bar = _RoundProgress(cfg.task.rounds, quiet_stdout=as_json)
        with bar.progress:
            if resume is not None:
                result = resume_run(resume, on_round=bar.round, on_status=bar.status)
            else:
                result = run_task(cfg, out, on_round=bar.round, on_status=bar.status)
            bar.status("writing the report")
            report = write_run_report(result)
    if as_json:
        console.print_json(dumps(result.summary.to_dict()))
        return
    console.print(_summary_table(result.summary, f"aoichain run ({result.summary.scheme})"))
    for check in result.summary.balance_checks:
        console.print(f"[green]✓[/] {check}")
    console.print(f"run folder: [bold]{out}[/]  report: [bold]{report}[/]")


@app.command()
def compare(
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Comparison folder.")] = Path(
        "results/compare"
    ),
    rounds: RoundsOpt = None,
    workers: WorkersOpt = None,
    data: DataOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run CA, CC, CS and flat on the same seed and data and write one comparison."""
    from aoichain.jsonio import dumps
    from aoichain.report.run_report import write_comparison_report
    from aoichain.workflow import BUILTIN_SCHEMES, compare_schemes, load_run_config

    with cli_errors():
        cfg = load_run_config(config, _overrides(rounds, workers, None, data, chains, seed))
        bar = _RoundProgress(
            cfg.task.rounds * len(BUILTIN_SCHEMES), "schemes x rounds", quiet_stdout=as_json
        )
        done: dict[str, int] = {}

        def on_round(scheme: str, row: RoundMetrics) -> None:
            done[scheme] = row.round + 1
            bar.progress.update(
                bar.task,
                completed=sum(done.values()),
                info=f"{scheme}: acc {row.accuracy:.3f} AoI {row.mean_aoi:.1f}s",
            )

        with bar.progress:
            rows, results = compare_schemes(cfg, out, on_round=on_round, on_status=bar.status)
            report = write_comparison_report(out, rows, results)
    if as_json:
        console.print_json(dumps(rows))
        return
    table = Table(title="aoichain compare")
    for col in ("scheme", "final accuracy", "mean AoI (s)", "SP utility", "paid (ETH)"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(
            str(row["scheme"]),
            f"{row['final_accuracy']:.4f}",
            f"{row['mean_aoi_s']:.2f}",
            f"{row['sp_utility_measured']:.1f}",
            f"{row['paid_wei'] / 10**18:.4f}",
        )
    console.print(table)
    console.print(f"comparison: [bold]{out}[/]  report: [bold]{report}[/]")


@app.command()
def recover(
    run_dir: Annotated[Path, typer.Argument(help="The folder of a run that stopped.")],
) -> None:
    """Settle a stopped run's task: close the round, finish, pay the earned, reclaim the rest."""
    from aoichain.workflow import recover_run

    with cli_errors(), console.status("recovering") as shown:
        lines = recover_run(run_dir, on_status=lambda msg: shown.update(msg))
    for line in lines or ["the run's publisher posted no task: no escrow to return"]:
        console.print(f"[green]✓[/] {line}")

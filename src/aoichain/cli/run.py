"""``aoichain run`` and ``aoichain compare``: the federated task end to end."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aoichain.cli._app import app, cli_errors, console, err_console

if TYPE_CHECKING:
    from aoichain.workflow import RoundMetrics, RunConfig, RunSummary


class Engine(StrEnum):
    """Where the parties of ``aoichain run`` run."""

    in_process = "in-process"
    flower = "flower"


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
            f"{prefix}acc {row.accuracy:.3f}  F1 {row.f1:.3f}  AoI {row.mean_aoi:.1f}s  "
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
        ("final_f1", "{:.4f}"),
        ("final_roc_auc", "{:.4f}"),
        ("final_pr_auc", "{:.4f}"),
        ("final_base_rate", "{:.4f}"),
        ("target_metric", "{}"),
        ("target_reached", "{}"),
        ("rounds_not_judged", "{}"),
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
            help=(
                "Finish the run in this folder from its journal (chains that outlive runs), "
                "on the engine it started on."
            ),
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help=(
                "in-process: every party in this process; flower: every party its own process "
                "(anvil chains, verifier daemons, a Flower SuperLink and a SuperNode per worker)."
            ),
        ),
    ] = Engine.in_process,
    reply_timeout: Annotated[
        float | None,
        typer.Option(
            "--reply-timeout",
            min=1.0,
            help=(
                "flower: longest wait, in seconds, for the workers' replies to one step; a "
                "worker silent that long misses the round (a SuperNode that died is noticed "
                "sooner, by Flower's heartbeats). Default 900."
            ),
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the federated task: publish, allocate, train, upload, relay, aggregate, pay."""
    from aoichain.errors import InvalidInput
    from aoichain.jsonio import dumps
    from aoichain.workflow import load_run_config, resumable_config
    from aoichain.workflow.journal import run_engine

    with cli_errors():
        over = _overrides(rounds, workers, scheme, data, chains, seed)
        if resume is not None:
            if over or config is not None:
                raise InvalidInput("--resume takes the run's own config: give no other options")
            out = resume
            cfg = resumable_config(resume)
            started_on = Engine(run_engine(resume))
            if engine is Engine.flower and started_on is not Engine.flower:
                raise InvalidInput(f"the run in {resume} started in process: resume it so")
            engine = started_on
        else:
            cfg = load_run_config(config, over)
        if reply_timeout is not None and engine is not Engine.flower:
            raise InvalidInput("--reply-timeout is for the flower engine (--engine flower)")
        bar = _RoundProgress(cfg.task.rounds, quiet_stdout=as_json)
        with bar.progress:
            if engine is Engine.flower:
                summary, report = _run_flower(
                    cfg, out, bar, resume is not None, reply_timeout or 900.0
                )
            else:
                summary, report = _run_in_process(cfg, out, bar, resume)
    if as_json:
        console.print_json(dumps(summary.to_dict()))
        return
    console.print(_summary_table(summary, f"aoichain run ({summary.scheme})"))
    for check in summary.balance_checks:
        console.print(f"[green]✓[/] {check}")
    console.print(f"run folder: [bold]{out}[/]  report: [bold]{report}[/]")


def _run_in_process(
    cfg: RunConfig, out: Path, bar: _RoundProgress, resume: Path | None
) -> tuple[RunSummary, Path]:
    from aoichain.report.run_report import write_run_report
    from aoichain.workflow import resume_run, run_task

    if resume is not None:
        result = resume_run(resume, on_round=bar.round, on_status=bar.status)
    else:
        result = run_task(cfg, out, on_round=bar.round, on_status=bar.status)
    bar.status("writing the report")
    return result.summary, write_run_report(result)


def _run_flower(
    cfg: RunConfig, out: Path, bar: _RoundProgress, resume: bool, reply_s: float
) -> tuple[RunSummary, Path]:
    from aoichain.flower.federation import run_federation
    from aoichain.workflow import RoundMetrics

    fields = set(RoundMetrics.__dataclass_fields__)

    def on_round(event: dict[str, Any]) -> None:
        bar.round(RoundMetrics(**{k: v for k, v in event.items() if k in fields}))

    result = run_federation(
        cfg, out, on_round=on_round, on_status=bar.status, resume=resume, reply_s=reply_s
    )
    return result.summary, out / "report.html"


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
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            min=1,
            help="Run each scheme on this many seeds (seed, seed + 1, ...) and report means "
            "with 95 % confidence intervals.",
        ),
    ] = 1,
    schemes: Annotated[
        str | None,
        typer.Option(
            "--schemes",
            help="Comma-separated schemes to compare (default CA,CC,CS,flat); "
            "'CA+learned' runs CA with the learned satisfaction.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run CA, CC, CS and flat on the same seed and data and write one comparison."""
    from aoichain.jsonio import dumps
    from aoichain.report.run_report import write_comparison_report
    from aoichain.workflow import BUILTIN_SCHEMES, compare_schemes, load_run_config

    variants = tuple(x.strip() for x in schemes.split(",") if x.strip()) if schemes else None
    if seeds > 1 or (variants and any(v.endswith("+learned") for v in variants)):
        _compare_seeds(config, out, rounds, workers, data, chains, seed, seeds, variants, as_json)
        return
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
            rows, results = compare_schemes(
                cfg, out, variants or BUILTIN_SCHEMES, on_round=on_round, on_status=bar.status
            )
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


def _compare_seeds(
    config: Path | None,
    out: Path,
    rounds: int | None,
    workers: int | None,
    data: Path | None,
    chains: str | None,
    seed: int | None,
    seeds: int,
    variants: tuple[str, ...] | None,
    as_json: bool,
) -> None:
    """``aoichain compare --seeds K``: every scheme on K seeds, means and 95 % intervals."""
    from aoichain.jsonio import dumps
    from aoichain.report.run_report import write_seeds_report
    from aoichain.workflow import BUILTIN_SCHEMES, compare_seeds, load_run_config
    from aoichain.workflow.compare import variant_config

    with cli_errors():
        cfg = load_run_config(config, _overrides(rounds, workers, None, data, chains, seed))
        chosen = variants or BUILTIN_SCHEMES
        for v in chosen:  # every variant's config is checked before the first run
            variant_config(cfg, v, cfg.task.seed)
        first = cfg.task.seed
        bar = _RoundProgress(len(chosen) * seeds, "runs", quiet_stdout=as_json)
        done = [0]

        def status(message: str) -> None:
            bar.progress.update(bar.task, completed=done[0], info=message)
            done[0] += 1

        with bar.progress:
            comparison = compare_seeds(
                cfg, out, chosen, list(range(first, first + seeds)), on_status=status
            )
            bar.progress.update(bar.task, completed=len(chosen) * seeds, info="report")
            report = write_seeds_report(out, comparison)
    if as_json:
        payload = {
            "intervals": comparison.intervals,
            "versus": comparison.versus,
            "warnings": comparison.warnings,
        }
        console.print_json(dumps(payload))
        return
    table = Table(title=f"aoichain compare over {seeds} seeds (mean [95 % CI])")
    shown = (
        "mean_accuracy",
        "mean_f1",
        "mean_roc_auc",
        "mean_aoi_s",
        "reward_paid",
        "accuracy_per_reward",
    )
    table.add_column("scheme")
    for q in shown:
        table.add_column(q.replace("_", " "), justify="right")
    for v in chosen:
        cells = {c["quantity"]: c for c in comparison.intervals if c["variant"] == v}
        table.add_row(
            v,
            *[
                f"{cells[q]['mean']:.4g} [{cells[q]['low']:.3g}, {cells[q]['high']:.3g}]"
                for q in shown
            ],
        )
    console.print(table)
    for warning in comparison.warnings:
        console.print(f"[yellow]not comparable:[/] {warning}")
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

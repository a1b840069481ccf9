"""``aoichain reproduce``: recompute Section V of the paper and judge its claims."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aoichain.cli._app import app, cli_errors, console, err_console
from aoichain.config import describe_validation_error
from aoichain.errors import InvalidInput

_STYLE = {"holds": "green", "partly": "yellow", "fails": "red", "not decidable": "magenta"}


@app.command()
def reproduce(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write figures, CSVs and reports into.")
    ] = Path("results/reproduce"),
    formulas: Annotated[
        str,
        typer.Option(
            "--formulas",
            help="Closed forms of AoI and latency: paper (eqs. 4-5 as printed), "
            "corrected, or both.",
        ),
    ] = "both",
    c_max: Annotated[
        float | None,
        typer.Option(
            "--c-max",
            help="Longest collection phase c in slots for the continuous figures (Table I: 15). "
            "Default: no bound; the report shows the verdicts under the other choice beside.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the claims and verdicts as JSON on stdout.")
    ] = False,
) -> None:
    """Reproduce the paper's Figs. 2-4, check its claims and the SPEC's errata.

    Writes PNG + CSV per figure, a simulated-vs-closed-form check, claims.json,
    REPORT.md and a self-contained report.html under --out.
    """
    from aoichain.report.reproduce import ReproduceConfig, claims_json
    from aoichain.report.reproduce import reproduce as run_reproduction

    with cli_errors():
        try:
            config = ReproduceConfig.model_validate({"formulas": formulas, "c_max": c_max})
        except ValidationError as err:
            raise InvalidInput(describe_validation_error(err, "aoichain reproduce")) from None
        with Progress(
            TextColumn("[bold]reproduce[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            transient=True,
        ) as progress:
            task = progress.add_task("solving", total=config.n_steps)

            def step(description: str) -> None:
                progress.update(task, advance=1, description=description)

            result = run_reproduction(config, out, on_step=step)

    if as_json:
        payload = claims_json(result.reproduction)
        payload["files"] = [str(p) for p in result.files]
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return

    sets = list(result.reproduction.runs)
    table = Table(title="Claims of Section V and errata of the SPEC", show_lines=False)
    table.add_column("claim")
    for forms in sets:
        table.add_column(f"{forms} forms")
    for claim in result.claims:
        cells = []
        for forms in sets:
            kind = claim.verdict_for(forms).kind
            cells.append(f"[{_STYLE[kind]}]{kind}[/]")
        table.add_row(claim.id, *cells)
    console.print(table)
    counts = {k: sum(c.kind == k for c in result.claims) for k in _STYLE}
    console.print(
        f"{counts['holds']} hold, {counts['partly']} partly, {counts['fails']} fail, "
        f"{counts['not decidable']} not decidable ({result.reproduction.label}; "
        f"{result.reproduction.seconds:.1f} s). Report: [bold]{out / 'report.html'}[/] "
        f"and {out / 'REPORT.md'}; {len(result.files)} files in {out}."
    )

"""``aoichain contract``: solve one contract (CA, CC or CS) and show or save its menu."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich import box
from rich.table import Table

from aoichain.cli._app import app, cli_errors, console
from aoichain.config import load_toml
from aoichain.errors import InvalidInput

if TYPE_CHECKING:
    from aoichain.incentive import Contract

_SHOWN_ROWS = 40
_CSV_COLUMNS = (
    "type",
    "gamma",
    "q",
    "alpha",
    "f",
    "theta",
    "c",
    "reward",
    "worker_utility",
    "aoi",
    "latency",
    "sp_utility",
)


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{flag} must be one of {', '.join(allowed)}. Got {value!r} instead.")
    return value


def market_values(config: Path | None) -> tuple[dict[str, Any], str | None]:
    """The ``[market]`` table of ``config`` (empty without a file) and its name for errors."""
    if config is None:
        return {}, None
    data = load_toml(config)
    table = data.get("market")
    if table is None:
        raise InvalidInput(f"Config file {str(config)!r} has no [market] table.")
    if not isinstance(table, dict):
        raise InvalidInput(f"In config file {str(config)!r}, 'market' must be a table.")
    return dict(table), f"{config} [market]"


def _check_out(out: Path) -> None:
    parent = out.resolve().parent
    if not parent.is_dir():
        raise InvalidInput(
            f"Cannot write --out {str(out)!r}: directory {str(parent)!r} does not exist."
        )
    if out.is_dir():
        raise InvalidInput(f"Cannot write --out {str(out)!r}: it is a directory.")


def write_items_csv(contract: Contract, out: Path) -> None:
    """Write the menu as CSV, atomically: the file appears whole or not at all."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.resolve().parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(_CSV_COLUMNS))
            writer.writeheader()
            for item in contract.items():
                writer.writerow({k: "" if item[k] is None else item[k] for k in _CSV_COLUMNS})
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def _render(contract: Contract) -> None:
    import numpy as np

    m = contract.market
    uniform_q = bool(np.all(contract.q == contract.q[0]))
    uniform_alpha = not isinstance(m.alpha, tuple)
    title = (
        f"{contract.scheme} contract ({contract.method}, {m.formulas} forms): "
        f"N={contract.n_types}, M={m.workers}, t={m.t:g} s, a={m.a:g}"
        + (f", Q={contract.q[0]:.4g} each" if uniform_q else "")
        + (f", alpha={m.alpha:g}" if uniform_alpha else "")
    )
    table = Table(
        title=title,
        caption="c in slots, f in Hz, AoI and latency in s; U = R - f/gamma; share = M Q (G - R)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns: list[tuple[str, np.ndarray, int]] = [("gamma", contract.gamma, 4)]
    if not uniform_q:
        columns.append(("Q", contract.q, 4))
    if not uniform_alpha:
        columns.append(("alpha", contract.alpha, 3))
    columns += [
        ("c", contract.c, 4),
        ("f", contract.f, 4),
        ("R", contract.reward, 5),
        ("U", contract.worker_utility, 4),
        ("AoI", contract.aoi, 4),
        ("latency", contract.latency, 4),
        ("SP share", contract.sp_utility, 5),
    ]
    table.add_column("n", justify="right", no_wrap=True)
    for name, _, _ in columns:
        table.add_column(name, justify="right", no_wrap=True)
    n = contract.n_types
    rows = list(range(n))
    if n > _SHOWN_ROWS:
        half = _SHOWN_ROWS // 2
        rows = [*range(half), -1, *range(n - half, n)]
    for i in rows:
        if i < 0:
            table.add_row(*(["..."] * (len(columns) + 1)))
            continue
        table.add_row(str(i + 1), *(_fmt(float(col[i]), d) for _, col, d in columns))
    console.print(table)
    if n > _SHOWN_ROWS:
        console.print(f"({n - _SHOWN_ROWS} rows not shown; use --json or --out for all)")
    feas = contract.feasibility
    console.print(
        f"SP utility [bold]{contract.sp_utility_total:.6g}[/]   "
        f"workers' utility [bold]{contract.workers_utility:.6g}[/]   "
        f"social welfare [bold]{contract.social_welfare:.6g}[/]"
    )
    ic = "[green]IC[/]" if feas.ic else "[red]not IC[/]"
    ir = "[green]IR[/]" if feas.ir else "[red]not IR[/]"
    console.print(
        f"{ic} (largest gain from another type's item {feas.max_ic_violation:.3g}), "
        f"{ir} (smallest own utility {feas.min_worker_utility:.3g})"
    )
    if contract.message:
        style = "" if contract.converged else "[bold red]"
        console.print(f"{style}{contract.message}")


@app.command()
def contract(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file with a [market] table (keys as in Market)."),
    ] = None,
    scheme: Annotated[
        str, typer.Option("--scheme", help="CA (asymmetric info), CC (complete), CS (social).")
    ] = "CA",
    method: Annotated[
        str, typer.Option("--method", help="exact, algorithm1 (the paper's grid) or integer.")
    ] = "exact",
    formulas: Annotated[
        str | None,
        typer.Option("--formulas", help="AoI/latency closed forms: paper or corrected."),
    ] = None,
    phi: Annotated[
        float | None, typer.Option("--phi", help="Grid step of algorithm1 in Hz (default 1e-6).")
    ] = None,
    a: Annotated[float | None, typer.Option("--a", help="Slots of the serving phase.")] = None,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="AoI preference in [0, 1] (all types).")
    ] = None,
    types: Annotated[
        int | None,
        typer.Option("--types", help="N types equally spaced on [0.001, 0.01], equal Q."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the contract as one JSON object on stdout.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the menu's items as CSV here.")
    ] = None,
) -> None:
    """Solve the optimal contract of a market (defaults: the paper's setting, CA, exact)."""
    from aoichain.incentive import (
        FORMULAS,
        METHODS,
        SCHEMES,
        Market,
        Method,
        Scheme,
        equal_types,
        solve,
    )

    with cli_errors():
        _choice("--scheme", scheme, SCHEMES)
        _choice("--method", method, METHODS)
        if formulas is not None:
            _choice("--formulas", formulas, FORMULAS)
        if out is not None:
            _check_out(out)
        values, source = market_values(config)
        if types is not None:
            values["gammas"], values["probs"] = equal_types(types)
        overrides = {"a": a, "alpha": alpha, "formulas": formulas}
        values.update({k: v for k, v in overrides.items() if v is not None})
        market = Market.from_mapping(values, source)
        result = solve(market, cast(Scheme, scheme), cast(Method, method), phi=phi)
        if out is not None:
            write_items_csv(result, out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), allow_nan=False))
        return
    _render(result)
    if out is not None:
        console.print(f"items written to {out}")

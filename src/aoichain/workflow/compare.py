"""``compare_schemes``: the same task under CA, CC, CS and flat, side by side;
``compare_seeds``: the same over several seeds, with 95 % confidence intervals.

Same seed, same data, same chains configuration: only the menu and how
workers come to their items differ. Each scheme gets its own run folder
below ``out_dir``; ``comparison.csv`` and ``comparison.json`` hold one row
per scheme. Over seeds, each seed draws its own streams, types, phases and
initial model, and the schemes of one seed share them, so differences to
``flat`` are paired by seed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from aoichain.jsonio import write_json
from aoichain.workflow.config import RunConfig, load_run_config
from aoichain.workflow.run import RunResult, run_task
from aoichain.workflow.schemes import BUILTIN_SCHEMES
from aoichain.workflow.steps import RoundMetrics
from aoichain.workflow.summary import COMPARISON_COLUMNS, RunSummary


def compare_schemes(
    config: RunConfig,
    out_dir: str | Path,
    schemes: Sequence[str] = BUILTIN_SCHEMES,
    on_round: Callable[[str, RoundMetrics], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, RunResult]]:
    """Run the task once per scheme and write one comparison.

    Returns
    -------
    rows, results
        One summary row per scheme, and each scheme's full :class:`RunResult`.
    """
    out = Path(out_dir)
    results: dict[str, RunResult] = {}
    for scheme in schemes:
        cfg = config.model_copy(update={"task": config.task.model_copy(update={"scheme": scheme})})

        def relay(row: RoundMetrics, scheme: str = scheme) -> None:
            if on_round is not None:
                on_round(scheme, row)

        def say(msg: str, scheme: str = scheme) -> None:
            if on_status is not None:
                on_status(f"{scheme}: {msg}")

        results[scheme] = run_task(cfg, out / scheme, on_round=relay, on_status=say)
    rows = [results[s].summary.model_dump(include=set(COMPARISON_COLUMNS)) for s in schemes]
    rows = [{k: row[k] for k in COMPARISON_COLUMNS} for row in rows]
    with (out / "comparison.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COMPARISON_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "comparison.json", rows)
    return rows, results


#: What ``compare_seeds`` gives intervals for: per run, then mean and 95 % interval.
SEED_QUANTITIES: tuple[str, ...] = (
    "final_accuracy",
    "final_f1",
    "final_roc_auc",
    "mean_accuracy",
    "mean_f1",
    "mean_roc_auc",
    "mean_base_rate",
    "mean_aoi_s",
    "mean_latency_s",
    "reward_paid",
    "accuracy_per_reward",
    "f1_per_reward",
)
assert set(SEED_QUANTITIES) <= set(RunSummary.model_fields)

#: Largest gap between two variants' mean evaluation base rates that still lets their
#: base-rate-dependent metrics (accuracy, F1, precision, PR AUC) be compared.
BASE_RATE_TOLERANCE = 0.05

#: A variant ``"<scheme>+learned"`` runs the scheme with ``[market] satisfaction = "learned"``.
LEARNED_SUFFIX = "+learned"


def interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval ``(mean, low, high)`` of ``values``.

    Non-finite values are left out; with fewer than two values the interval
    is ``nan``.
    """
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = (
        float(student_t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    )
    return mean, mean - half, mean + half


def variant_config(config: RunConfig, variant: str, seed: int) -> RunConfig:
    """The config of one run of a comparison: a scheme (``+learned``: learned ``G``), a seed.

    Validated like any config (an unknown scheme is an ``InvalidInput`` naming it).
    """
    scheme, learned = variant, False
    if variant.endswith(LEARNED_SUFFIX):
        scheme, learned = variant[: -len(LEARNED_SUFFIX)], True
    values = config.model_dump()
    values["task"].update(scheme=scheme, seed=seed)
    values["satisfaction"]["satisfaction"] = "learned" if learned else "paper"
    return load_run_config(overrides=values)


@dataclass(frozen=True)
class SeedComparison:
    """What :func:`compare_seeds` returns (and writes).

    ``runs``: one row per variant and seed (the :data:`SEED_QUANTITIES` and
    ``rounds`` of accuracy and mean AoI, for the figure). ``intervals``: per
    variant and quantity, the mean and the 95 % interval over the seeds.
    ``versus``: with ``flat`` among the variants, per other variant and
    quantity, the mean and interval of its difference to ``flat`` on the same
    seed (paired: same streams, types and phases). ``warnings``: what makes
    the variants' numbers not comparable (:func:`evaluation_sets_differ`).
    """

    variants: list[str]
    seeds: list[int]
    runs: list[dict[str, Any]]
    intervals: list[dict[str, Any]]
    versus: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def compare_seeds(
    config: RunConfig,
    out_dir: str | Path,
    variants: Sequence[str] = BUILTIN_SCHEMES,
    seeds: Sequence[int] = (0, 1),
    on_status: Callable[[str], None] | None = None,
) -> SeedComparison:
    """Run every variant on every seed; write per-run rows and 95 % intervals.

    Each run gets its folder ``out_dir/<variant>/seed<k>``; ``runs.csv``,
    ``intervals.csv`` and ``comparison.json`` (everything) go to ``out_dir``.
    """
    out = Path(out_dir)
    say = on_status or (lambda _msg: None)
    runs: list[dict[str, Any]] = []
    for variant in variants:
        for seed in seeds:
            say(f"{variant}, seed {seed}")
            result = run_task(variant_config(config, variant, seed), out / variant / f"seed{seed}")
            summary = result.summary
            row: dict[str, Any] = {"variant": variant, "seed": seed}
            row.update({q: getattr(summary, q) for q in SEED_QUANTITIES})
            row["round_accuracy"] = [r.accuracy for r in result.rounds]
            row["round_mean_aoi_s"] = [r.mean_aoi for r in result.rounds]
            runs.append(row)
    intervals = []
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        for q in SEED_QUANTITIES:
            mean, low, high = interval([float(r[q]) for r in mine])
            intervals.append(
                {
                    "variant": variant,
                    "quantity": q,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "n": len(mine),
                }
            )
    versus = []
    if "flat" in variants:
        base = {r["seed"]: r for r in runs if r["variant"] == "flat"}
        for variant in variants:
            if variant == "flat":
                continue
            mine = [r for r in runs if r["variant"] == variant]
            for q in SEED_QUANTITIES:
                diffs = [float(r[q]) - float(base[r["seed"]][q]) for r in mine]
                mean, low, high = interval(diffs)
                versus.append(
                    {
                        "variant": variant,
                        "quantity": q,
                        "minus_flat": mean,
                        "low": low,
                        "high": high,
                        "n": len(diffs),
                    }
                )
    out.mkdir(parents=True, exist_ok=True)
    flat_rows = [{k: v for k, v in r.items() if not k.startswith("round_")} for r in runs]
    _write_rows(out / "runs.csv", flat_rows)
    _write_rows(out / "intervals.csv", intervals)
    if versus:
        _write_rows(out / "versus_flat.csv", versus)
    gap = evaluation_sets_differ(intervals)
    comparison = SeedComparison(
        list(variants), list(seeds), runs, intervals, versus, [] if gap is None else [gap]
    )
    write_json(out / "comparison.json", asdict(comparison))
    return comparison


def evaluation_sets_differ(
    intervals: Sequence[dict[str, Any]], tolerance: float = BASE_RATE_TOLERANCE
) -> str | None:
    """A warning if the variants were judged on evaluation sets of different base rates.

    A round's model is judged when its last update was served, so a menu
    with longer waits is judged later, on other held-out windows; where
    anomalies come in blocks (SKAB) that moves the evaluation set's share of
    anomalous windows, and with it accuracy, F1, precision and PR AUC,
    whatever the data bought.

    Parameters
    ----------
    intervals : sequence of dict
        Rows of :attr:`SeedComparison.intervals` (``variant``, ``quantity``,
        ``mean``); the ``mean_base_rate`` rows are read.
    tolerance : float
        Largest gap between two variants' mean base rates that passes.

    Returns
    -------
    str or None
        One sentence naming the lowest and highest variant, or ``None`` if
        the gap is at most ``tolerance`` (or fewer than two variants have a
        finite base rate).
    """
    rates = {
        row["variant"]: float(row["mean"])
        for row in intervals
        if row["quantity"] == "mean_base_rate" and math.isfinite(float(row["mean"]))
    }
    if len(rates) < 2:
        return None
    low, high = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
    if rates[high] - rates[low] <= tolerance:
        return None
    return (
        f"The variants were judged on evaluation sets of different base rates ({low} "
        f"{rates[low]:.3f}, {high} {rates[high]:.3f}: a round's model is judged when its last "
        "update was served, so longer waits are judged on later windows); accuracy, F1, "
        "precision and PR AUC are not comparable between them."
    )


def _write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

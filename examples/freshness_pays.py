"""Does paying for freshness pay? The AoI contract against flat pricing, over seeds.

For each setting, ``aoichain.workflow.compare_seeds`` runs CA (the paper's
contract), ``CA+learned`` (CA solved with a satisfaction fitted to a pilot's
accuracy-against-AoI curve) and ``flat`` (one item for everyone) on the same
seeds; every run uses a fixed-size cache (``[data] cache = "fixed"``), so the
contract moves the data's freshness and nothing else. Settings: the
generator at several drift rates (``[data.generator] drift``, noise levels
per second: how fast the line's operating point moves) and SKAB's valve1
experiments, if present.

Writes, below ``--out``: one folder per setting (``compare_seeds``' files and
``report.html``), and ``summary.csv`` / ``summary.md``: per setting and
variant the mean accuracy, F1, the evaluation sets' base rate, AoI, reward
paid and accuracy and F1 per unit of reward with 95 % intervals, the paired
differences to flat, and the accuracy bought per unit of extra reward
(difference of mean accuracies over difference of mean rewards); a setting
whose variants were judged on evaluation sets of different base rates is
named below the table (``compare_seeds``' warnings).

Usage::

    .venv/bin/python examples/freshness_pays.py --out results/freshness-pays --seeds 6
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path
from typing import Any

from aoichain.report.run_report import write_seeds_report
from aoichain.workflow import compare_seeds, load_run_config
from aoichain.workflow.compare import interval

VARIANTS = ("CA", "CA+learned", "flat")
SHOWN = (
    "mean_accuracy",
    "mean_f1",
    "mean_base_rate",
    "mean_aoi_s",
    "reward_paid",
    "accuracy_per_reward",
    "f1_per_reward",
)
SKAB = Path(os.environ.get("AOICHAIN_SKAB_DIR", Path(__file__).parents[2] / "shared/datasets/skab"))


def settings(drifts: list[float], skab: bool) -> dict[str, dict[str, Any]]:
    """Name -> config overrides of every setting of the experiment."""
    out: dict[str, dict[str, Any]] = {
        f"generator-drift{d:g}": {"data": {"generator": {"drift": d}}} for d in drifts
    }
    if skab and (SKAB / "valve1").is_dir():
        out["skab-valve1"] = {"data": {"source": "folder", "folder": str(SKAB / "valve1")}}
    return out


def _cell(row: dict[str, Any], q: str) -> str:
    return f"{row[q]:.4g} {row[q + '_ci']}"


def _diff(row: dict[str, Any], q: str, base: str = "flat") -> str:
    key = f"{q}_minus_{base}"
    return f"{row[key]:+.4g} {row[key + '_ci']}" if key in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/freshness-pays"))
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=10, help="IIoT nodes (plus as many twins)")
    parser.add_argument("--drift", type=float, nargs="+", default=[0.04, 0.1, 0.2, 0.5])
    parser.add_argument("--no-skab", action="store_true")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    for name, overrides in settings(args.drift, not args.no_skab).items():
        data = {"cache": "fixed", **overrides.get("data", {})}
        config = load_run_config(
            overrides={
                # Every run plays all its rounds: an early stop would cut its pay and its mean.
                "task": {"rounds": args.rounds, "target": {"metric": "f1", "value": 1.0}},
                "workers": {"physical": args.workers},
                "data": data,
            }
        )
        started = time.perf_counter()
        comparison = compare_seeds(
            config, args.out / name, args.variants, list(range(args.seeds)), on_status=print
        )
        write_seeds_report(args.out / name, comparison)
        print(f"{name}: {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f}")
        warnings += [f"{name}: {w}" for w in comparison.warnings]
        means = {(c["variant"], c["quantity"]): c for c in comparison.intervals}
        versus = {(c["variant"], c["quantity"]): c for c in comparison.versus}
        for variant in args.variants:
            row: dict[str, Any] = {"setting": name, "variant": variant}
            for q in SHOWN:
                c = means[(variant, q)]
                row[q] = c["mean"]
                row[f"{q}_ci"] = f"[{c['low']:.4g}, {c['high']:.4g}]"
                if variant != "flat" and (variant, q) in versus:
                    d = versus[(variant, q)]
                    row[f"{q}_minus_flat"] = d["minus_flat"]
                    row[f"{q}_minus_flat_ci"] = f"[{d['low']:.4g}, {d['high']:.4g}]"
            if variant == "CA+learned" and "CA" in args.variants:
                # Paired by seed against the paper's satisfaction: does learning G pay?
                by_seed = {r["seed"]: r for r in comparison.runs if r["variant"] == "CA"}
                for q in ("mean_accuracy", "reward_paid", "accuracy_per_reward"):
                    diffs = [
                        float(r[q]) - float(by_seed[r["seed"]][q])
                        for r in comparison.runs
                        if r["variant"] == variant
                    ]
                    mean, low, high = interval(diffs)
                    row[f"{q}_minus_CA"] = mean
                    row[f"{q}_minus_CA_ci"] = f"[{low:.4g}, {high:.4g}]"
            if variant != "flat":
                d_acc = (
                    means[(variant, "mean_accuracy")]["mean"]
                    - means[("flat", "mean_accuracy")]["mean"]
                )
                d_pay = (
                    means[(variant, "reward_paid")]["mean"] - means[("flat", "reward_paid")]["mean"]
                )
                row["accuracy_bought_per_extra_reward"] = d_acc / d_pay if d_pay else math.nan
            rows.append(row)

    args.out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with (args.out / "summary.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| setting | variant | mean accuracy | mean F1 | evaluation base rate | mean AoI (s) | "
        "reward paid | accuracy per reward | F1 per reward | accuracy vs flat | reward vs flat | "
        "accuracy vs CA | reward vs CA |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['variant']} | {_cell(r, 'mean_accuracy')} | "
            f"{_cell(r, 'mean_f1')} | {_cell(r, 'mean_base_rate')} | {_cell(r, 'mean_aoi_s')} | "
            f"{_cell(r, 'reward_paid')} | {_cell(r, 'accuracy_per_reward')} | "
            f"{_cell(r, 'f1_per_reward')} | {_diff(r, 'mean_accuracy')} | "
            f"{_diff(r, 'reward_paid')} | {_diff(r, 'mean_accuracy', 'CA')} | "
            f"{_diff(r, 'reward_paid', 'CA')} |"
        )
    lines += [f"\nNot comparable: {w}" for w in warnings]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

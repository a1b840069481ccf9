"""Accuracy and ROC AUC against the Byzantine fraction, per aggregation rule and attack.

Usage::

    .venv/bin/python benchmarks/bench_faults.py [--quick] [--out results/bench_faults]
        [--physical N] [--rounds R] [--seeds 0,1,2]

Each point is one whole run (``run_task``: the generator's streams, embedded
chains, the default market) of ``2 N`` workers for ``R`` rounds, of which
the given fraction is Byzantine (``[faults] byzantine``, attackers chosen
from the seed; the fraction is rounded to whole workers), under each rule of
``RULES`` and each attack. The 0 % point is one honest run per rule.
``trimmed_mean`` cuts 30 % at each end (40 % would leave the middle 2 of
10 workers: the median); ``krum`` and ``multi_krum`` assume the most
Byzantine workers Krum tolerates (3 of 10, 8 of 20; multi-Krum averages
the other ``K - f``); ``norm_clip`` clips to the median norm.

Reported per run: the global model's accuracy and ROC AUC after the last
round and their mean over the last three rounds (less noisy: a single
round's model jumps), F1 and log-loss. The generator's windows are about
20 % anomalous, so a model that says "normal" to everything scores accuracy
near 0.8: ROC AUC (0.5 for a model that cannot tell faults apart) is the
metric that shows the damage. Each point is run once per seed of
``--seeds`` (the seed draws the workers' types, data, phases, training and
attackers; one seed's honest run differs from another's by more than most
attacks do): ``faults.csv`` holds every run, the tables and ``faults.png``
the means over the seeds. The load average is printed before and after.

``--quick``: 5 IIoT nodes (10 workers), 3 rounds, fractions 0 and 30 %.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aoichain.workflow import RunResult, load_run_config, run_task

RULES = ("fedavg", "median", "trimmed_mean", "norm_clip", "krum", "multi_krum")
RULE_OPTIONS: dict[str, dict[str, float]] = {"trimmed_mean": {"trim": 0.3}}
ATTACKS = ("sign_flip", "scale", "noise", "label_flip")
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4)
QUICK_FRACTIONS = (0.0, 0.3)
LAST = 3  # rounds averaged for the *_last3 columns
COLUMNS = ("rule", "attack", "fraction", "byzantine_workers", "workers", "rounds", "seed",
           "accuracy", "roc_auc", "accuracy_last3", "roc_auc_last3", "f1", "loss", "seconds",
           "global_sha256")  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def one_run(
    rule: str, attack: str, fraction: float, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One run of ``2 * physical`` workers, ``fraction`` of them Byzantine with ``attack``."""
    workers = 2 * args.physical
    attackers = int(fraction * workers + 0.5)
    overrides: dict[str, Any] = {
        "task": {"rounds": args.rounds, "seed": seed, "target_accuracy": 1.0},
        "workers": {"physical": args.physical},
        "chain": {"backend": "embedded"},
        "train": {"aggregation": rule, "aggregation_options": RULE_OPTIONS.get(rule, {})},
    }
    if attackers:
        overrides["faults"] = {"byzantine": {"workers": attackers, "attack": attack}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result: RunResult = run_task(load_run_config(overrides=overrides), Path(tmp) / "run")
    rounds = result.rounds
    tail = rounds[-LAST:]
    return {
        "rule": rule,
        "attack": attack if attackers else "none",
        "fraction": fraction,
        "byzantine_workers": attackers,
        "workers": workers,
        "rounds": len(rounds),
        "seed": seed,
        "accuracy": rounds[-1].accuracy,
        "roc_auc": rounds[-1].roc_auc,
        "accuracy_last3": sum(r.accuracy for r in tail) / len(tail),
        "roc_auc_last3": sum(r.roc_auc for r in tail) / len(tail),
        "f1": rounds[-1].f1,
        "loss": rounds[-1].loss,
        "seconds": time.perf_counter() - started,
        "global_sha256": result.outcome.global_sha256,
    }


def grid(args: argparse.Namespace) -> list[tuple[str, str, float, int]]:
    """Every (rule, attack, fraction, seed) to run; the honest point once per rule and seed."""
    fractions = QUICK_FRACTIONS if args.quick else FRACTIONS
    points = []
    for seed in args.seeds:
        points += [(rule, "none", 0.0, seed) for rule in RULES]
        for attack in ATTACKS:
            for fraction in (f for f in fractions if f > 0):
                points += [(rule, attack, fraction, seed) for rule in RULES]
    return points


def means(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (rule, attack, fraction): the metrics averaged over the seeds."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["rule"], row["attack"], row["fraction"]), []).append(row)
    metrics = ("accuracy", "roc_auc", "accuracy_last3", "roc_auc_last3", "f1", "loss")
    averaged = []
    for runs in groups.values():
        mean = {m: sum(r[m] for r in runs) / len(runs) for m in metrics}
        averaged.append({**runs[0], **mean, "seeds": len(runs)})
    return averaged


def table(rows: Sequence[dict[str, Any]], metric: str) -> None:
    """Per attack: one line per rule, ``metric`` at each fraction."""
    fractions = sorted({r["fraction"] for r in rows})
    honest = {r["rule"]: r for r in rows if r["byzantine_workers"] == 0}
    for attack in ATTACKS:
        print(f"\n{metric} under {attack}")
        print(f"{'rule':<14}" + "".join(f"{f:>8.0%}" for f in fractions))
        for rule in RULES:
            found = {r["fraction"]: r for r in rows if r["rule"] == rule and r["attack"] == attack}
            found[0.0] = honest[rule]
            cells = [f"{found[f][metric]:>8.3f}" if f in found else f"{'':>8}" for f in fractions]
            print(f"{rule:<14}" + "".join(cells))


def plot(rows: Sequence[dict[str, Any]], out: Path) -> Path:
    """ROC AUC and accuracy (means of the last rounds) against the fraction, per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    honest = {r["rule"]: r for r in rows if r["byzantine_workers"] == 0}
    fig, axes = plt.subplots(2, len(ATTACKS), figsize=(15, 7), layout="constrained", sharey="row")
    for col, attack in enumerate(ATTACKS):
        for row, (metric, label) in enumerate(
            (("roc_auc_last3", "ROC AUC"), ("accuracy_last3", "accuracy"))
        ):
            ax = axes[row][col]
            for k, rule in enumerate(RULES):
                attacked = [r for r in rows if r["rule"] == rule and r["attack"] == attack]
                points = sorted([honest[rule], *attacked], key=lambda r: r["fraction"])
                ax.plot([100 * r["fraction"] for r in points], [r[metric] for r in points],
                        marker="osD^vP"[k], label=rule)  # fmt: skip
            ax.axhline(honest["fedavg"][metric], color="grey", lw=0.8, ls=":",
                       label="honest FedAvg")  # fmt: skip
            ax.set_xlabel("Byzantine workers (%)")
            ax.set_ylabel(f"{label}, mean of the last {LAST} rounds")
            ax.set_title(f"{attack}: {label}")
    axes[0][0].legend(fontsize=8)
    path = out / "faults.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 workers, 3 rounds, 0 and 30 %%")
    parser.add_argument("--physical", type=int, help="IIoT nodes (workers: twice); default 10")
    parser.add_argument("--rounds", type=int, help="rounds per run; default 6")
    parser.add_argument("--seeds", default="0", help="comma-separated; default 0")
    parser.add_argument("--out", type=Path, default=Path("results/bench_faults"))
    args = parser.parse_args()
    args.physical = args.physical or (5 if args.quick else 10)
    args.rounds = args.rounds or (3 if args.quick else 6)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    points = grid(args)
    print(f"load average before: {load()}")
    print(f"{len(points)} runs of {2 * args.physical} workers, {args.rounds} rounds, "
          f"seeds {args.seeds}, embedded chains")  # fmt: skip
    rows, started = [], time.perf_counter()
    for k, (rule, attack, fraction, seed) in enumerate(points, start=1):
        row = one_run(rule, attack, fraction, seed, args)
        rows.append(row)
        left = (time.perf_counter() - started) / k * (len(points) - k)
        print(
            f"[{k:>3}/{len(points)}] seed {seed} {rule:<12} {row['attack']:<10} {fraction:>4.0%}: "
            f"ROC AUC {row['roc_auc_last3']:.3f}, accuracy {row['accuracy_last3']:.3f} "
            f"({row['seconds']:.1f} s; about {left / 60:.0f} min left)",
            flush=True,
        )
    averaged = means(rows)
    table(averaged, "roc_auc_last3")
    table(averaged, "accuracy_last3")
    print(f"\nload average after: {load()}")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "faults.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out / 'faults.csv'} and {plot(averaged, args.out)}")


if __name__ == "__main__":
    main()

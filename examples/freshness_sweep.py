"""Does fresher data make a better model? A controlled sweep over the update cycle.

Every worker gets the same single item (scheme ``flat``) with ``c`` collection
slots imposed, so the cycle ``theta = (c + a) t`` and hence the AoI of the
requests is the only thing that changes between runs: same seed, same
streams, same chains. Writes ``freshness.csv`` and ``freshness.png`` into
``--out`` and prints a table.

Usage::

    .venv/bin/python examples/freshness_sweep.py --out results/freshness --c 1 5 10 15 --a 5
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aoichain.workflow import load_run_config, run_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/freshness"))
    parser.add_argument("--c", type=int, nargs="+", default=[1, 5, 10, 15])
    parser.add_argument("--a", type=int, default=5, help="idle slots per cycle")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=10, help="IIoT nodes (plus as many twins)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = []
    for c in args.c:
        config = load_run_config(
            overrides={
                "task": {
                    "scheme": "flat",
                    "flat_c": c,
                    "rounds": args.rounds,
                    "seed": args.seed,
                    "target_accuracy": 1.0,
                },
                "workers": {"physical": args.workers},
                "market": {"a": args.a},
            }
        )
        result = run_task(config, args.out / f"c{c}")
        accuracy = np.array([r.accuracy for r in result.rounds])
        rows.append(
            {
                "c": c,
                "theta_s": float(result.prepared.contract.theta[0]),
                "mean_aoi_s": result.summary.mean_aoi_s,
                "mean_latency_s": result.summary.mean_latency_s,
                "mean_accuracy": float(accuracy.mean()),
                "final_accuracy": float(accuracy[-1]),
                "final_roc_auc": result.summary.final_roc_auc,
                "paid_wei": result.summary.paid_wei,
            }
        )
        print(
            f"c={c:>2}  AoI {rows[-1]['mean_aoi_s']:6.2f} s  latency "
            f"{rows[-1]['mean_latency_s']:6.2f} s  accuracy mean {rows[-1]['mean_accuracy']:.4f} "
            f"final {rows[-1]['final_accuracy']:.4f}"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "freshness.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([r["mean_aoi_s"] for r in rows], [r["mean_accuracy"] for r in rows], "o-")
    for r in rows:
        ax.annotate(f"c={r['c']}", (r["mean_aoi_s"], r["mean_accuracy"]), fontsize=8)
    ax.set_xlabel("mean AoI of the requests (s)")
    ax.set_ylabel("mean accuracy over the rounds")
    ax.set_title(f"freshness sweep (flat item, a = {args.a})")
    fig.savefig(args.out / "freshness.png", dpi=110)
    print(f"wrote {args.out / 'freshness.csv'} and {args.out / 'freshness.png'}")


if __name__ == "__main__":
    main()

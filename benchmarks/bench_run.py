"""Wall time of the default ``aoichain run`` (20 workers, embedded chains) and its split.

Usage::

    .venv/bin/python benchmarks/bench_run.py [--rounds N] [--repeat K]

Prints one table: total seconds (setup + all rounds + payment + files) and
the seconds spent training, on the ledger, relaying, aggregating and
evaluating, per run and per round. The goal is the default run under 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from aoichain.report.run_report import write_run_report
from aoichain.workflow import load_run_config, run_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="default: the config's (20)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    overrides = {"task": {"rounds": args.rounds}} if args.rounds else {}
    config = load_run_config(overrides=overrides)
    print(f"default run: {config.n_workers} workers, {config.task.rounds} rounds, embedded chains")
    header = f"{'run':>4} {'total s':>8} {'train':>7} {'ledger':>7} {'relay':>7} {'aggr':>7} "
    print(header + f"{'eval':>7} {'setup+files':>11} {'s/round':>8}")
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_task(config, Path(tmp) / "run")
            write_run_report(result)
            total = time.perf_counter() - started
        p = result.outcome.phases
        inside = p.training + p.ledger + p.relaying + p.aggregating + p.evaluating
        rounds = len(result.rounds)
        print(
            f"{k + 1:>4} {total:>8.2f} {p.training:>7.2f} {p.ledger:>7.2f} {p.relaying:>7.2f} "
            f"{p.aggregating:>7.2f} {p.evaluating:>7.2f} {total - inside:>11.2f} "
            f"{inside / rounds:>8.2f}"
        )
    print(
        f"final accuracy {result.summary.final_accuracy:.4f}, "
        f"ROC AUC {result.summary.final_roc_auc:.4f}, "
        f"gas {result.summary.gas_total:,}"
    )


if __name__ == "__main__":
    main()

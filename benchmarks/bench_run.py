"""Wall time of the default ``aoichain run`` and where it goes; side by side with another commit.

Usage::

    .venv/bin/python benchmarks/bench_run.py [--repeat K] [--baseline DIR] [--scale]

Each measurement runs in a fresh interpreter (the same ``python``) and times
``run_task`` plus the HTML report, as a user's ``aoichain run`` does after
its imports; it prints the seconds per phase (training, ledger, relaying,
aggregating, evaluating, and the rest: set-up, files, report).

- ``--baseline DIR``: also time the checkout in ``DIR`` (e.g. made with
  ``git worktree add ../aoichain-550ee43 550ee43``), alternating with this
  one, so both see the same machine in the same minutes; prints the median
  of each and their ratio.
- ``--scale``: also one round with 100 and with 1,000 workers (50 and 500
  IIoT nodes with their twins).
- ``--csv FILE``: write every measurement as CSV.

Timings are wall time and depend on the machine and its load: the load
average is printed with them. Compare ratios measured side by side, never
absolute seconds across machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
PHASES = ("training", "ledger", "relaying", "aggregating", "evaluating")

CHILD = r"""
import json, sys, time
from pathlib import Path
from aoichain.workflow import load_run_config, run_task
from aoichain.report.run_report import write_run_report
overrides, out = json.loads(sys.argv[1]), sys.argv[2]
config = load_run_config(overrides=overrides)
started = time.perf_counter()
result = run_task(config, Path(out))
write_run_report(result)
total = time.perf_counter() - started
p = result.outcome.phases
summary = result.summary if isinstance(result.summary, dict) else result.summary.model_dump()
print(json.dumps({
    "total": total,
    "phases": {k: getattr(p, k) for k in ("training", "ledger", "relaying", "aggregating",
                                          "evaluating")},
    "rounds": len(result.rounds),
    "workers": len(result.prepared.workers),
    "backend": result.deployments.get("backend"),
    "accuracy": summary["final_accuracy"],
    "gas": summary["gas_total"],
    "global_sha256": summary["global_sha256"],
}))
"""


def measure(src: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """One run of the checkout whose package is in ``src``, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(overrides), str(Path(tmp) / "run")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"the run of {src} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def row(label: str, m: dict[str, Any]) -> str:
    p = m["phases"]
    rest = m["total"] - sum(p.values())
    return (
        f"{label:<22} {m['total']:>7.2f} "
        + " ".join(f"{p[k]:>7.2f}" for k in PHASES)
        + f" {rest:>7.2f} {sum(p.values()) / m['rounds']:>8.3f}  {m['backend']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit")
    parser.add_argument("--scale", action="store_true", help="also 100 and 1,000 workers")
    parser.add_argument("--csv", type=Path, help="write every measurement here")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':<22} {'total s':>7} " + " ".join(f"{k[:7]:>7}" for k in PHASES), end="")
    print(f" {'rest':>7} {'s/round':>8}  chains")
    records: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    for k in range(args.repeat):
        checkouts = [("this", HERE / "src")]
        if args.baseline is not None:
            checkouts.append(("baseline", args.baseline.resolve() / "src"))
        for name, src in checkouts if k % 2 == 0 else reversed(checkouts):
            m = measure(src, {})
            runs[name].append(m)
            records.append({"what": f"default run ({name})", **m})
            print(row(f"default, {name} #{k + 1}", m))
    this = statistics.median(m["total"] for m in runs["this"])
    print(f"median default run, this checkout: {this:.2f} s")
    if runs["baseline"]:
        base = statistics.median(m["total"] for m in runs["baseline"])
        same = runs["this"][0]["global_sha256"] == runs["baseline"][0]["global_sha256"]
        print(
            f"median default run, baseline {args.baseline}: {base:.2f} s; "
            f"speed-up {base / this:.2f}x; same final global model: {same}; rounds played: "
            f"{runs['this'][0]['rounds']} and {runs['baseline'][0]['rounds']}, workers: "
            f"{runs['this'][0]['workers']} and {runs['baseline'][0]['workers']}"
        )
    if args.scale:
        for nodes in (50, 500):
            m = measure(HERE / "src", {"workers": {"physical": nodes}, "task": {"rounds": 1}})
            records.append({"what": f"{2 * nodes} workers, 1 round", **m})
            print(row(f"{2 * nodes} workers, 1 round", m))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.csv is not None:
        with args.csv.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["what", "total_s", *PHASES, "rounds", "workers", "backend"])
            for r in records:
                writer.writerow(
                    [r["what"], f"{r['total']:.3f}"]
                    + [f"{r['phases'][k]:.3f}" for k in PHASES]
                    + [r["rounds"], r["workers"], r["backend"]]
                )
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()

"""Seconds per round on Flower's deployment engine against the in-process engine.

Usage::

    .venv/bin/python benchmarks/bench_flower.py [--nodes 2 4 8] [--rounds 4] [--csv FILE]
    .venv/bin/python benchmarks/bench_flower.py --imports-only

For each number of SuperNodes ``S`` (``S / 2`` IIoT nodes and their twins) it
runs the same task twice on anvil chains: on a local Flower federation
(:func:`aoichain.flower.federation.run_federation`: verifier daemons, a
SuperLink, ``S`` SuperNodes, each its own process) and in one process
(:func:`aoichain.workflow.run_task`, in a fresh interpreter). A round's
seconds are the time between two rounds' ends (publishing, enrolment and the
first round, which builds each worker's streams, are left out: the median of
rounds 1 and later). It prints where a Flower round's time goes:

- the round's message (sent to every worker at once, until the last reply),
  and within it, per worker (median): the CPU its new ClientApp process
  spent before the handler began (interpreter, Flower, aoichain's modules),
  the training stack's imports, serving the request (checking the global
  model on the chain, reading the cache), training, and the rest (sealing,
  recording on its subchain, Flower's scheduling and polling);
- the chain work (ledger, relaying through the verifier daemons, aggregating).

``--imports-only`` measures only what a ClientApp process imports, in fresh
interpreters (CPU seconds, median of 5), and what the lazy imports cut:
eth-tester (only the embedded backend needs it), scipy.signal (only
generating streams does), torch._dynamo (torch.optim's first step imports
it; aoichain's own optimiser step does not).

Timings are wall time and depend on the machine and its load: the load
average is printed with them. This machine has 2 cores; a federation of
``S`` SuperNodes runs ``S`` ClientApp processes at once each round.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
SRC = HERE / "src"

IN_PROCESS = r"""
import dataclasses, json, sys, time
from pathlib import Path
from aoichain.workflow import load_run_config, run_task
overrides, out = json.loads(sys.argv[1]), sys.argv[2]
ends = []
result = run_task(load_run_config(overrides=overrides), Path(out),
                  on_round=lambda row: ends.append(time.perf_counter()))
print(json.dumps({"ends": ends, "rows": [dataclasses.asdict(r) for r in result.rounds]}))
"""

IMPORTS = {
    "interpreter": "pass",
    "Flower's ClientApp process": "import flwr.supernode.cli.flwr_clientapp",
    "+ a hello/enrol/finish message": (
        "import flwr.supernode.cli.flwr_clientapp, aoichain.flower.clientapp, "
        "aoichain.flower.worker, aoichain.chain.remote, aoichain.chain"
    ),
    "+ a train message": (
        "import flwr.supernode.cli.flwr_clientapp, aoichain.flower.clientapp, "
        "aoichain.flower.worker, aoichain.chain.remote, aoichain.chain\n"
        "from aoichain.workflow.requests import answer_request\n"
        "from aoichain.fl import train_local"
    ),
}
CUTS = {
    "eth_tester (lazy in chain.client)": ("import web3", "import web3, eth_tester.exceptions"),
    "scipy.signal (lazy in fl.generator)": ("import numpy", "import numpy, scipy.signal"),
    "torch._dynamo (aoichain.fl.optim, not torch.optim)": (
        "import torch",
        "import torch, torch._dynamo",
    ),
}


def cpu_seconds(code: str, repeat: int = 5) -> float:
    """Median CPU seconds (user + system) of a fresh interpreter running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "FLWR_TELEMETRY_ENABLED": "0"}
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def imports() -> list[dict[str, Any]]:
    """What a ClientApp process imports, and what the lazy imports cut (CPU seconds)."""
    rows = []
    base = cpu_seconds("pass")
    for what, code in IMPORTS.items():
        rows.append({"what": what, "cpu_s": cpu_seconds(code) - (0 if code == "pass" else base)})
    for what, (without, with_) in CUTS.items():
        rows.append({"what": f"cut: {what}", "cpu_s": cpu_seconds(with_) - cpu_seconds(without)})
    return rows


def overrides(nodes: int, rounds: int) -> dict[str, Any]:
    return {
        "task": {"rounds": rounds, "seed": 0, "target_accuracy": 1.0},
        "workers": {"physical": nodes // 2},
        "chain": {"backend": "anvil"},
    }


def steady(ends: list[float]) -> float:
    """Median seconds between consecutive round ends, from round 1 on."""
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    return statistics.median(gaps) if gaps else float("nan")


def in_process(nodes: int, rounds: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, json.dumps(overrides(nodes, rounds)), tmp + "/r"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = data["rows"][1:]
    chain = [r["seconds_ledger"] + r["seconds_relaying"] + r["seconds_aggregating"] for r in rows]
    return {
        "round_s": steady(data["ends"]),
        "training_s": statistics.median(r["seconds_training"] for r in rows),
        "chain_s": statistics.median(chain),
        "hashes": [r["global_sha256"] for r in data["rows"]],
    }


def flower(nodes: int, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(SRC))
    from aoichain.flower.federation import run_federation
    from aoichain.workflow import load_run_config

    events: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        result = run_federation(
            load_run_config(overrides=overrides(nodes, rounds)),
            Path(tmp) / "run",
            on_round=events.append,
        )
    steady_rounds = events[1:]
    workers: dict[str, list[float]] = {}
    for event in steady_rounds:
        for label, t in event["timings"].items():
            if label == "round_trip_s" or not isinstance(t, dict):
                continue
            for key, value in t.items():
                workers.setdefault(key, []).append(float(value))
    med = {k: statistics.median(v) for k, v in workers.items()}
    chain = [
        e["seconds_ledger"] + e["seconds_relaying"] + e["seconds_aggregating"]
        for e in steady_rounds
    ]
    return {
        "round_s": steady([e["seconds"] for e in events]),
        "message_s": statistics.median(e["timings"]["round_trip_s"] for e in steady_rounds),
        "chain_s": statistics.median(chain),
        "worker": med,
        "setup_s": result.seconds.get("processes", float("nan")),
        "hashes": [e["global_sha256"] for e in events],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--imports-only", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print("\nCPU seconds a ClientApp process spends importing (fresh interpreters, median of 5)")
    for row in imports():
        print(f"  {row['what']:<55} {row['cpu_s']:6.2f} s")
    if args.imports_only:
        return
    table = []
    for nodes in args.nodes:
        load = os.getloadavg()[0]
        fl = flower(nodes, args.rounds)
        ip = in_process(nodes, args.rounds)
        same = fl["hashes"] == ip["hashes"]
        w = fl["worker"]
        table.append(
            {
                "supernodes": nodes,
                "in_process_s": ip["round_s"],
                "flower_s": fl["round_s"],
                "ratio": fl["round_s"] / ip["round_s"],
                "message_s": fl["message_s"],
                "flower_chain_s": fl["chain_s"],
                "in_process_chain_s": ip["chain_s"],
                "worker_cpu_before_s": w.get("cpu_before_s", float("nan")),
                "worker_imports_s": w.get("imports_s", float("nan")),
                "worker_serve_s": w.get("serve_s", float("nan")),
                "worker_training_s": w.get("training_s", float("nan")),
                "worker_handler_s": w.get("handler_s", float("nan")),
                "setup_s": fl["setup_s"],
                "same_hashes": same,
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
        )
        row = table[-1]
        print(
            f"\n{nodes} SuperNodes: in process {row['in_process_s']:.2f} s/round, "
            f"Flower {row['flower_s']:.2f} s/round ({row['ratio']:.0f}x); same global models: "
            f"{same}; load {load:.2f} -> {row['load_after']:.2f}"
        )
        print(
            f"  Flower round: message {row['message_s']:.2f} s (per worker: "
            f"{row['worker_cpu_before_s']:.2f} s CPU before the handler, handler "
            f"{row['worker_handler_s']:.2f} s = imports {row['worker_imports_s']:.2f} + serve "
            f"{row['worker_serve_s']:.2f} + training {row['worker_training_s']:.2f} + record); "
            f"chain {row['flower_chain_s']:.2f} s (in process {row['in_process_chain_s']:.2f} s)"
        )
    print("\n| SuperNodes | in process s/round | Flower s/round | ratio | message s | chain s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in table:
        print(
            f"| {row['supernodes']} | {row['in_process_s']:.2f} | {row['flower_s']:.2f} | "
            f"{row['ratio']:.0f}x | {row['message_s']:.2f} | {row['flower_chain_s']:.2f} |"
        )
    if args.csv is not None:
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()

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

Reported per run, on the run's held-out evaluation set: the global model's
accuracy and ROC AUC after the last round, their mean and F1's over the last
three rounds (less noisy: a single round's model jumps), and log-loss. No
one metric shows every attack's damage: a sign-flipped or label-flipped
model may still rank windows well (ROC AUC) while it calls most of them
faults (accuracy), and a scaled one loses F1 first. Each point is run once per seed of
``--seeds`` (the seed draws the workers' types, data, phases, training and
attackers; one seed's honest run differs from another's by more than most
attacks do): ``faults.csv`` holds every run, the tables and ``faults.png``
the means over the seeds. The load average is printed before and after.

``--quick``: 5 IIoT nodes (10 workers), 3 rounds, fractions 0 and 30 %.

``--restart``: instead, the time a node's death costs a run on anvil chains
(``aoichain chains up`` in a temporary folder, ``--physical`` IIoT nodes,
``--rounds`` rounds, ``--repeats`` times each, medians reported), every run
a real ``aoichain run`` process:

- *reference*: a run nothing interrupts;
- *ride out*: P's node is killed (``kill -9``) once round 0 is journaled;
  ``chains up`` restarts it from its state on disk and the run waits for it
  (``[chain] outage_s``, 30 s here) and goes on;
- *exit and resume*: the same kill with ``chains up`` paused (``SIGSTOP``) and
  ``outage_s = 1``: the run stops with exit status 3; ``chains up`` resumes and
  restarts the node; ``aoichain run --resume`` finishes the task.

The time lost is each one's wall time (all its parts) minus the reference's;
the final global hash is checked against the reference's. ``restart.csv``
and ``restart.png`` hold them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
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
           "accuracy", "roc_auc", "accuracy_last3", "roc_auc_last3", "f1_last3", "f1", "loss",
           "seconds", "global_sha256")  # fmt: skip


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
        "f1_last3": sum(r.f1 for r in tail) / len(tail),
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
    metrics = ("accuracy", "roc_auc", "accuracy_last3", "roc_auc_last3", "f1_last3", "f1", "loss")
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


def aoichain(*args: str) -> subprocess.Popen[bytes]:
    """``python -m aoichain ARGS`` in a child process, its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "aoichain", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition()`` every 20 ms until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_faults: {what} did not happen within {timeout_s} s")
        time.sleep(0.02)


def answers(url: str) -> bool:
    """Whether the node at ``url`` answers ``eth_blockNumber``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # loopback only
            return "result" in json.loads(response.read())
    except OSError:
        return False


def child_anvil(parent: int, chain_id: int) -> int:
    """The process id of the anvil node of ``chain_id`` that process ``parent`` started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        flag = argv.index(b"--chain-id") if b"--chain-id" in argv else -2
        if ppid == parent and argv[flag + 1] == str(chain_id).encode():
            return int(stat.parent.name)
    raise SystemExit(f"bench_faults: process {parent} runs no anvil node of chain {chain_id}")


def finish(
    proc: subprocess.Popen[bytes], what: str, status: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    """Wait for an ``aoichain run --json`` child; its summary (``{}`` for a run that exited 3)."""
    out, err = proc.communicate(timeout=900)
    if proc.returncode not in status:
        raise SystemExit(f"bench_faults: {what} ended {proc.returncode}: {err.decode()[-2000:]}")
    return dict(json.loads(out)) if proc.returncode == 0 else {}


def restart_once(up: subprocess.Popen[bytes], chains: Path, tmp: Path, k: int,
                 args: argparse.Namespace) -> list[dict[str, Any]]:  # fmt: skip
    """One reference run, one that rides out P's death, one that exits 3 and is resumed."""
    p = json.loads((chains / "deployments.json").read_text())["chains"]["P"]
    common = ["--chains", str(chains / "deployments.json"), "--rounds", str(args.rounds),
              "--workers", str(args.physical), "--json"]  # fmt: skip

    def config(outage_s: float) -> str:
        path = tmp / f"outage-{outage_s:g}.toml"
        path.write_text(f"[chain]\noutage_s = {outage_s}\n[task]\nseed = {k}\n"
                        "target_accuracy = 1.0\n")  # fmt: skip
        return str(path)

    def killed_after_round_0(out: Path, outage_s: float, pause: bool) -> subprocess.Popen[bytes]:
        run = aoichain("run", "--config", config(outage_s), *common, "--out", str(out))
        journal = out / "journal.jsonl"
        wait_until(lambda: (journal.exists() and '"round"' in journal.read_text())
                   or run.poll() is not None, 600, "round 0 in the journal")  # fmt: skip
        if pause:
            os.kill(up.pid, signal.SIGSTOP)
        os.kill(child_anvil(up.pid, p["chain_id"]), signal.SIGKILL)
        return run

    started = time.perf_counter()
    first = aoichain("run", "--config", config(30), *common, "--out", str(tmp / f"reference-{k}"))
    reference = finish(first, "the reference run")
    t_reference = time.perf_counter() - started

    started = time.perf_counter()
    ride = tmp / f"ride-{k}"
    rode = finish(killed_after_round_0(ride, 30, pause=False), "the ride-out run", (0, 3))
    t_ride = time.perf_counter() - started
    ride_parts = f"rode out {t_ride:.2f}"
    if not rode:  # P came back without blocks the run saw (mined after its last dump): exit 3
        started = time.perf_counter()
        rode = finish(aoichain("run", "--resume", str(ride), "--json"), "--resume of ride-out")
        ride_parts = (
            f"exit 3 (node lost blocks) {t_ride:.2f} + resume {time.perf_counter() - started:.2f}"
        )
        t_ride += time.perf_counter() - started

    started = time.perf_counter()
    run = killed_after_round_0(tmp / f"resume-{k}", 1, pause=True)
    try:
        finish(run, "the run whose node stays down", status=(3,))
    finally:
        os.kill(up.pid, signal.SIGCONT)
    t_exit = time.perf_counter() - started
    started = time.perf_counter()
    wait_until(lambda: answers(p["rpc_url"]), 120, "P restarted by chains up")
    t_back = time.perf_counter() - started
    started = time.perf_counter()
    resumed = finish(aoichain("run", "--resume", str(tmp / f"resume-{k}"), "--json"), "--resume")
    t_resume = time.perf_counter() - started
    same = [s["global_sha256"] == reference["global_sha256"] for s in (rode, resumed)]
    return [
        {"case": "reference", "repeat": k, "seconds": t_reference, "lost": 0.0,
         "parts": f"{t_reference:.2f}", "same_hash": True},
        {"case": "ride out", "repeat": k, "seconds": t_ride, "lost": t_ride - t_reference,
         "parts": ride_parts, "same_hash": same[0]},
        {"case": "exit and resume", "repeat": k, "seconds": t_exit + t_back + t_resume,
         "lost": t_exit + t_back + t_resume - t_reference,
         "parts": f"exit {t_exit:.2f} + back {t_back:.2f} + resume {t_resume:.2f}",
         "same_hash": same[1]},
    ]  # fmt: skip


def restart_cost(args: argparse.Namespace) -> None:
    """Time lost to a node restart, ridden out or resumed; ``restart.csv`` and ``.png``."""
    print(f"load average before: {load()}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        up = aoichain("chains", "up", "--out", str(tmp / "chains"), "--json")
        try:
            wait_until(lambda: (tmp / "chains" / "deployments.json").exists()
                       or up.poll() is not None, 120, "chains up")  # fmt: skip
            for k in range(args.repeats):
                rows += restart_once(up, tmp / "chains", tmp, k, args)
                for row in rows[-3:]:
                    print(f"[{k + 1}/{args.repeats}] {row['case']:<16} {row['seconds']:6.2f} s"
                          f" (lost {row['lost']:5.2f} s; {row['parts']}; same final hash:"
                          f" {row['same_hash']})", flush=True)  # fmt: skip
        finally:
            os.kill(up.pid, signal.SIGCONT)
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
    print(f"\nmedians over {args.repeats} repeats ({2 * args.physical} workers, "
          f"{args.rounds} rounds, anvil):")  # fmt: skip
    cases = ("reference", "ride out", "exit and resume")
    medians = {c: statistics.median(r["seconds"] for r in rows if r["case"] == c) for c in cases}
    for case in cases:
        lost = medians[case] - medians["reference"]
        print(f"  {case:<16} {medians[case]:6.2f} s  (lost {lost:5.2f} s)")
    print(f"load average after: {load()}")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "restart.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.bar(cases, [medians[c] for c in cases], color=PALETTE)
    for case in cases:
        ax.plot([case] * args.repeats, [r["seconds"] for r in rows if r["case"] == case],
                "k.", ms=4)  # fmt: skip
    ax.set_ylabel("wall time of the task (s)")
    ax.set_title(f"P's node killed after round 0 ({2 * args.physical} workers, "
                 f"{args.rounds} rounds)", fontsize=10)  # fmt: skip
    fig.savefig(args.out / "restart.png", dpi=110)
    print(f"wrote {args.out / 'restart.csv'} and {args.out / 'restart.png'}")


PALETTE = ("#4c72b0", "#dd8452", "#c44e52")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 workers, 3 rounds, 0 and 30 %%")
    parser.add_argument("--physical", type=int, help="IIoT nodes (workers: twice); default 10")
    parser.add_argument("--rounds", type=int, help="rounds per run; default 6")
    parser.add_argument("--seeds", default="0", help="comma-separated; default 0")
    parser.add_argument("--out", type=Path, default=Path("results/bench_faults"))
    parser.add_argument("--restart", action="store_true",
                        help="time lost to a node restart (anvil) instead")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="with --restart; default 3")
    args = parser.parse_args()
    if args.restart:
        args.physical, args.rounds = args.physical or 2, args.rounds or 4
        restart_cost(args)
        return
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
    table(averaged, "f1_last3")
    print(f"\nload average after: {load()}")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "faults.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out / 'faults.csv'} and {plot(averaged, args.out)}")


if __name__ == "__main__":
    main()

"""Gas and time of the cross-chain ledger, from 20 to 10,000 workers a round.

Run: ``.venv/bin/python benchmarks/bench_ledger.py [--workers 20,100,1000,10000]
[--backend anvil] [--subchains 1,2,4] [--out results/bench_ledger]``

For each worker count (half IIoT nodes on the physical subchains, half twins
on the virtual ones) it starts fresh chains with their parties, publishes a
two-item task, admits and enrols every worker, and plays one round: every
worker records its update on its own subchain (one transaction each), the
relayer carries the records to M (checkpoints, proofs, k-of-n attestations),
the publisher records the global model with every worker included, the model
goes back down; then every worker claims its pay and the publisher reclaims.

Reported per worker count: gas per worker-round by chain and in all
(the round's transactions on every chain divided by the workers: what grows
with the fleet), the one-off gas per worker (enrolment, claim), the largest
single transaction (it must fit a 30M-gas block), and the round's wall time
(submissions in parallel across subchains, one thread each). ``--subchains``
repeats the largest count with more subchains per space. Writes ``gas.csv``
and ``ledger.png`` (gas and seconds against workers, log axes) to ``--out``.
Wall times depend on the machine and its load (printed); gas does not.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aoichain.chain import ChainConfig, Included, Network, TaskSpec, Worker
from aoichain.chain.client import SignedTx, send_together

BLOCK_GAS = 30_000_000
ROUND = ("submit_update", "checkpoint", "forward", "deliver_records", "record_global_model",
         "receive_global_model", "close_round", "open_round", "receive_round_open")  # fmt: skip


def sha(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def by_subchain(net: Network) -> dict[str, list[Worker]]:
    groups: dict[str, list[Worker]] = defaultdict(list)
    for workers in net.workers.values():
        for w in workers:
            groups[w.subchain].append(w)
    return groups


def in_parallel(groups: dict[str, list[Worker]], make: Callable[[Worker], SignedTx]) -> float:
    """Every worker signs its own transaction; each subchain's go out together, the
    subchains in parallel (one thread each); the wall time in seconds."""

    def send(ws: list[Worker]) -> None:
        refused = [r for r in send_together([make(w) for w in ws]) if isinstance(r, Exception)]
        if refused:
            raise RuntimeError(f"{len(refused)} transactions refused, e.g. {refused[0]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for future in [pool.submit(send, ws) for ws in groups.values()]:
            future.result()
    return time.perf_counter() - started


def play(backend: str, workers: int, subchains: int) -> dict[str, Any]:
    """One task, one round, ``workers`` workers; gas by operation and chain, seconds by part."""
    half = workers // 2
    config = ChainConfig(backend=backend, subchains={"P": subchains, "V": subchains})
    t0 = time.perf_counter()
    net = Network.start(config, workers={"P": half, "V": workers - half})
    seconds = {"start": time.perf_counter() - t0}
    with net:
        spec = TaskSpec(
            model_spec_hash=sha("spec"), rounds=1, target_accuracy=0.9, menu_f=[0.5, 1.0],
            menu_reward_wei_per_round=[10**12, 2 * 10**12], menu_max_samples=[256, 256],
            max_workers=workers,
        )  # fmt: skip
        task = net.publisher.publish(spec)
        net.relayer.relay_task(task)
        groups = by_subchain(net)
        tickets: dict[str, Any] = {}
        counts = [0, 0]
        for ws in groups.values():
            for w in ws:
                item = len(tickets) % 2
                index = item * spec.stride + counts[item]
                counts[item] += 1
                tickets[w.address] = net.publisher.admit(task, w.address, w.subchain, item, index)
        seconds["enrol"] = in_parallel(groups, lambda w: w.enrol_tx(tickets[w.address]))
        setup_receipts = len(net.receipts)
        t = time.perf_counter()
        net.publisher.open_round(task, 0)
        net.relayer.relay_round_open(task, 0)
        seconds["open"] = time.perf_counter() - t
        seconds["submit"] = in_parallel(
            groups, lambda w: w.update_tx(task, 0, sha(w.address), 100, 1_000)
        )
        t = time.perf_counter()
        carried = dict(net.relayer.relay_records(task, 0))
        verified = net.publisher.verify_records(task, 0, carried)
        seconds["relay records"] = time.perf_counter() - t
        t = time.perf_counter()
        included = [
            Included(r.index, r.worker, r.update_sha256) for rs in verified.values() for r in rs
        ]
        net.publisher.record_global_model(task, 0, sha("global"), included)
        seconds["record"] = time.perf_counter() - t
        t = time.perf_counter()
        net.relayer.relay_global_model(task, 0)
        net.publisher.close_round(task, 0)
        seconds["relay model"] = time.perf_counter() - t
        round_receipts = net.receipts[setup_receipts:]
        net.publisher.finish(task)
        claim_start = len(net.receipts)
        # Claims all go to M: one group.
        everyone = {"M": [w for ws in groups.values() for w in ws]}
        seconds["claims"] = in_parallel(everyone, lambda w: w.claim_tx(tickets[w.address], 1))
        claims = net.receipts[claim_start:]
        state = net.publisher.task(task)
        assert (
            state["paid"]
            == state["credited"]
            == sum(spec.menu_reward_wei_per_round[t.item] for t in tickets.values())
        )
        net.publisher.reclaim(task)
    seconds["round"] = sum(seconds[k] for k in ("open", "submit", "relay records", "record",
                                                 "relay model"))  # fmt: skip
    gas_by_chain: dict[str, int] = defaultdict(int)
    gas_by_op: dict[str, list[int]] = defaultdict(list)
    for r in round_receipts:
        gas_by_chain[r.chain[0] if r.chain not in ("M", "R") else r.chain] += r.gas_used
        gas_by_op[r.label.split(" ")[0]].append(r.gas_used)
    for r in net.receipts[:setup_receipts] + claims:
        if r.label.split(" ")[0] in ("publish_task", "receive_task", "enrol", "claim"):
            gas_by_op[r.label.split(" ")[0]].append(r.gas_used)
    enrol = [r.gas_used for r in net.receipts if r.label == "enrol"]
    return {
        "workers": workers,
        "subchains": subchains,
        "backend": net.deployment.backend,
        "gas_round": sum(r.gas_used for r in round_receipts),
        "gas_by_chain": dict(gas_by_chain),
        "gas_by_op": {k: (sum(v), len(v), max(v)) for k, v in gas_by_op.items()},
        "max_tx_gas": max(r.gas_used for r in net.receipts),
        "max_tx": max(net.receipts, key=lambda r: r.gas_used).label,
        "enrol_gas": sum(enrol) / len(enrol),
        "claim_gas": sum(r.gas_used for r in claims) / len(claims),
        "seconds": seconds,
    }


def report(results: Sequence[dict[str, Any]]) -> None:
    print(f"{'workers':>8} {'subch.':>6} {'gas/worker-round':>16} {'M':>8} {'R':>8} {'P':>8} "
          f"{'V':>8} {'submit':>7} {'enrol':>7} {'claim':>7} {'max tx':>10} "
          f"{'round s':>8} {'submit s':>8}")  # fmt: skip
    for r in results:
        n = r["workers"]
        by = r["gas_by_chain"]
        submit_total, submit_n, _ = r["gas_by_op"]["submit_update"]
        print(
            f"{n:>8,} {r['subchains']:>6} {r['gas_round'] / n:>16,.0f} "
            + " ".join(f"{by.get(k, 0) / n:>8,.0f}" for k in ("M", "R", "P", "V"))
            + f" {submit_total / submit_n:>7,.0f} {r['enrol_gas']:>7,.0f} {r['claim_gas']:>7,.0f}"
            f" {r['max_tx_gas']:>10,} {r['seconds']['round']:>8.2f} {r['seconds']['submit']:>8.2f}"
        )


def write(results: Sequence[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "gas.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["workers", "subchains", "backend", "gas_per_worker_round", "gas_M", "gas_R",
                    "gas_P", "gas_V", "submit_gas", "enrol_gas", "claim_gas", "max_tx_gas",
                    "max_tx", "round_s", "submit_s", "relay_records_s", "claims_s"])  # fmt: skip
        for r in results:
            n, by = r["workers"], r["gas_by_chain"]
            s_total, s_n, _ = r["gas_by_op"]["submit_update"]
            w.writerow([n, r["subchains"], r["backend"], round(r["gas_round"] / n)]
                       + [by.get(k, 0) for k in ("M", "R", "P", "V")]
                       + [round(s_total / s_n), round(r["enrol_gas"]), round(r["claim_gas"]),
                          r["max_tx_gas"], r["max_tx"], f"{r['seconds']['round']:.3f}",
                          f"{r['seconds']['submit']:.3f}", f"{r['seconds']['relay records']:.3f}",
                          f"{r['seconds']['claims']:.3f}"])  # fmt: skip
    plot(results, out)


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``gas.csv`` in the shape :func:`plot` takes."""
    with path.open() as fh:
        return [
            {
                "workers": int(row["workers"]),
                "subchains": int(row["subchains"]),
                "gas_round": int(row["gas_per_worker_round"]) * int(row["workers"]),
                "gas_by_chain": {k: int(row[f"gas_{k}"]) for k in ("M", "R", "P", "V")},
                "seconds": {"round": float(row["round_s"])},
            }
            for row in csv.DictReader(fh)
        ]


def plot(results: Sequence[dict[str, Any]], out: Path) -> None:
    """``ledger.png``: gas per worker-round by chain and a round's seconds against workers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one = [r for r in results if r["subchains"] == 1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4), layout="constrained")
    xs = [r["workers"] for r in one]
    ax1.loglog(xs, [r["gas_round"] / r["workers"] for r in one], "o-", label="all chains")
    for chain in ("M", "R", "P", "V"):
        ax1.loglog(xs, [max(1, r["gas_by_chain"].get(chain, 0)) / r["workers"] for r in one],
                   ".--", label="P (under V)" if chain == "P" else chain)  # fmt: skip
    ax1.axhline(60_000, color="grey", lw=0.8, ls=":")
    ax1.set_xlabel("workers in the round")
    ax1.set_ylabel("gas per worker-round")
    ax1.legend(fontsize=8)
    ax2.loglog(xs, [r["seconds"]["round"] for r in one], "o-", label="round (1 subchain/space)")
    many = sorted((r for r in results if r["subchains"] > 1), key=lambda r: r["subchains"])
    if many:
        ax2.scatter([r["workers"] for r in many], [r["seconds"]["round"] for r in many],
                    c="C3", label="more subchains")  # fmt: skip
        for k, r in enumerate(many):  # labels stacked: the points sit on one x, close in y
            ax2.annotate(f"{2 * r['subchains']} subchains", (r["workers"], r["seconds"]["round"]),
                         xytext=(-70, 14 * k - 20), textcoords="offset points", fontsize=8,
                         arrowprops={"arrowstyle": "-", "lw": 0.5})  # fmt: skip
    ax2.set_xlabel("workers in the round")
    ax2.set_ylabel("seconds")
    ax2.legend(fontsize=8)
    fig.savefig(out / "ledger.png", dpi=110)
    print(f"wrote {out / 'ledger.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="20,100,1000,10000")
    parser.add_argument("--backend", default="anvil", choices=["anvil", "embedded"])
    parser.add_argument("--subchains", default="1", help="per space, at the largest count")
    parser.add_argument("--out", type=Path, default=Path("results/bench_ledger"))
    parser.add_argument("--replot", type=Path, metavar="CSV",
                        help="draw ledger.png beside a gas.csv this script wrote")  # fmt: skip
    args = parser.parse_args()
    if args.replot:
        plot(read(args.replot), args.replot.parent)
        return
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.backend}")
    counts = [int(x) for x in args.workers.split(",")]
    results = []
    for n in counts:
        results.append(play(args.backend, n, 1))
        report(results[-1:])
    for k in (int(x) for x in args.subchains.split(",")):
        if k > 1:
            results.append(play(args.backend, max(counts), k))
            report(results[-1:])
    print()
    report(results)
    first = results[0]
    print(f"\ngas per call at {first['workers']} workers (one round):")
    for op, (total, calls, top) in sorted(first["gas_by_op"].items()):
        print(f"  {op:<24} {calls:>6} calls {total // calls:>12,} gas each (max {top:,})")
    round_max = max((top, op) for r in results for op, (_t, _c, top) in r["gas_by_op"].items())
    print(f"largest transaction of a round: {round_max[1]} with {round_max[0]:,} gas")
    biggest = max(results, key=lambda r: r["max_tx_gas"])
    print(
        f"largest transaction: {biggest['max_tx']} with {biggest['max_tx_gas']:,} gas "
        f"(a block holds {BLOCK_GAS:,})"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    write(results, args.out)


if __name__ == "__main__":
    main()

"""Measure the cross-chain ledger: gas per operation, transactions per second, cost of a round.

Run: ``.venv/bin/python benchmarks/bench_ledger.py`` (about half a minute;
needs the anvil binary from ``npm install`` for the anvil rows).

For each backend (embedded py-evm, local anvil nodes) it starts the four
chains, publishes a task with 20 workers (10 on P, 10 on V) and plays
``ROUNDS`` rounds. A round's ledger work is timed in three parts, as the
issue defines it: the 20 ``submit_update`` transactions, ``relay_updates``
(two subchain checkpoints on R, committee proofs and signatures, two
forwards on R, two deliveries on M) and ``record_global_model``. The table
gives the median over rounds. Gas is per call (mean over every call the run
made). Transactions per second are measured on 200 back-to-back value
transfers and on the round's ``submit_update`` calls.
"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import time
from collections import defaultdict
from typing import Any

from aoichain.chain import ChainUnavailable, Ledger, LedgerConfig

ROUNDS = 5
WORKERS = 10  # per subchain
TRANSFERS = 200


def sha(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def play(backend: str) -> dict[str, Any]:
    """Run the benchmark on one backend; return timings and the ledger's receipts."""
    started = time.perf_counter()
    ledger = Ledger.start(LedgerConfig(backend=backend), n_workers={"P": WORKERS, "V": WORKERS})
    start_s = time.perf_counter() - started
    with ledger:
        task = ledger.publish_task(sha("spec"), ROUNDS, 0.9, [0.5, 1.0], [10**15, 2 * 10**15], 20)
        ledger.relay_task(task)
        for space in "PV":
            for i in range(WORKERS):
                ledger.enrol(space, i, task, i % 2)
        parts: dict[str, list[float]] = defaultdict(list)
        round_gas: list[int] = []
        for r in range(ROUNDS):
            ledger.open_round(task, r)
            n = len(ledger.receipts)
            t0 = time.perf_counter()
            for space in "PV":
                for i in range(WORKERS):
                    ledger.submit_update(space, i, task, r, sha(space, i, r), 100 + i, 1_000 + r)
            t1 = time.perf_counter()
            attested = ledger.relay_updates(task, r)
            t2 = time.perf_counter()
            ledger.record_global_model(
                task, r, sha("global", r), [a.update_sha256 for a in attested]
            )
            t3 = time.perf_counter()
            round_gas.append(sum(rc.gas_used for rc in ledger.receipts[n:]))
            parts["submissions (20 tx)"].append(t1 - t0)
            parts["relay_updates"].append(t2 - t1)
            parts["record_global_model"].append(t3 - t2)
            parts["round total"].append(t3 - t0)
            ledger.relay_global_model(task, r)
            ledger.close_round(task, r)
        ledger.finish_task(task)
        for i in range(2):
            ledger.withdraw(ledger.workers["P"][i])
        ledger.reclaim(task)

        client, relayer = ledger.client("R"), ledger.parties.relayer
        t0 = time.perf_counter()
        for _ in range(TRANSFERS):
            client.transfer(relayer, ledger.publisher, 1, label="bench transfer")
        transfer_tps = TRANSFERS / (time.perf_counter() - t0)
        submit_tps = 2 * WORKERS / statistics.median(parts["submissions (20 tx)"])
        receipts = [r for r in ledger.receipts if r.label != "bench transfer"]
    return {
        "start_s": start_s,
        "parts": {k: statistics.median(v) for k, v in parts.items()},
        "round_gas": statistics.median(round_gas),
        "transfer_tps": transfer_tps,
        "submit_tps": submit_tps,
        "receipts": receipts,
    }


def gas_table(runs: dict[str, dict[str, Any]]) -> None:
    """Gas per call of each operation (the same on both backends: same EVM rules)."""
    calls: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in next(iter(runs.values()))["receipts"]:
        calls[(r.label, r.chain)].append(r.gas_used)
    print("| operation | chain | calls | gas per call |")
    print("|---|---|---:|---:|")
    for (label, chain), gas in calls.items():
        print(f"| `{label}` | {chain} | {len(gas)} | {round(statistics.mean(gas)):,} |")


def main() -> None:
    print(f"# aoichain ledger: {2 * WORKERS} workers (10 P, 10 V), {ROUNDS} rounds")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    runs: dict[str, dict[str, Any]] = {}
    for backend in ("embedded", "anvil"):
        try:
            runs[backend] = play(backend)
        except ChainUnavailable as exc:
            print(f"# {backend}: skipped ({exc})")
    print()
    print("One round's ledger work, median over rounds (wall time; gas of the round):")
    print()
    names = list(runs)
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for part in next(iter(runs.values()))["parts"]:
        cells = [f"{runs[n]['parts'][part] * 1e3:.0f} ms" for n in names]
        print(f"| {part} | " + " | ".join(cells) + " |")
    print("| gas of the round | " + " | ".join(f"{runs[n]['round_gas']:,}" for n in names) + " |")
    print(
        "| start (4 chains, deploy, fund) | "
        + " | ".join(f"{runs[n]['start_s'] * 1e3:.0f} ms" for n in names)
        + " |"
    )
    print(
        "| value transfers / s | "
        + " | ".join(f"{runs[n]['transfer_tps']:.0f}" for n in names)
        + " |"
    )
    print(
        "| `submit_update` / s | "
        + " | ".join(f"{runs[n]['submit_tps']:.0f}" for n in names)
        + " |"
    )
    print()
    print("Gas per call of every operation:")
    print()
    gas_table(runs)


if __name__ == "__main__":
    main()

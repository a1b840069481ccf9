"""Time the slot simulator and `aoichain reproduce` on this machine.

Run: ``.venv/bin/python benchmarks/bench_reproduce.py``. Prints one table;
every row is the best of a few repetitions (wall time, seconds).
"""

from __future__ import annotations

import tempfile
import time
import timeit
from collections.abc import Callable

import numpy as np

from aoichain.incentive.simulation import last_refresh_time, request_aoi_latency, simulate
from aoichain.report.reproduce import ReproduceConfig, compute, write_outputs


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls, seconds (the least disturbed run)."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    rows: list[tuple[str, str, float]] = []
    for n in (10_000, 1_000_000, 10_000_000):
        secs = best_of(lambda n=n: simulate(7, 5, 2.0, n))
        rows.append((f"simulate(c=7, a=5), {n:,} slots", f"{n / secs / 1e6:.0f} M slots/s", secs))
    slots = np.arange(1_000_000)
    secs = best_of(lambda: request_aoi_latency(7.5, 5, 2.0, slots, phase=3))
    rows.append(("request_aoi_latency, non-integer c, 1,000,000 slots", "", secs))
    now = np.linspace(0, 1e6, 1_000_000)
    secs = best_of(lambda: last_refresh_time(7, 5, 2.0, now))
    rows.append(("last_refresh_time, 1,000,000 times", "", secs))

    for formulas in ("paper", "corrected", "both"):
        config = ReproduceConfig(formulas=formulas)  # type: ignore[arg-type]
        secs = best_of(lambda config=config: compute(config))
        rows.append((f"compute (solve + simulate + claims), formulas={formulas}", "", secs))
    rep = compute(ReproduceConfig())
    with tempfile.TemporaryDirectory() as tmp:
        secs = best_of(lambda: write_outputs(rep, tmp), repeat=2)
    rows.append(("write_outputs (8 figures, CSVs, REPORT.md, report.html)", "", secs))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_outputs(compute(ReproduceConfig()), tmp)
        rows.append(("reproduce end to end, formulas=both", "", time.perf_counter() - start))

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>9}  rate")
    for what, rate, secs in rows:
        print(f"{what:<{width}}  {secs:>9.4f}  {rate}")


if __name__ == "__main__":
    main()

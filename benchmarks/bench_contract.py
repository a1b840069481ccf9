"""Time the exact contract solver against the paper's Algorithm 1.

Run: ``.venv/bin/python benchmarks/bench_contract.py`` (about ten seconds).

Market: the paper's setting (t = 2 s, a = 5, alpha = 0.5, paper forms) with N
types equally spaced on [0.001, 0.01] and equal probabilities; scheme CA.
``exact`` is timed for N = 10 ... 10^6, Algorithm 1 with phi = 1e-6 Hz for
N = 10, 100, 1000 (if a run would take longer than two minutes it is measured
on fewer types and extrapolated linearly, and the table says so). Times are
the best of several runs of ``solve`` (the market is built beforehand). The
last column is ``U_s(exact) - U_s(algorithm1)``, which must never be negative.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

from aoichain.incentive import Contract, Market, solve

PHI = 1e-6
BUDGET_S = 120.0


def best_time(fn: Callable[[], Contract], repeats: int) -> tuple[float, Contract]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    print(f"# exact vs Algorithm 1 (phi = {PHI:g} Hz), scheme CA, paper setting")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print()
    print("| N | exact | Algorithm 1 | ratio | U_s(exact) - U_s(Alg. 1) |")
    print("|---:|---:|---:|---:|---:|")
    per_type_alg1 = None
    for n in (10, 100, 1000, 10_000, 100_000, 1_000_000):
        market = Market.paper_default(types=n)
        repeats = 3 if n >= 1_000_000 else 5
        t_exact, exact = best_time(lambda m=market: solve(m), repeats)
        assert exact.converged and exact.feasibility.ic and exact.feasibility.ir
        if n > 1000:
            print(f"| {n:,} | {fmt_time(t_exact)} | | | |")
            continue
        note = ""
        if per_type_alg1 is not None and per_type_alg1 * n > BUDGET_S:
            sample = max(1, int(BUDGET_S / per_type_alg1 / 2))
            small = Market.paper_default(types=sample)
            t_small, _ = best_time(lambda m=small: solve(m, method="algorithm1", phi=PHI), 1)
            t_alg = t_small * n / sample
            diff_text = "n/a"
            note = f" (extrapolated from N = {sample})"
        else:
            t_alg, alg = best_time(
                lambda m=market: solve(m, method="algorithm1", phi=PHI), 3 if n <= 100 else 1
            )
            diff = exact.sp_utility_total - alg.sp_utility_total
            assert diff >= -1e-9 * abs(exact.sp_utility_total), diff
            diff_text = f"{diff:.2e}"
            per_type_alg1 = t_alg / n
        print(
            f"| {n:,} | {fmt_time(t_exact)} | {fmt_time(t_alg)}{note} | "
            f"{t_alg / t_exact:,.0f}x | {diff_text} |"
        )


if __name__ == "__main__":
    main()

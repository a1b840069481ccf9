"""Time what a user waits for at the prompt: ``aoichain --help`` and friends.

Run: ``.venv/bin/python benchmarks/bench_cli.py`` (about half a minute).

Each row starts a fresh process of the ``aoichain`` console script beside
this interpreter (what ``make setup`` installs and a user types; ``python -m
aoichain`` if the script is missing, and the output says which), once to warm
the file cache and then ``REPEAT`` times; the table gives the median and the
fastest wall time, seconds, next to the goal. Start-up time is mostly import
time, so ``--help`` measures what the CLI imports before it parses a flag.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

REPEAT = 7
HELP_GOAL_S = 0.5
ROWS: list[tuple[tuple[str, ...], float]] = [
    (("--help",), HELP_GOAL_S),
    *(
        ((*command, "--help"), HELP_GOAL_S)
        for command in (
            ("run",),
            ("compare",),
            ("contract",),
            ("reproduce",),
            ("chains",),
            ("chains", "up"),
        )
    ),
    (("contract", "--json"), 2.0),
]


def entry_point() -> tuple[list[str], str]:
    """The command that starts the CLI, and how to name it in the output."""
    script = Path(sys.executable).parent / "aoichain"
    if script.is_file():
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "aoichain"], f"{sys.executable} -m aoichain"


def wall_times(argv: list[str]) -> list[float]:
    """Wall times of ``REPEAT`` runs of ``argv`` after one warm-up run, seconds."""

    def once() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    once()
    return timeit.repeat(once, number=1, repeat=REPEAT)


def main() -> None:
    prefix, how = entry_point()
    print(f"# aoichain start-up: {how}; median and fastest of {REPEAT} runs after a warm-up")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start"
    )
    print()
    print("| command | median (s) | fastest (s) | goal (s) | |")
    print("|---|---:|---:|---:|---|")
    for args, goal in ROWS:
        times = wall_times([*prefix, *args])
        median = statistics.median(times)
        verdict = "ok" if median < goal else "SLOW"
        print(
            f"| aoichain {' '.join(args)} | {median:.3f} | {min(times):.3f} | < {goal:g} "
            f"| {verdict} |"
        )
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

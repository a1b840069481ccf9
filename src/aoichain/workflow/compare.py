"""``compare_schemes``: the same task under CA, CC, CS and flat, side by side.

Same seed, same data, same chains configuration: only the menu and how
workers come to their items differ. Each scheme gets its own run folder
below ``out_dir``; ``comparison.csv`` and ``comparison.json`` hold one row
per scheme.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aoichain.jsonio import write_json
from aoichain.workflow.config import RunConfig
from aoichain.workflow.run import RunResult, run_task
from aoichain.workflow.schemes import BUILTIN_SCHEMES
from aoichain.workflow.steps import RoundMetrics
from aoichain.workflow.summary import COMPARISON_COLUMNS


def compare_schemes(
    config: RunConfig,
    out_dir: str | Path,
    schemes: Sequence[str] = BUILTIN_SCHEMES,
    on_round: Callable[[str, RoundMetrics], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, RunResult]]:
    """Run the task once per scheme and write one comparison.

    Returns
    -------
    rows, results
        One summary row per scheme, and each scheme's full :class:`RunResult`.
    """
    out = Path(out_dir)
    results: dict[str, RunResult] = {}
    for scheme in schemes:
        cfg = config.model_copy(update={"task": config.task.model_copy(update={"scheme": scheme})})

        def relay(row: RoundMetrics, scheme: str = scheme) -> None:
            if on_round is not None:
                on_round(scheme, row)

        def say(msg: str, scheme: str = scheme) -> None:
            if on_status is not None:
                on_status(f"{scheme}: {msg}")

        results[scheme] = run_task(cfg, out / scheme, on_round=relay, on_status=say)
    rows = [results[s].summary.model_dump(include=set(COMPARISON_COLUMNS)) for s in schemes]
    rows = [{k: row[k] for k in COMPARISON_COLUMNS} for row in rows]
    with (out / "comparison.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COMPARISON_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "comparison.json", rows)
    return rows, results

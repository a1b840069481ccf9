"""The paper's axis ranges against a run's numbers: how well each set of closed forms fits.

The paper prints no table, only figures; their axis ranges (:data:`PAPER_AXES`)
are the only magnitudes it gives. Each quantity a figure plots is compared
with its axis by the share of this run's values that fall inside it, so that
"which closed forms did the paper's figures use?" is answered from numbers
(or left open), never assumed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from aoichain.report._document import Table
from aoichain.report.reproduce.config import PAPER_AXES, FloatArray
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import fmt


def sp_per_worker(run: FormulaRun) -> FloatArray:
    """``Q_n (G_n - R_n)`` over Fig. 4's alphas and the types: eq. (13)'s terms over ``M``.

    ``M`` of these add up to Fig. 3a's total; the paper's Fig. 4c axis (0..10)
    fits this scale, not ``M Q_n (G_n - R_n)``.
    """
    return np.asarray(run.by_alpha["sp_utility"] / run.market.workers, dtype=float)


#: (label, key of PAPER_AXES, the run's values of that figure)
QUANTITIES: tuple[tuple[str, str, Callable[[FormulaRun], FloatArray]], ...] = (
    ("Fig. 2 utility (types 1..N, all items)", "fig2", lambda r: r.utility),
    (
        "Fig. 3a SP utility (CA, CC, CS)",
        "fig3a",
        lambda r: np.concatenate(list(r.sp_by_a.values())),
    ),
    (
        "Fig. 3b workers' utility (CA, CC, CS)",
        "fig3b",
        lambda r: np.concatenate(list(r.workers_by_a.values())),
    ),
    ("Fig. 4a update frequency f (Hz)", "fig4a", lambda r: r.by_alpha["f"]),
    ("Fig. 4b reward", "fig4b", lambda r: r.by_alpha["reward"]),
    ("Fig. 4c SP utility per type, Q_n (G_n − R_n)", "fig4c", sp_per_worker),
    ("Fig. 4d worker utility", "fig4d", lambda r: r.by_alpha["worker_utility"]),
)


def share_inside(values: ArrayLike, axis: tuple[float, float]) -> float:
    """The fraction of ``values`` inside the closed interval ``axis`` (to 1e-12)."""
    v = np.asarray(values, dtype=float).ravel()
    lo, hi = axis
    return float(np.mean((v >= lo - 1e-12) & (v <= hi + 1e-12)))


def fit(run: FormulaRun) -> tuple[int, float]:
    """How many quantities lie wholly inside the paper's axes, and the mean share inside."""
    shares = [share_inside(pick(run), PAPER_AXES[key]) for _, key, pick in QUANTITIES]
    return sum(s == 1.0 for s in shares), float(np.mean(shares))


def magnitude_table(columns: dict[str, FormulaRun]) -> Table:
    """The paper's axis of each quantity beside the range of ``columns``' values, share inside."""
    header = ["quantity", "paper's axis", *columns]
    rows = []
    for label, key, pick in QUANTITIES:
        axis = PAPER_AXES[key]
        row = [label, f"{fmt(axis[0])} .. {fmt(axis[1])}"]
        for run in columns.values():
            values = np.asarray(pick(run), dtype=float)
            row.append(
                f"{fmt(float(values.min()))} .. {fmt(float(values.max()))} "
                f"({100 * share_inside(values, axis):.0f} % inside)"
            )
        rows.append(row)
    share_row = ["mean share inside the axes", ""]
    share_row += [f"{100 * fit(run)[1]:.0f} %" for run in columns.values()]
    rows.append(share_row)
    return Table(
        header,
        rows,
        caption="Magnitudes: the paper's axis ranges against this run's values "
        "(share of the values inside each axis)",
    )


def forms_sentence(columns: dict[str, FormulaRun]) -> str:
    """Which closed forms' magnitudes fit the paper's figures, as measured (or that none does)."""
    fits = {name: fit(run) for name, run in columns.items()}
    n = len(QUANTITIES)
    shares = ", ".join(
        f"{100 * share:.0f} % ({name}; {whole} of {n} wholly inside)"
        for name, (whole, share) in fits.items()
    )
    ranked = sorted(fits, key=lambda name: fits[name][1], reverse=True)
    lead = fits[ranked[0]][1] - fits[ranked[1]][1] if len(ranked) > 1 else 0.0
    if lead > 0.1:
        verdict = f"the magnitudes favour {ranked[0]}, by {100 * lead:.0f} points over the next" + (
            ", though none fits every axis" if fits[ranked[0]][0] < n else ""
        )
    else:
        verdict = "the magnitudes do not single out one set (no lead above 10 points)"
    return (
        "the paper does not say which closed forms its figures used. The share of this run's "
        f"values inside the paper's axis ranges (table 'Magnitudes' below) is {shares}: "
        f"{verdict}."
    )

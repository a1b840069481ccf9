"""The figures of a reproduction as PNG bytes with their data as CSV text (in memory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from aoichain.incentive import at_bound
from aoichain.report._document import csv_text
from aoichain.report._figures import heatmaps, line_panels, png_bytes
from aoichain.report.reproduce.compute import Reproduction
from aoichain.report.reproduce.config import PAPER_AXES, SCHEMES, FloatArray
from aoichain.report.reproduce.fig3_claims import bound_tie
from aoichain.report.reproduce.magnitudes import share_inside, sp_per_worker
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import compare, fmt, ids_text


@dataclass(frozen=True)
class Artifact:
    """One figure: file stem, caption, PNG bytes and its data as CSV text."""

    stem: str
    caption: str
    png: bytes
    csv: str


def _mark_own_items(fig: Figure, rep: Reproduction) -> int:
    """Put a star on each drawn type's own item; how many drawn types peak there."""
    peaks = 0
    for ax, run in zip(fig.axes, rep.runs.values(), strict=True):
        lines = ax.get_lines()
        for i, k in enumerate(rep.config.fig2_types):
            own = float(run.utility[k - 1, k - 1])
            ax.plot(
                [k],
                [own],
                linestyle="none",
                marker="*",
                markersize=14,
                markeredgecolor="black",
                color=lines[i].get_color(),
                label="own item" if i == 0 else None,
                zorder=5,
            )
            tol = 1e-6 * max(1.0, float(np.abs(run.utility[k - 1]).max()))
            peaks += own >= float(run.utility[k - 1].max()) - tol
        ax.legend(fontsize=8)
    return peaks


def _fig2(rep: Reproduction) -> Artifact:
    panels, rows = {}, []
    for forms, run in rep.runs.items():
        n = run.utility.shape[0]
        items = np.arange(1, n + 1)
        panels[f"{forms} forms"] = {
            f"Type {k}": (items, run.utility[k - 1]) for k in rep.config.fig2_types
        }
        for k in range(1, n + 1):
            for i in range(1, n + 1):
                rows.append([forms, k, i, float(run.utility[k - 1, i - 1]), k == i])
    fig = line_panels(
        panels,
        xlabel="Contract item (type it is designed for)",
        ylabel="Utility of worker",
        hline=0.0,
    )
    peaks = _mark_own_items(fig, rep)
    drawn = len(rep.config.fig2_types) * len(rep.runs)
    flat = ""
    for forms, run in rep.runs.items():
        ca = run.contracts["CA"]
        if np.ptp(ca.f) == 0 and np.ptp(ca.reward) == 0:
            side = at_bound(ca.c, c_min=run.market.c_min, c_max=run.market.c_max)
            why = f", every type at the bound c = {ca.c[0]:g} slots" if np.all(side != 0) else ""
            flat += (
                f" Under the {forms} forms every item is the same (f = {fmt(ca.f[0])} Hz{why}), "
                "so each curve is flat."
            )
    return Artifact(
        "fig2_worker_utility",
        f"Fig. 2: utility of worker types {ids_text(rep.config.fig2_types)} taking each CA item "
        f"(a = {rep.config.a}, alpha = {rep.config.alpha:g}, {rep.label}). A star marks each "
        f"type's own item; it is a largest value of its curve for {peaks} of the {drawn} "
        "curves drawn." + flat,
        png_bytes(fig),
        csv_text(["formulas", "worker_type", "item", "utility", "own_item"], rows),
    )


def coincidences(rep: Reproduction, data: str) -> str:
    """Which schemes' curves of ``data`` (``sp_by_a`` or ``workers_by_a``) coincide, and why."""
    notes = []
    for forms, run in rep.runs.items():
        series = getattr(run, data)
        for x, y in combinations(SCHEMES, 2):
            if not np.all(compare(series[x], series[y]) == 0):
                continue
            gap = float(np.max(np.abs(run.f_by_a[x] - run.f_by_a[y])))
            c_max = run.market.c_max
            if bound_tie(run, x, y).all():
                side = at_bound(run.c_by_a[x], c_min=run.market.c_min, c_max=c_max)
                where = f"c_max = {c_max:g}" if np.all(side > 0) else "a bound of c"
                why = (
                    f"every type sits at {where} slots in both at every a, so both offer the "
                    "same menu with the same eq. (18) rewards"
                )
            elif gap <= 1e-12:
                why = f"both offer the same menu at every a (max |Δf| = {fmt(gap)} Hz)"
            else:
                why = f"their menus differ (max |Δf| = {fmt(gap)} Hz) but the values agree"
            notes.append(f"Under the {forms} forms {x} and {y} coincide: {why}.")
    return (" " + " ".join(notes)) if notes else ""


def _fig3(rep: Reproduction, which: str) -> Artifact:
    data = "sp_by_a" if which == "a" else "workers_by_a"
    label = "Utility of the service provider" if which == "a" else "Utilities of workers (total)"
    panels, rows = {}, []
    for forms, run in rep.runs.items():
        series = getattr(run, data)
        panels[f"{forms} forms"] = {str(s): (run.a_values, series[s]) for s in SCHEMES}
        for k, a in enumerate(run.a_values):
            for s in SCHEMES:
                rows.append(
                    [
                        forms,
                        int(a),
                        s,
                        float(run.sp_by_a[s][k]),
                        float(run.workers_by_a[s][k]),
                        float(np.mean(run.c_by_a[s][k])),
                    ]
                )
    fig = line_panels(panels, xlabel="Duration parameter a (slots)", ylabel=label)
    stem = "fig3a_sp_utility" if which == "a" else "fig3b_workers_utility"
    return Artifact(
        stem,
        f"Fig. 3{which}: {label.lower()} against a for CA, CC and CS "
        f"(alpha = {rep.config.alpha:g}, {rep.label})." + coincidences(rep, data),
        png_bytes(fig),
        csv_text(["formulas", "a", "scheme", "sp_utility", "workers_utility", "mean_c"], rows),
    )


# stem, CSV column, colour-bar label, cell format, the plotted grid (alphas x types)
_FIG4: dict[str, tuple[str, str, str, str, Callable[[FormulaRun], FloatArray]]] = {
    "a": (
        "fig4a_update_frequency",
        "f",
        "Update frequency f (Hz)",
        "{:.4f}",
        lambda r: r.by_alpha["f"],
    ),
    "b": ("fig4b_reward", "reward", "Reward R", "{:.3g}", lambda r: r.by_alpha["reward"]),
    "c": (
        "fig4c_sp_utility_per_type",
        "q_times_g_minus_r",
        "SP utility per type, Q_n·(G_n − R_n)",
        "{:.3g}",
        sp_per_worker,
    ),
    "d": (
        "fig4d_worker_utility",
        "worker_utility",
        "Utility of one worker of the type",
        "{:.3g}",
        lambda r: r.by_alpha["worker_utility"],
    ),
}


def _fig4(rep: Reproduction, which: str) -> Artifact:
    stem, key, label, cell, pick = _FIG4[which]
    panels, rows = {}, []
    n_types = 0
    for forms, run in rep.runs.items():
        grid = pick(run)
        n_types = grid.shape[1]
        panels[f"{forms} forms"] = grid
        for k, alpha in enumerate(run.alphas):
            for n in range(n_types):
                extra = [float(run.by_alpha["c"][k, n])] if key == "f" else []
                rows.append([forms, float(alpha), n + 1, float(grid[k, n]), *extra])
    fig = heatmaps(
        panels,
        row_labels=[f"{a:g}" for a in rep.config.alphas],
        col_labels=[str(n) for n in range(1, n_types + 1)],
        xlabel="Worker type",
        ylabel="Preference factor alpha",
        value_label=label,
        fmt=cell,
    )
    header = ["formulas", "alpha", "worker_type", key] + (["c"] if key == "f" else [])
    workers = next(iter(rep.runs.values())).market.workers
    scale = ""
    if which == "c":
        values = np.concatenate([g.ravel() for g in panels.values()])
        lo, hi = PAPER_AXES["fig4c"]
        scale = (
            f" Eq. (13)'s per-type term M·Q_n·(G_n − R_n) divided by M = {workers}: M of these "
            f"add up to Fig. 3a's total. {100 * share_inside(values, (lo, hi)):.0f} % of them lie "
            f"inside the paper's axis {lo:g}..{hi:g}; of M·Q_n·(G_n − R_n), "
            f"{100 * share_inside(workers * values, (lo, hi)):.0f} % would."
        )
    return Artifact(
        stem,
        f"Fig. 4{which}: {label} of the CA contract against alpha and type "
        f"(a = {rep.config.a}, {rep.label})." + scale,
        png_bytes(fig),
        csv_text(header, rows),
    )


def _sim_figure(rep: Reproduction) -> Artifact:
    rows = rep.simulation.rows
    a_show = rep.config.sim_a_shown
    mask = rows["a"] == a_show
    c = rows["c"][mask]
    panels = {
        f"Latency, a = {a_show}": {
            "simulated": (c, rows["sim_latency"][mask]),
            "corrected form": (c, rows["corrected_latency"][mask]),
            "paper form (eq. 4)": (c, rows["paper_latency"][mask]),
        },
        f"AoI, a = {a_show}": {
            "simulated": (c, rows["sim_aoi"][mask]),
            "corrected form": (c, rows["corrected_aoi"][mask]),
            "paper form (eq. 5)": (c, rows["paper_aoi"][mask]),
        },
    }
    styles: dict[str, dict[str, Any]] = {
        "simulated": {"linestyle": "none", "marker": "o", "markersize": 6, "color": "#000000"},
        "corrected form": {"marker": None, "linewidth": 2.0, "color": "#009E73"},
        "paper form (eq. 4)": {"marker": None, "linestyle": "--", "color": "#D55E00"},
        "paper form (eq. 5)": {"marker": None, "linestyle": "--", "color": "#D55E00"},
    }
    fig = line_panels(
        panels, xlabel="Collection slots c", ylabel="Seconds (log scale)", logy=True, styles=styles
    )
    header = list(rows)
    table = [[float(rows[k][i]) for k in header] for i in range(rows["a"].size)]
    return Artifact(
        "aoi_latency_check",
        f"Slot-by-slot simulation ({rep.simulation.n_slots:,} requests) against the closed forms "
        f"(t = {rep.simulation.t:g} s).",
        png_bytes(fig),
        csv_text(header, table),
    )


def artifact(rep: Reproduction, name: str) -> Artifact:
    """The figure called ``name`` (one of :data:`FIGURES`)."""
    if name == "2":
        return _fig2(rep)
    if name.startswith("3"):
        return _fig3(rep, name[1])
    if name.startswith("4"):
        return _fig4(rep, name[1])
    return _sim_figure(rep)


def contracts_csv(rep: Reproduction) -> str:
    """The CA, CC and CS contracts at the default market, one row per type."""
    header = [
        "formulas",
        "scheme",
        "worker_type",
        "gamma",
        "q",
        "c",
        "theta_s",
        "f_hz",
        "reward",
        "worker_utility",
        "aoi_s",
        "latency_s",
        "sp_utility",
    ]
    rows = []
    for forms, run in rep.runs.items():
        for scheme, ct in run.contracts.items():
            for n in range(len(ct.f)):
                rows.append(
                    [
                        forms,
                        scheme,
                        n + 1,
                        float(ct.gamma[n]),
                        float(ct.q[n]),
                        float(ct.c[n]),
                        float(ct.theta[n]),
                        float(ct.f[n]),
                        float(ct.reward[n]),
                        float(ct.worker_utility[n]),
                        float(ct.aoi[n]),
                        float(ct.latency[n]),
                        float(ct.sp_utility[n]),
                    ]
                )
    return csv_text(header, rows)

"""The figures of a reproduction as PNG bytes with their data as CSV text (in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aoichain.report._document import csv_text
from aoichain.report._figures import heatmaps, line_panels, png_bytes
from aoichain.report.reproduce.compute import Reproduction
from aoichain.report.reproduce.config import SCHEMES
from aoichain.report.reproduce.verdicts import ids_text


@dataclass(frozen=True)
class Artifact:
    """One figure: file stem, caption, PNG bytes and its data as CSV text."""

    stem: str
    caption: str
    png: bytes
    csv: str


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
    return Artifact(
        "fig2_worker_utility",
        f"Fig. 2: utility of worker types {ids_text(rep.config.fig2_types)} taking each CA item "
        f"(a = {rep.config.a}, alpha = {rep.config.alpha:g}).",
        png_bytes(fig),
        csv_text(["formulas", "worker_type", "item", "utility", "own_item"], rows),
    )


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
        f"(alpha = {rep.config.alpha:g}).",
        png_bytes(fig),
        csv_text(["formulas", "a", "scheme", "sp_utility", "workers_utility", "mean_c"], rows),
    )


_FIG4 = {
    "a": ("fig4a_update_frequency", "f", "Update frequency f (Hz)", "{:.4f}"),
    "b": ("fig4b_reward", "reward", "Reward R", "{:.3g}"),
    "c": (
        "fig4c_sp_utility_per_type",
        "sp_utility",
        "SP utility from the type, M·Q_n·(G_n − R_n)",
        "{:.3g}",
    ),
    "d": ("fig4d_worker_utility", "worker_utility", "Utility of one worker of the type", "{:.3g}"),
}


def _fig4(rep: Reproduction, which: str) -> Artifact:
    stem, key, label, cell = _FIG4[which]
    panels, rows = {}, []
    n_types = 0
    for forms, run in rep.runs.items():
        grid = run.by_alpha[key]
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
    return Artifact(
        stem,
        f"Fig. 4{which}: {label} of the CA contract against alpha and type (a = {rep.config.a}).",
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

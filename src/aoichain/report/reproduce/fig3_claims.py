"""Claims of Fig. 3: the SP's and the workers' utilities against the idle phase ``a``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive import collection_slots
from aoichain.report.reproduce.config import SCHEMES, FloatArray
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import (
    Claim,
    Verdict,
    compare,
    fmt,
    kind_by_count,
    monotone,
    seq_text,
    unimodal_peak,
)


def _series_text(name: str, a_values: FloatArray, y: FloatArray) -> str:
    k, _ = unimodal_peak(y)
    return (
        f"{name}: {monotone(y)} over a = {a_values[0]:g}..{a_values[-1]:g} "
        f"({fmt(y[0])} → {fmt(y[-1])}), maximum {fmt(y[k])} at a = {a_values[k]:g}"
    )


def _pinned_text(run: FormulaRun, mask: NDArray[np.bool_]) -> str:
    """Why CA and CS coincide: both put every type at a bound of c."""
    if not mask.any():
        return ""
    c_ca, c_cs = run.c_by_a["CA"][mask], run.c_by_a["CS"][mask]
    hi = run.market.theta_bounds[1]
    c_min = float(run.market.c_min)
    c_max = float(collection_slots(hi, t=run.market.t, a=run.market.a))
    same = float(np.max(np.abs(run.f_by_a["CA"][mask] - run.f_by_a["CS"][mask])))
    bound = ""
    if np.allclose(c_ca, c_max) and np.allclose(c_cs, c_max):
        bound = f" (every type at the bound c = c_max = {c_max:g} slots)"
    elif np.allclose(c_ca, c_min) and np.allclose(c_cs, c_min):
        bound = f" (every type at the bound c = c_min = {c_min:g} slots)"
    return (
        " Where they tie, both schemes choose the same frequencies "
        f"(max |Δf| = {fmt(same)} Hz){bound}."
    )


def fig3_claims(runs: dict[str, FormulaRun]) -> list[Claim]:
    """The shape of the SP's utility in ``a`` and the order of CA, CC and CS (Fig. 3)."""
    shape: list[Verdict] = []
    optimum: list[Verdict] = []
    cc_best: list[Verdict] = []
    cc_zero: list[Verdict] = []
    ca_cs: list[Verdict] = []
    cs_best: list[Verdict] = []
    ca_cc: list[Verdict] = []
    for forms, run in runs.items():
        av = run.a_values
        sp, wk = run.sp_by_a, run.workers_by_a
        total = av.size
        peaks = {s: unimodal_peak(sp[s]) for s in SCHEMES}
        n_unimodal = sum(ok for _, ok in peaks.values())
        shape.append(
            Verdict(
                kind_by_count(n_unimodal, len(SCHEMES)),
                "; ".join(_series_text(s, av, sp[s]) for s in SCHEMES) + ".",
                {
                    s: {"sp_utility": sp[s].tolist(), "argmax_a": float(av[peaks[s][0]])}
                    for s in SCHEMES
                },
                forms,
            )
        )
        k_ca = peaks["CA"][0]
        interior = 0 < k_ca < total - 1
        optimum.append(
            Verdict(
                "holds" if interior else "fails",
                f"CA's SP utility is largest at a = {av[k_ca]:g} "
                + (
                    "(inside the range)."
                    if interior
                    else "(an end of the range: no interior optimum)."
                ),
                {"argmax_a": float(av[k_ca]), "a_values": av.tolist()},
                forms,
            )
        )

        above = (compare(sp["CC"], sp["CA"]) > 0) & (compare(sp["CC"], sp["CS"]) > 0)
        cc_best.append(
            Verdict(
                kind_by_count(int(above.sum()), total),
                f"CC > CA and CC > CS at {int(above.sum())} of {total} values of a; "
                f"smallest lead of CC over CA: {fmt(float(np.min(sp['CC'] - sp['CA'])))}.",
                {
                    "cc_minus_ca": (sp["CC"] - sp["CA"]).tolist(),
                    "cc_minus_cs": (sp["CC"] - sp["CS"]).tolist(),
                },
                forms,
            )
        )
        zero = np.abs(wk["CC"]) <= 1e-6 * np.maximum(1.0, np.abs(sp["CC"]))
        cc_zero.append(
            Verdict(
                kind_by_count(int(zero.sum()), total),
                "Workers' total utility under CC: largest |value| "
                f"{fmt(float(np.abs(wk['CC']).max()))} over the {total} values of a.",
                {"workers_cc": wk["CC"].tolist()},
                forms,
            )
        )
        order = compare(sp["CA"], sp["CS"])
        ties = order == 0
        ca_cs.append(
            Verdict(
                kind_by_count(int((order > 0).sum()), total),
                f"CA > CS at {int((order > 0).sum())} of {total} values of a, equal at "
                f"{int(ties.sum())}, lower at {int((order < 0).sum())}; CA − CS ranges "
                f"{fmt(float(np.min(sp['CA'] - sp['CS'])))} .. "
                f"{fmt(float(np.max(sp['CA'] - sp['CS'])))}." + _pinned_text(run, ties),
                {"ca_minus_cs": (sp["CA"] - sp["CS"]).tolist()},
                forms,
            )
        )
        best = (compare(wk["CS"], wk["CA"]) > 0) & (compare(wk["CS"], wk["CC"]) > 0)
        ties_w = compare(wk["CS"], wk["CA"]) == 0
        cs_best.append(
            Verdict(
                kind_by_count(int(best.sum()), total),
                f"CS > CA and CS > CC (workers) at {int(best.sum())} of {total} values of a; "
                f"CS − CA ranges {fmt(float(np.min(wk['CS'] - wk['CA'])))} .. "
                f"{fmt(float(np.max(wk['CS'] - wk['CA'])))}." + _pinned_text(run, ties_w),
                {"cs_minus_ca": (wk["CS"] - wk["CA"]).tolist()},
                forms,
            )
        )
        better = compare(wk["CA"], wk["CC"]) > 0
        ca_cc.append(
            Verdict(
                kind_by_count(int(better.sum()), total),
                f"CA > CC (workers) at {int(better.sum())} of {total} values of a; workers' "
                f"utility under CA: {seq_text(wk['CA'])}.",
                {"workers_ca": wk["CA"].tolist(), "workers_cc": wk["CC"].tolist()},
                forms,
            )
        )
    return [
        Claim(
            "fig3.sp-first-increases-then-decreases",
            "Sec. V, Fig. 3a",
            "The utility of the service provider first increases and then decreases with the "
            "increasing duration parameter a.",
            tuple(shape),
        ),
        Claim(
            "fig3.optimal-a-exists",
            "Sec. V, Fig. 3a",
            "There exists an optimal duration parameter a (an interior maximum of the SP's "
            "utility under CA).",
            tuple(optimum),
        ),
        Claim(
            "fig3.cc-best-for-sp",
            "Sec. V, Fig. 3a",
            "For a given a, the service provider has the best utility under CC.",
            tuple(cc_best),
        ),
        Claim(
            "fig3.cc-zero-for-workers",
            "Sec. V, Fig. 3b",
            "Under CC the service provider sets the benefit of workers to zero.",
            tuple(cc_zero),
        ),
        Claim(
            "fig3.ca-beats-cs-for-sp",
            "Sec. V, Fig. 3a",
            "The proposed CA mechanism has better SP utility than the CS mechanism.",
            tuple(ca_cs),
        ),
        Claim(
            "fig3.cs-best-for-workers",
            "Sec. V, Fig. 3b",
            "The workers obtain the optimal utilities under the CS mechanism.",
            tuple(cs_best),
        ),
        Claim(
            "fig3.ca-beats-cc-for-workers",
            "Sec. V, Fig. 3b",
            "The utilities of the workers under CA are better than those under CC.",
            tuple(ca_cc),
        ),
    ]

"""Claims of Fig. 3: the SP's and the workers' utilities against the idle phase ``a``."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive import at_bound
from aoichain.report.reproduce.config import SCHEMES, FloatArray
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import (
    Claim,
    Verdict,
    compare,
    fmt,
    judge,
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


def bound_tie(run: FormulaRun, x: str, y: str) -> NDArray[np.bool_]:
    """Per value of ``a``: do ``x`` and ``y`` offer one menu with every type at a bound of c?

    Then their utilities tie because the bound binds for every type, not
    because the model makes them equal: a comparison of the two there is
    decided by the bound.
    """
    market = run.market
    c_x, c_y = run.c_by_a[x], run.c_by_a[y]
    side_x = at_bound(c_x, c_min=market.c_min, c_max=market.c_max)
    side_y = at_bound(c_y, c_min=market.c_min, c_max=market.c_max)
    return np.asarray(np.all((side_x != 0) & (side_x == side_y), axis=1), dtype=bool)


def _outcomes(
    run: FormulaRun, values: dict[str, FloatArray], pairs: tuple[tuple[str, str], ...]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per value of ``a``: does every ``x > y`` of ``pairs`` hold, and if not, did a bound decide?

    A value of ``a`` is bound-decided when every pair that does not come out
    ``x > y`` there is a tie of two menus pinned at a bound (:func:`bound_tie`).
    """
    ok = np.ones(run.a_values.size, dtype=bool)
    bound = np.ones(run.a_values.size, dtype=bool)
    for x, y in pairs:
        order = compare(values[x], values[y])
        ok &= order > 0
        bound &= (order > 0) | ((order == 0) & bound_tie(run, x, y))
    return ok, bound & ~ok


def _pinned_text(run: FormulaRun, x: str, y: str, ties: NDArray[np.bool_]) -> str:
    """Why ``x`` and ``y`` tie where they do: the same menu, and whether a bound of c binds."""
    if not ties.any():
        return ""
    same = float(np.max(np.abs(run.f_by_a[x][ties] - run.f_by_a[y][ties])))
    pinned = bound_tie(run, x, y)[ties]
    market = run.market
    side = at_bound(run.c_by_a[x][ties], c_min=market.c_min, c_max=market.c_max)
    text = f" Where they tie, both schemes choose the same frequencies (max |Δf| = {fmt(same)} Hz)"
    if not pinned.all():
        return text + "."
    if np.all(side > 0):
        where = f"c = c_max = {market.c_max:g} slots"
    elif np.all(side < 0):
        where = f"c = c_min = {market.c_min:g} slots"
    else:
        where = f"c = c_min or c_max ({market.c_min:g} or {market.c_max:g} slots)"
    return (
        text + f", every type at the bound {where}: the bound, not the model, decides these "
        f"{int(ties.sum())} values of a, so they count as not decidable."
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

        above, pinned = _outcomes(run, sp, (("CC", "CA"), ("CC", "CS")))
        cc_best.append(
            Verdict(
                judge(int(above.sum()), int(pinned.sum()), total),
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
        better, pinned = _outcomes(run, sp, (("CA", "CS"),))
        ca_cs.append(
            Verdict(
                judge(int(better.sum()), int(pinned.sum()), total),
                f"CA > CS at {int((order > 0).sum())} of {total} values of a, equal at "
                f"{int(ties.sum())}, lower at {int((order < 0).sum())}; CA − CS ranges "
                f"{fmt(float(np.min(sp['CA'] - sp['CS'])))} .. "
                f"{fmt(float(np.max(sp['CA'] - sp['CS'])))}." + _pinned_text(run, "CA", "CS", ties),
                {"ca_minus_cs": (sp["CA"] - sp["CS"]).tolist(), "bound_decided": pinned.tolist()},
                forms,
            )
        )
        best, pinned = _outcomes(run, wk, (("CS", "CA"), ("CS", "CC")))
        ties_w = compare(wk["CS"], wk["CA"]) == 0
        cs_best.append(
            Verdict(
                judge(int(best.sum()), int(pinned.sum()), total),
                f"CS > CA and CS > CC (workers) at {int(best.sum())} of {total} values of a; "
                f"CS − CA ranges {fmt(float(np.min(wk['CS'] - wk['CA'])))} .. "
                f"{fmt(float(np.max(wk['CS'] - wk['CA'])))}."
                + _pinned_text(run, "CS", "CA", ties_w),
                {"cs_minus_ca": (wk["CS"] - wk["CA"]).tolist(), "bound_decided": pinned.tolist()},
                forms,
            )
        )
        better, pinned = _outcomes(run, wk, (("CA", "CC"),))
        ca_cc.append(
            Verdict(
                judge(int(better.sum()), int(pinned.sum()), total),
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

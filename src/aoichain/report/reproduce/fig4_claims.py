"""Claims of Fig. 4 (the preference factor alpha), and whether the figures agree with each other.

The consistency claims compare Fig. 4 with Fig. 3a (per-type against total
SP utility) and with Table I (the update frequencies its ranges allow).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive import at_bound, cycle, performance_slope_in_alpha
from aoichain.report.reproduce.config import (
    PAPER_AXES,
    TABLE_I_MAX_SLOTS,
    FloatArray,
    ReproduceConfig,
    bound_label,
)
from aoichain.report.reproduce.magnitudes import share_inside, sp_per_worker
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import (
    Claim,
    Verdict,
    VerdictKind,
    compare,
    fmt,
    ids_text,
    judge,
    monotone,
    seq_text,
)


def _per_type_trend(
    values: FloatArray, label: str, unit: str, pinned: NDArray[np.bool_] | None = None
) -> tuple[VerdictKind, str, dict[str, Any]]:
    """Does ``values`` (alphas x types) increase with alpha for every type?

    A type agrees when every step from one alpha to the next rises. ``pinned``
    (alphas - 1 x types) marks the steps at which the type's collection phase
    sits at the same bound of c at both ends: a step that stays equal there is
    decided by the bound. A type with a step that falls, or stays equal where
    no bound binds, goes against the claim; one whose only non-rising steps
    are bound-decided is not decidable (:func:`judge`).
    """
    n = values.shape[1]
    steps = compare(values[1:], values[:-1])
    held = np.zeros(steps.shape, dtype=bool) if pinned is None else pinned
    bound_step = held & (steps == 0)
    against = np.any((steps < 0) | ((steps == 0) & ~held), axis=0)
    bound = ~against & np.any(bound_step, axis=0)
    up = ~against & ~bound
    shapes = [monotone(values[:, k]) for k in range(n)]
    rises = sum(s in ("increasing", "non-decreasing") for s in shapes)
    down = sum(s in ("decreasing", "non-increasing") for s in shapes)
    flat = sum(s == "constant" for s in shapes)
    mixed = n - rises - down - flat
    kind = judge(int(up.sum()), int(bound.sum()), n)
    first, last = values[0], values[-1]
    text = (
        f"As alpha goes from the first to the last value, {label} rises for {rises} of {n} types, "
        f"falls for {down}, stays constant for {flat}"
        + (f", goes both ways for {mixed}" if mixed else "")
        + f"; type 1: {fmt(first[0])} → {fmt(last[0])}{unit}, type {n}: {fmt(first[-1])} → "
        f"{fmt(last[-1])}{unit}."
    )
    bound_types = [int(k) + 1 for k in np.flatnonzero(bound)]
    if bound_types:
        text += (
            f" Type(s) {ids_text(bound_types)} stop rising only where their collection phase "
            "sits at the same bound of c at neighbouring alphas: the bound, not the model, "
            "decides those types, so they count as not decidable."
        )
    numbers = {
        "shapes": shapes,
        "bound_decided_types": bound_types,
        "first_alpha": first.tolist(),
        "last_alpha": last.tolist(),
    }
    return kind, text, numbers


def _pinned_steps(run: FormulaRun) -> NDArray[np.bool_]:
    """Steps between neighbouring alphas at which a type's c sits at the same bound at both ends."""
    side = at_bound(run.by_alpha["c"], c_min=run.market.c_min, c_max=run.market.c_max)
    return np.asarray((side[1:] != 0) & (side[1:] == side[:-1]), dtype=bool)


def fig4_claims(runs: dict[str, FormulaRun]) -> list[Claim]:
    """What grows with alpha, per type, and whether the SP's utility is linear in it (Fig. 4)."""
    f_up: list[Verdict] = []
    r_up: list[Verdict] = []
    u_up: list[Verdict] = []
    sp_up: list[Verdict] = []
    phase_up: list[Verdict] = []
    linear: list[Verdict] = []
    for forms, run in runs.items():
        ba = run.by_alpha
        pinned = _pinned_steps(run)
        for out, key, label, unit in (
            (f_up, "f", "the update frequency f", " Hz"),
            (r_up, "reward", "the reward", ""),
            (u_up, "worker_utility", "the worker's utility", ""),
            (phase_up, "c", "the update phase c", " slots"),
        ):
            kind, text, numbers = _per_type_trend(ba[key], label, unit, pinned)
            if key == "c":
                f_shape = _per_type_trend(ba["f"], "f", " Hz", pinned)[0]
                text += (
                    " At fixed a, f = 1/((c + a) t) falls when c rises, so a longer update phase "
                    "and more update cycles cannot both follow from a larger alpha"
                    + (f"; in this run f's verdict is '{f_shape}' and c's is '{kind}'.")
                )
            out.append(Verdict(kind, text, numbers, forms))

        total = ba["sp_total"]
        per_type = _per_type_trend(ba["sp_utility"], "the SP utility from the type", "", pinned)
        total_shape = monotone(total)
        kind_total: VerdictKind = (
            "holds"
            if total_shape == "increasing" and per_type[0] == "holds"
            else "partly"
            if total_shape in ("increasing", "non-decreasing") or per_type[0] != "fails"
            else "fails"
        )
        sp_up.append(
            Verdict(
                kind_total,
                f"Total SP utility over alpha = {ids_text(run.alphas)}: {seq_text(total)} "
                f"({total_shape}). Per type: {per_type[1]}",
                {"sp_total": total.tolist(), **per_type[2]},
                forms,
            )
        )

        market = run.market
        # K - A_n > H - D_n: the SP's performance rises with alpha
        cond = performance_slope_in_alpha(ba["aoi"], ba["latency"], market.K, market.H) > 0
        chord = total[0] + (total[-1] - total[0]) * (run.alphas - run.alphas[0]) / (
            run.alphas[-1] - run.alphas[0]
        )
        spread = float(np.ptp(total)) or 1.0
        deviation = float(np.max(np.abs(total - chord)) / spread)
        is_linear = deviation <= 0.01
        up = total_shape == "increasing"
        if cond.all():
            kind_lin: VerdictKind = "holds" if up and is_linear else ("partly" if up else "fails")
        else:
            kind_lin = "partly" if up else "fails"
        linear.append(
            Verdict(
                kind_lin,
                f"K − A_n > H − D_n holds at {int(cond.sum())} of {cond.size} (alpha, type) "
                f"points; the total SP utility is {total_shape} in alpha and departs from the "
                f"straight line through its ends by up to {100 * deviation:.2g} % of its range "
                f"({'linear' if is_linear else 'not linear'} at a 1 % tolerance)."
                + (
                    ""
                    if not cond.all()
                    else " The converse case (K − A_n < H − D_n) does not occur here."
                ),
                {
                    "condition_points": int(cond.sum()),
                    "points": int(cond.size),
                    "max_deviation_from_line": deviation,
                },
                forms,
            )
        )
    return [
        Claim(
            "fig4.frequency-increases-with-alpha",
            "Sec. V, Fig. 4a",
            "For a fixed type, the increasing alpha brings a larger number of update cycles.",
            tuple(f_up),
        ),
        Claim(
            "fig4.reward-increases-with-alpha",
            "Sec. V, Fig. 4b",
            "For a fixed type, the increasing alpha brings a larger reward.",
            tuple(r_up),
        ),
        Claim(
            "fig4.update-phase-increases-with-alpha",
            "Sec. V, Fig. 4 (explanation)",
            "The growing alpha ... causes the increase of the update phase.",
            tuple(phase_up),
        ),
        Claim(
            "fig4.worker-utility-increases-with-alpha",
            "Sec. V, Fig. 4d",
            "As a result, the utilities of the workers also grow (with alpha).",
            tuple(u_up),
        ),
        Claim(
            "fig4.sp-utility-increases-with-alpha",
            "Sec. V, Fig. 4c",
            "The increasing alpha improves the utility of the service provider as well.",
            tuple(sp_up),
        ),
        Claim(
            "fig4.sp-linear-in-alpha",
            "Sec. V, Fig. 4c",
            "Alpha has a linearly increasing relationship with the utility of the service "
            "provider when K − A_n > H − D_n for all n.",
            tuple(linear),
        ),
    ]


def consistency_claims(config: ReproduceConfig, runs: dict[str, FormulaRun]) -> list[Claim]:
    """Do Fig. 4c's bars add up to Fig. 3a, and can Fig. 4a's axis come from Table I?"""
    any_run = next(iter(runs.values()))
    market = any_run.market
    n_types = len(market.gammas)
    lo3, hi3 = PAPER_AXES["fig3a"]
    lo4c, hi4c = PAPER_AXES["fig4c"]
    bound = n_types * hi4c
    per_type_scale = market.workers * float(np.max(market.probs))
    verdicts = []
    for forms, run in runs.items():
        k = int(np.argmin(np.abs(run.alphas - config.alpha)))
        ours_sum = float(run.by_alpha["sp_utility"][k].sum())
        ours_total = float(run.contracts["CA"].sp_utility_total)
        per_worker = sp_per_worker(run)
        inside = share_inside(per_worker, (lo4c, hi4c))
        verdicts.append(
            Verdict(
                "fails" if bound < lo3 else "holds",
                f"Fig. 4c's bars stop at {hi4c:g}, so its {n_types} per-type SP utilities add "
                f"up to at most {bound:g}, while Fig. 3a puts the total in {lo3:g}..{hi3:g} at "
                "every a. "
                f"By eq. (13) the per-type utilities M·Q_n·(G_n − R_n) must add up to the total "
                f"(in this run at a = {config.a}, alpha = {run.alphas[k]:g}: their sum = "
                f"{fmt(ours_sum)}, Fig. 3a's CA value = {fmt(ours_total)}). The figures agree "
                f"only if Fig. 4c omits a factor of at least {lo3 / bound:.3g} "
                f"(e.g. plots Q_n·(G_n − R_n), a factor M = {market.workers}); M·Q_n is "
                f"{per_type_scale:g} here. This run's Q_n·(G_n − R_n) over Fig. 4's grid lie in "
                f"{fmt(float(per_worker.min()))} .. {fmt(float(per_worker.max()))} "
                f"({100 * inside:.0f} % inside Fig. 4c's axis), which is why this report's "
                "Fig. 4c plots that scale.",
                {
                    "fig4c_axis_max": hi4c,
                    "fig3a_axis": [lo3, hi3],
                    "max_sum_of_fig4c": bound,
                    "this_run_sum_fig4c": ours_sum,
                    "this_run_fig3a_ca": ours_total,
                    "q_times_g_minus_r_range": [float(per_worker.min()), float(per_worker.max())],
                    "q_times_g_minus_r_share_inside_axis": inside,
                },
                forms,
            )
        )
    top = TABLE_I_MAX_SLOTS
    longest = float(cycle(top, t=market.t, a=config.a))
    f_floor = 1.0 / longest
    f_floor_any = 1.0 / float(cycle(top, t=market.t, a=top))
    hi4a = PAPER_AXES["fig4a"][1]
    if f_floor > hi4a:
        tail = f"Fig. 4a's values cannot come from Table I's ranges at a = {config.a}."
    else:
        tail = f"Fig. 4a's axis is compatible with Table I's ranges at a = {config.a}."
    ours = {
        forms: (run.by_alpha["f"], share_inside(run.by_alpha["f"], PAPER_AXES["fig4a"]))
        for forms, run in runs.items()
    }
    this_run = "; ".join(
        f"{forms} forms {fmt(float(f.min()))} .. {fmt(float(f.max()))} Hz "
        f"({100 * share:.0f} % inside the axis)"
        for forms, (f, share) in ours.items()
    )
    fig4a = Verdict(
        "fails" if f_floor > hi4a else "holds",
        f"Fig. 4a's axis stops at {hi4a:g} Hz, but with c ≤ {top} slots (Table I), "
        f"a = {config.a} and t = {market.t:g} s every cycle is at most {longest:g} s, so "
        f"f ≥ {fmt(f_floor)} Hz; even with a = {top} (Table I's largest), f ≥ "
        f"{fmt(f_floor_any)} Hz. " + tail + f" This run ({bound_label(market.c_max)}) gives "
        f"CA frequencies over Fig. 4's grid of {this_run}.",
        {
            "fig4a_axis_max": hi4a,
            "f_floor_at_a": f_floor,
            "f_floor_any_a": f_floor_any,
            "this_run_share_inside_axis": {forms: share for forms, (_, share) in ours.items()},
        },
        None,
    )
    return [
        Claim(
            "consistency.fig3a-vs-fig4c",
            "Sec. V, Figs. 3a and 4c",
            "Fig. 3a and Fig. 4c show the same SP utility (Fig. 4c per type, Fig. 3a in total).",
            tuple(verdicts),
        ),
        Claim(
            "consistency.fig4a-vs-table1",
            "Sec. V, Fig. 4a and Table I",
            "Fig. 4a's update frequencies come from the setting of Table I "
            "(c in [1, 15], t = 2 s).",
            (fig4a,),
        ),
    ]

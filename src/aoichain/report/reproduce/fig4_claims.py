"""Claims of Fig. 4 (the preference factor alpha), and whether the figures agree with each other.

The consistency claims compare Fig. 4 with Fig. 3a (per-type against total
SP utility) and with Table I (the update frequencies its ranges allow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aoichain.incentive import cycle, performance_slope_in_alpha
from aoichain.report.reproduce.config import (
    PAPER_AXES,
    TABLE_I_MAX_SLOTS,
    FloatArray,
    ReproduceConfig,
)
from aoichain.report.reproduce.numbers import FormulaRun
from aoichain.report.reproduce.verdicts import (
    Claim,
    Verdict,
    VerdictKind,
    fmt,
    ids_text,
    kind_by_count,
    monotone,
    seq_text,
)


def _per_type_trend(
    values: FloatArray, label: str, unit: str
) -> tuple[VerdictKind, str, dict[str, Any]]:
    """Does ``values`` (alphas x types) increase with alpha for every type?"""
    n = values.shape[1]
    shapes = [monotone(values[:, k]) for k in range(n)]
    up = sum(s in ("increasing", "non-decreasing") for s in shapes)
    down = sum(s in ("decreasing", "non-increasing") for s in shapes)
    flat = sum(s == "constant" for s in shapes)
    mixed = n - up - down - flat
    kind = kind_by_count(up, n)
    first, last = values[0], values[-1]
    text = (
        f"As alpha goes from the first to the last value, {label} rises for {up} of {n} types, "
        f"falls for {down}, stays constant for {flat}"
        + (f", goes both ways for {mixed}" if mixed else "")
        + f"; type 1: {fmt(first[0])} → {fmt(last[0])}{unit}, type {n}: {fmt(first[-1])} → "
        f"{fmt(last[-1])}{unit}."
    )
    numbers = {"shapes": shapes, "first_alpha": first.tolist(), "last_alpha": last.tolist()}
    return kind, text, numbers


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
        for out, key, label, unit in (
            (f_up, "f", "the update frequency f", " Hz"),
            (r_up, "reward", "the reward", ""),
            (u_up, "worker_utility", "the worker's utility", ""),
            (phase_up, "c", "the update phase c", " slots"),
        ):
            kind, text, numbers = _per_type_trend(ba[key], label, unit)
            if key == "c":
                f_shape = _per_type_trend(ba["f"], "f", " Hz")[0]
                text += (
                    " At fixed a, f = 1/((c + a) t) falls when c rises, so a longer update phase "
                    "and more update cycles cannot both follow from a larger alpha"
                    + (f"; in this run f's verdict is '{f_shape}' and c's is '{kind}'.")
                )
            out.append(Verdict(kind, text, numbers, forms))

        total = ba["sp_total"]
        per_type = _per_type_trend(ba["sp_utility"], "the SP utility from the type", "")
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
    hi4c = PAPER_AXES["fig4c"][1]
    bound = n_types * hi4c
    per_type_scale = market.workers * float(np.max(market.probs))
    verdicts = []
    for forms, run in runs.items():
        k = int(np.argmin(np.abs(run.alphas - config.alpha)))
        ours_sum = float(run.by_alpha["sp_utility"][k].sum())
        ours_total = float(run.contracts["CA"].sp_utility_total)
        verdicts.append(
            Verdict(
                "fails" if bound < lo3 else "holds",
                f"Fig. 4c's bars stop at {hi4c:g}, so its {n_types} per-type SP utilities add "
                f"up to at most {bound:g}, while Fig. 3a puts the total in {lo3:g}..{hi3:g} at "
                "every a. "
                f"By eq. (13) the per-type utilities M·Q_n·(G_n − R_n) must add up to the total "
                f"(in this run at a = {config.a}, alpha = {run.alphas[k]:g}: sum of Fig. 4c = "
                f"{fmt(ours_sum)}, Fig. 3a's CA value = {fmt(ours_total)}). The figures agree "
                f"only if Fig. 4c omits a factor of at least {lo3 / bound:.3g} "
                f"(e.g. plots Q_n·(G_n − R_n), a factor M = {market.workers}); M·Q_n is "
                f"{per_type_scale:g} here.",
                {
                    "fig4c_axis_max": hi4c,
                    "fig3a_axis": [lo3, hi3],
                    "max_sum_of_fig4c": bound,
                    "this_run_sum_fig4c": ours_sum,
                    "this_run_fig3a_ca": ours_total,
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
    fig4a = Verdict(
        "fails" if f_floor > hi4a else "holds",
        f"Fig. 4a's axis stops at {hi4a:g} Hz, but with c ≤ {top} slots (Table I), "
        f"a = {config.a} and t = {market.t:g} s every cycle is at most {longest:g} s, so "
        f"f ≥ {fmt(f_floor)} Hz; even with a = {top} (Table I's largest), f ≥ "
        f"{fmt(f_floor_any)} Hz. " + tail,
        {"fig4a_axis_max": hi4a, "f_floor_at_a": f_floor, "f_floor_any_a": f_floor_any},
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

"""The numbers a reproduction is judged on (computed, never written in advance).

* :class:`FormulaRun`: the contracts of Figs. 2-4 under one set of closed forms;
* :class:`SimulationCheck`: slot-by-slot averages against both closed forms;
* :class:`ErrataNumbers`: Algorithm 1's measured time against its step
  ``phi``, ``g`` at its ``f_min``, and the printed closed forms on both sides
  of ``theta = a t``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from aoichain.errors import InvalidInput
from aoichain.incentive import (
    F_MIN,
    Contract,
    Market,
    algorithm1_evaluations,
    aoi,
    cycle,
    latency,
    performance_at,
    printed_aoi,
    printed_latency,
    solve,
    utility_matrix,
)
from aoichain.incentive.simulation import simulate
from aoichain.report.reproduce.config import (
    FORMULA_SETS,
    SCHEMES,
    FloatArray,
    FormulaSet,
    ReproduceConfig,
    StepFn,
    bound_label,
    paper_market,
)


@dataclass(frozen=True)
class FormulaRun:
    """Everything solved under one set of closed forms.

    Attributes
    ----------
    formulas : {"paper", "corrected"}
    market : Market
        The default market (``a``, ``alpha`` of the config).
    contracts : dict
        ``{"CA"|"CC"|"CS": Contract}`` at the default market.
    utility : ndarray
        ``N x N`` utility of type ``n`` (row) taking CA item ``i`` (column) (Fig. 2).
    a_values : ndarray
        Fig. 3's ``a`` grid.
    sp_by_a, workers_by_a : dict
        ``{scheme: ndarray over a}``: SP utility and workers' total utility (Fig. 3).
    f_by_a, c_by_a : dict
        ``{scheme: ndarray (len(a_values), N)}``: the frequencies (Hz) and
        collection slots behind them.
    alphas : ndarray
        Fig. 4's alpha grid.
    by_alpha : dict
        ``{"f", "c", "reward", "sp_utility", "worker_utility", "aoi", "latency":
        ndarray (len(alphas), N)}`` and ``"sp_total"`` (len(alphas),): CA contracts.
    integer : Contract
        CA with whole collection slots (``method="integer"``) at the default
        market (``c in 1..c_max``, or ``1..15`` without a bound).

    The bounds on ``c`` of every market solved are those of ``market``
    (``c_min``, and ``c_max`` or none).
    """

    formulas: FormulaSet
    market: Market
    contracts: dict[str, Contract]
    utility: FloatArray
    a_values: FloatArray
    sp_by_a: dict[str, FloatArray]
    workers_by_a: dict[str, FloatArray]
    f_by_a: dict[str, FloatArray]
    c_by_a: dict[str, FloatArray]
    alphas: FloatArray
    by_alpha: dict[str, FloatArray]
    integer: Contract


@dataclass(frozen=True)
class SimulationCheck:
    """Slot-by-slot averages against both closed forms, per ``(a, c)``.

    ``long`` holds the averages over ``n_slots`` requests (not a whole number
    of cycles, as a real horizon); ``exact`` over whole cycles (the true
    cycle average, to rounding). Keys of ``rows``: a, c, theta, sim_aoi,
    sim_latency, cycle_aoi, cycle_latency, paper_aoi, paper_latency,
    corrected_aoi, corrected_latency (seconds).
    """

    n_slots: int
    t: float
    rows: dict[str, FloatArray]


@dataclass(frozen=True)
class ErrataNumbers:
    """Numbers behind errata 3-5 (the domain of eqs. 4-5, Algorithm 1).

    Attributes
    ----------
    algorithm1 : dict
        ``phi`` (Hz), ``seconds`` (the best of ``repeats`` timings of
        Algorithm 1 at each ``phi``), ``grid_points`` (objective values it
        computes), ``repeats``, ``n_types``, ``f_min``, ``f_max``, ``finite``,
        ``sp_utility_algorithm1`` (at the smallest ``phi``), ``sp_utility_exact``.
    g_at_fmin : dict
        ``g`` at Algorithm 1's ``f_min`` per formula set.
    domain : dict
        ``{"below": {...}, "above": {...}}``: ``theta`` (s) on a grid in
        ``(0, a t)`` and one in ``(a t, theta_max]``, with ``paper_aoi``,
        ``paper_latency`` (eqs. 4-5 as printed) on both sides and
        ``corrected_aoi``, ``corrected_latency`` above; plus ``a`` and ``t``.
    """

    algorithm1: dict[str, Any]
    g_at_fmin: dict[str, float]
    domain: dict[str, Any]


def solve_formula_set(config: ReproduceConfig, formulas: FormulaSet, step: StepFn) -> FormulaRun:
    """Solve the default market and the sweeps over ``a`` and alpha under ``formulas``."""
    market = paper_market(config, formulas)
    name = f"{formulas}, {bound_label(config.c_max)}"
    n_types = len(market.gammas)
    bad = [n for n in config.fig2_types if not 1 <= n <= n_types]
    if bad:
        raise InvalidInput(
            f"The 'fig2_types' parameter of ReproduceConfig must name types in 1..{n_types}. "
            f"Got {bad!r} instead."
        )
    contracts: dict[str, Contract] = {
        s: solve(market, scheme=s, method=config.method) for s in SCHEMES
    }
    ca = contracts["CA"]
    utility = np.asarray(utility_matrix(ca.gamma, ca.f, ca.reward), dtype=float)
    integer = solve(market, scheme="CA", method="integer")
    step(f"{name}: default contract and Fig. 2")

    a_values = np.asarray(config.a_values, dtype=float)
    sp: dict[str, FloatArray] = {s: np.empty(a_values.size) for s in SCHEMES}
    workers: dict[str, FloatArray] = {s: np.empty(a_values.size) for s in SCHEMES}
    f_by_a: dict[str, FloatArray] = {s: np.empty((a_values.size, n_types)) for s in SCHEMES}
    c_by_a: dict[str, FloatArray] = {s: np.empty((a_values.size, n_types)) for s in SCHEMES}
    for k, a in enumerate(config.a_values):
        swept = paper_market(config, formulas, a=a)
        for s in SCHEMES:
            contract = solve(swept, scheme=s, method=config.method)
            sp[s][k] = contract.sp_utility_total
            workers[s][k] = contract.workers_utility
            f_by_a[s][k] = contract.f
            c_by_a[s][k] = contract.c
        step(f"{name}: Fig. 3, a = {a}")

    alphas = np.asarray(config.alphas, dtype=float)
    keys = ("f", "c", "reward", "sp_utility", "worker_utility", "aoi", "latency")
    by_alpha: dict[str, FloatArray] = {k: np.empty((alphas.size, n_types)) for k in keys}
    by_alpha["sp_total"] = np.empty(alphas.size)
    by_alpha["workers_total"] = np.empty(alphas.size)
    for k, alpha in enumerate(config.alphas):
        contract = solve(
            paper_market(config, formulas, alpha=alpha), scheme="CA", method=config.method
        )
        for key in keys:
            by_alpha[key][k] = getattr(contract, key)
        by_alpha["sp_total"][k] = contract.sp_utility_total
        by_alpha["workers_total"][k] = contract.workers_utility
        step(f"{name}: Fig. 4, alpha = {alpha:g}")

    return FormulaRun(
        formulas=formulas,
        market=market,
        contracts=contracts,
        utility=utility,
        a_values=a_values,
        sp_by_a=sp,
        workers_by_a=workers,
        f_by_a=f_by_a,
        c_by_a=c_by_a,
        integer=integer,
        alphas=alphas,
        by_alpha=by_alpha,
    )


def simulation_check(config: ReproduceConfig, t: float, step: StepFn) -> SimulationCheck:
    """Play the slot rules for every ``(a, c)`` of the config; evaluate both closed forms there."""
    cols: dict[str, list[float]] = {
        k: []
        for k in (
            "a",
            "c",
            "theta",
            "sim_aoi",
            "sim_latency",
            "cycle_aoi",
            "cycle_latency",
            "paper_aoi",
            "paper_latency",
            "corrected_aoi",
            "corrected_latency",
        )
    }
    for a in config.sim_a_values:
        for c in range(1, config.sim_c_max + 1):
            theta = float(cycle(c, t=t, a=a))
            long = simulate(c, a, t, config.sim_slots)
            cycles = simulate(c, a, t, c + a)
            values = {
                "a": a,
                "c": c,
                "theta": theta,
                "sim_aoi": long.mean_aoi,
                "sim_latency": long.mean_latency,
                "cycle_aoi": cycles.mean_aoi,
                "cycle_latency": cycles.mean_latency,
            }
            for forms in FORMULA_SETS:
                values[f"{forms}_aoi"] = float(aoi(theta, t=t, a=a, formulas=forms))
                values[f"{forms}_latency"] = float(latency(theta, t=t, a=a, formulas=forms))
            for key, value in values.items():
                cols[key].append(float(value))
        step(f"slot simulation, a = {a}")
    return SimulationCheck(
        n_slots=config.sim_slots,
        t=t,
        rows={k: np.asarray(v, dtype=float) for k, v in cols.items()},
    )


#: Algorithm 1's grid steps (Hz) timed for erratum 4: 16 times finer from first to last, so
#: that a cost linear in 1/phi grows 16-fold and a logarithmic one by about a third.
ALGORITHM1_PHIS: tuple[float, ...] = (4e-6, 2e-6, 1e-6, 5e-7, 2.5e-7)
_TIMING_REPEATS = 3


def time_algorithm1(
    market: Market, phis: tuple[float, ...] = ALGORITHM1_PHIS, repeats: int = _TIMING_REPEATS
) -> tuple[list[float], Contract]:
    """Seconds Algorithm 1 takes at each ``phi`` (best of ``repeats``), and its finest contract.

    One untimed solve first, so that no timing includes warming up.
    """
    solve(market, scheme="CA", method="algorithm1", phi=phis[0])
    seconds: list[float] = []
    contract: Contract | None = None
    for phi in phis:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            contract = solve(market, scheme="CA", method="algorithm1", phi=phi)
            best = min(best, time.perf_counter() - start)
        seconds.append(float(best))
    assert contract is not None
    return seconds, contract


#: Longest collection phase (slots) sampled for erratum 3: beyond every optimum of the
#: report's runs (the largest, without a bound on c, is about 275 slots).
DOMAIN_C_MAX = 300.0


def domain_samples(market: Market, points: int = 2001) -> dict[str, Any]:
    """Eqs. (4)-(5) as printed on both sides of ``theta = a t``; both forms above it.

    Below: ``points`` cycles in ``(0, a t)``, where the paper's text places
    "the case"; above: ``points`` cycles in ``(a t, (DOMAIN_C_MAX + a) t]``.
    """
    t, a = market.t, float(market.a)
    at = a * t
    below = np.linspace(at / points, at * (1 - 1 / points), points)
    above = np.linspace(at + t / 100, float(cycle(DOMAIN_C_MAX, t=t, a=a)), points)
    out: dict[str, Any] = {
        "a": a,
        "t": t,
        "below": {
            "theta": below,
            "paper_aoi": printed_aoi(below, t=t, a=a),
            "paper_latency": printed_latency(below, t=t, a=a),
        },
        "above": {"theta": above},
    }
    for forms in FORMULA_SETS:
        out["above"][f"{forms}_aoi"] = aoi(above, t=t, a=a, formulas=forms)
        out["above"][f"{forms}_latency"] = latency(above, t=t, a=a, formulas=forms)
    return out


def errata_numbers(config: ReproduceConfig, step: StepFn) -> ErrataNumbers:
    """Time Algorithm 1 against its step, and sample what errata 3 and 5 need."""
    market = paper_market(config, "paper")
    seconds, alg = time_algorithm1(market)
    exact = solve(market, scheme="CA", method="exact")
    timings: dict[str, Any] = {
        "phi": list(ALGORITHM1_PHIS),
        "seconds": seconds,
        "repeats": _TIMING_REPEATS,
        "grid_points": [algorithm1_evaluations(market, phi) for phi in ALGORITHM1_PHIS],
        "f_min": F_MIN,
        "f_max": market.f_bounds[1],
        "n_types": len(market.gammas),
        "finite": bool(np.all(np.isfinite(alg.f)) and np.isfinite(alg.sp_utility_total)),
        "sp_utility_algorithm1": float(alg.sp_utility_total),
        "sp_utility_exact": float(exact.sp_utility_total),
    }

    # Erratum 5: g at Algorithm 1's f_min, per formula set, at the default alpha.
    g_at_fmin: dict[str, float] = {}
    for forms in FORMULA_SETS:
        g_at_fmin[forms] = float(performance_at(paper_market(config, forms), F_MIN))

    step("Algorithm 1 and the errata")
    return ErrataNumbers(timings, g_at_fmin, domain_samples(market))

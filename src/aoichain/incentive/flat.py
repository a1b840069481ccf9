"""The ``flat`` baseline: one item for every worker, no screening by type.

A publisher that offers no menu must pay enough for the costliest type to
accept, ``R = f / gamma_1``, and then picks the single ``f`` that is best on
average::

    max_f  sum_n M Q_n G_n(f) - M f / gamma_1

This is the CA objective with every type pooled into one block (the virtual
costs ``b_n`` sum to ``1/gamma_1``), so a flat menu is IC and IR by
construction and never beats CA; it is the "no incentive" point of
comparison of the federated run.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from aoichain.incentive.contract import Contract, build_contract
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.freshness import cycle
from aoichain.incentive.market import DEFAULT_C_MAX_INTEGER, Market, satisfaction_by_type


def _pooled_objective(market: Market, f: np.ndarray) -> np.ndarray:
    """``sum_n Q_n G_n(f) - f / gamma_1`` for each candidate ``f`` (per worker)."""
    q = market.prob_array[:, None]
    sat = satisfaction_by_type(market, f)
    with np.errstate(invalid="ignore"):
        total = np.where(q > 0, q * sat, 0.0).sum(axis=0)
    return np.asarray(total - f / market.gamma_array[0])


def flat_contract(market: Market, method: str = "exact", *, c: float | None = None) -> Contract:
    """The best single item ``(f, f / gamma_1)`` offered to every type.

    Parameters
    ----------
    market : Market
        The validated market.
    method : {"exact", "algorithm1", "integer"}
        ``integer`` picks the best whole number of collection slots
        ``c in {c_min, ..., c_max}`` (``c_max`` defaults to 15); the others
        maximise over the continuous range of ``f`` (the pooled objective is
        concave, so a bounded scalar search is exact).
    c : float, optional
        Impose the item's collection slots instead of optimising them (for
        controlled freshness experiments); must lie in ``[c_min, c_max]``.

    Returns
    -------
    Contract
        ``N`` identical items, scheme ``"flat"``.
    """
    if c is not None:
        c_max = market.c_max if market.c_max is not None else math.inf
        if not market.c_min <= c <= c_max:
            raise InvalidMarket(
                f"The 'c' parameter of flat_contract must lie in [{market.c_min}, {c_max}]. "
                f"Got {c!r} instead."
            )
        best = float(1.0 / cycle(c, t=market.t, a=market.a))
    elif method == "integer":
        c_max = market.c_max if market.c_max is not None else DEFAULT_C_MAX_INTEGER
        cs = np.arange(int(np.ceil(market.c_min)), int(np.floor(c_max)) + 1, dtype=float)
        fs = 1.0 / cycle(cs, t=market.t, a=market.a)
        best = float(fs[int(np.argmax(_pooled_objective(market, fs)))])
    else:
        lo, hi = market.f_bounds
        found = minimize_scalar(
            lambda x: -float(_pooled_objective(market, np.array([x]))[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12 * max(hi, 1.0)},
        )
        candidates = np.array([lo, hi, float(found.x)])
        best = float(candidates[int(np.argmax(_pooled_objective(market, candidates)))])
    f = np.full(market.n_types, best)
    reward = f / market.gamma_array[0]
    return build_contract(market, f, reward, scheme="flat", method=method)

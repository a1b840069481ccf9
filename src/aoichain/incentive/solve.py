"""Optimal contracts: the schemes CA, CC, CS and the methods that solve them (Sec. IV).

Every scheme picks one update frequency per type by maximising a sum of
per-type objectives ``h_n(f) = w_n G_n(f) - k_n f`` (``G_n = beta ln g_n``):

=======  ==============================  ==================  ====================
scheme   objective                       ``f`` constraint    rewards
=======  ==============================  ==================  ====================
``CA``   ``Q_n G_n - b_n f`` (Problem 2)  non-decreasing      eq. (18)
``CS``   ``Q_n (G_n - f/gamma_n)``        non-decreasing      eq. (18)
``CC``   ``G_n - f/gamma_n``              none                ``R_n = f_n/gamma_n``
=======  ==============================  ==================  ====================

``b_n`` are the virtual costs (:func:`~aoichain.incentive.virtual_costs`). CA is
the paper's contract under asymmetric information; CS maximises expected
social welfare under the same information (IC via eq. 18); CC is the
complete-information benchmark, in which the SP knows each type, pays its cost
and leaves it nothing (not IC by design). A type with ``Q_n = 0`` never
appears, so its satisfaction does not count (``0 * G = 0`` even where ``g <= 0``).

Methods: ``exact`` (default; the continuous optimum to machine precision,
:mod:`aoichain.incentive._exact`), ``algorithm1`` (the paper's grid search with
step ``phi`` plus bunching and ironing, the baseline) and ``integer`` (whole
collection slots ``c``, exactly optimal among integer menus).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aoichain.incentive._algorithm1 import grid, solve_algorithm1
from aoichain.incentive._exact import Problem, solve_exact
from aoichain.incentive._integer import integer_candidates, solve_integer
from aoichain.incentive.contract import Contract, build_contract, optimal_rewards
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.market import (
    DEFAULT_C_MAX_INTEGER,
    Market,
    satisfaction_by_type,
    virtual_costs,
)

__all__ = [
    "DEFAULT_PHI",
    "METHODS",
    "SCHEMES",
    "Method",
    "Scheme",
    "algorithm1_evaluations",
    "objective_by_type",
    "solve",
]

FloatArray = NDArray[np.float64]
Scheme = Literal["CA", "CC", "CS"]
Method = Literal["exact", "algorithm1", "integer"]
SCHEMES: tuple[Scheme, ...] = ("CA", "CC", "CS")
METHODS: tuple[Method, ...] = ("exact", "algorithm1", "integer")

#: Default grid step of Algorithm 1 (Hz); the paper does not state its value.
DEFAULT_PHI = 1e-6
_MAX_GRID = 10**9


def scheme_objective(market: Market, scheme: Scheme) -> tuple[FloatArray, FloatArray]:
    """Per-type weight ``w_n`` of ``G_n`` and linear cost ``k_n`` of ``f`` for ``scheme``."""
    g = market.gamma_array
    q = market.prob_array
    if scheme == "CA":
        return np.array(q), virtual_costs(market)
    if scheme == "CS":
        return np.array(q), q / g
    return np.ones_like(g), 1.0 / g


def objective_by_type(market: Market, f: ArrayLike, scheme: Scheme = "CA") -> FloatArray:
    """Each type's objective ``h_n(f) = w_n G_n(f) - k_n f`` of ``scheme`` at every ``f``.

    For CA, ``h_n = Q_n G_n - b_n f`` with the virtual costs ``b_n`` (Problem 2):
    the SP's utility at a menu is ``U_s = M sum_n h_n(f_n)``. A type with
    ``w_n = 0`` contributes ``-k_n f`` only, as in the solvers.

    Parameters
    ----------
    market : Market
    f : array_like
        Candidate update frequencies in Hz, one-dimensional.
    scheme : {"CA", "CC", "CS"}

    Returns
    -------
    ndarray
        Shape ``(N, len(f))``; ``-inf`` where ``g_n <= 0`` (for ``w_n > 0``).
    """
    fa = np.asarray(f, dtype=np.float64)
    w, k = scheme_objective(market, scheme)
    sat = satisfaction_by_type(market, fa)
    with np.errstate(invalid="ignore"):
        weighted = np.where(w[:, None] > 0, w[:, None] * sat, 0.0)
    return np.asarray(weighted - k[:, None] * fa[None, :], dtype=np.float64)


def algorithm1_evaluations(market: Market, phi: float = DEFAULT_PHI) -> int:
    """How many objective values Algorithm 1 computes: ``N`` times its grid's points.

    The grid is ``f_min + z phi < f_max`` (``f_min = 1e-5`` Hz, ``f_max`` the
    largest allowed frequency), so the count grows as ``(f_max - f_min)/phi``,
    not as its logarithm (erratum 4 of the SPEC).
    """
    return market.n_types * int(grid(market.f_bounds[1], phi).size)


def _problem(market: Market, scheme: Scheme) -> Problem:
    w, k = scheme_objective(market, scheme)
    values, index = market.distinct_alphas
    lo, hi = market.theta_bounds
    return Problem(
        perf=market.performance,
        weights=w,
        costs=k,
        alpha_values=values,
        alpha_index=index,
        domain=market.domain,
        theta_lo=lo,
        theta_hi=hi,
        monotone=scheme != "CC",
    )


def _rewards(market: Market, scheme: Scheme, f: FloatArray) -> FloatArray:
    if scheme == "CC":
        return np.asarray(f / market.gamma_array, dtype=np.float64)
    return optimal_rewards(market.gamma_array, f)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidMarket(
            f"The {name!r} parameter of solve must be one of {list(allowed)}. "
            f"Got {value!r} instead."
        )


def solve(
    market: Market,
    scheme: Scheme = "CA",
    method: Method = "exact",
    *,
    phi: float | None = None,
) -> Contract:
    """Solve the contract of ``scheme`` in ``market`` with ``method``.

    Parameters
    ----------
    market : Market
        The validated market.
    scheme : {"CA", "CC", "CS"}
        Asymmetric-information contract (the paper's), complete information,
        or social maximisation under asymmetric information.
    method : {"exact", "algorithm1", "integer"}
        ``exact``: the continuous optimum over ``f in [f_lo, f_hi]`` to machine
        precision, for any valid market (every per-type objective is concave,
        so pool-adjacent-violators is exact; the KKT conditions are checked).
        ``algorithm1``: the paper's grid search with step ``phi`` and bunching
        and ironing. ``integer``: the best menu with whole collection slots
        ``c in {c_min, ..., c_max}`` (``c_max`` defaults to 15).
    phi : float, optional
        Grid step of ``algorithm1`` in Hz (default ``1e-6``); only for that method.

    Returns
    -------
    Contract
        The menu, rewards (eq. 18; ``f/gamma`` for CC), utilities, AoI,
        latency and the IC/IR report. ``converged`` is ``False`` if the exact
        method's optimality check failed (it should not).

    Raises
    ------
    InvalidMarket
        For an unknown scheme or method, a ``phi`` that is not a positive
        number or is given to another method, a grid with no feasible point
        for some type, or no whole ``c`` giving every type ``g > 0``.
    """
    _check_choice("scheme", scheme, SCHEMES)
    _check_choice("method", method, METHODS)
    if phi is not None and method != "algorithm1":
        raise InvalidMarket(
            f"The 'phi' parameter of solve applies only to method='algorithm1'. "
            f"Got phi={phi!r} with method={method!r}."
        )
    prob = _problem(market, scheme)
    if method == "exact":
        sol = solve_exact(prob)
        f = 1.0 / sol.theta
        return build_contract(
            market,
            f,
            _rewards(market, scheme, f),
            scheme=scheme,
            method=method,
            converged=sol.converged,
            message=sol.message,
        )
    if method == "algorithm1":
        return _solve_algorithm1(market, scheme, prob, DEFAULT_PHI if phi is None else phi)
    return _solve_integer(market, scheme, prob)


def _solve_algorithm1(market: Market, scheme: Scheme, prob: Problem, phi: float) -> Contract:
    if isinstance(phi, bool) or not isinstance(phi, int | float) or not math.isfinite(phi):
        raise InvalidMarket(f"The 'phi' parameter of solve must be a number > 0. Got {phi!r}.")
    if not phi > 0:
        raise InvalidMarket(f"The 'phi' parameter of solve must be a number > 0. Got {phi!r}.")
    f_lo, f_max = market.f_bounds
    count = (f_max - 1e-5) / phi
    if count > _MAX_GRID:
        raise InvalidMarket(
            f"The 'phi' parameter of solve is too small: {phi!r} makes a grid of "
            f"{count:.3g} points (at most {_MAX_GRID:.0e})."
        )
    pts = grid(f_max, phi)
    idx = solve_algorithm1(prob, pts, f_lo)
    if idx is None:
        raise InvalidMarket(
            f"The 'phi' parameter of solve is too coarse: with phi={phi!r} some type has no "
            f"grid point f = 1e-5 + z phi < {f_max:.6g} Hz where g > 0 and f >= {f_lo:.6g} Hz; "
            "use a smaller phi."
        )
    f = pts[idx]
    return build_contract(
        market,
        f,
        _rewards(market, scheme, f),
        scheme=scheme,
        method="algorithm1",
        converged=True,
        message=f"grid search with phi={phi:g} Hz over {pts.size} points",
    )


def _solve_integer(market: Market, scheme: Scheme, prob: Problem) -> Contract:
    c_max = market.c_max if market.c_max is not None else float(DEFAULT_C_MAX_INTEGER)
    cs, theta = integer_candidates(market.c_min, c_max, market.a, market.t, prob.theta_hi)
    if cs.size == 0:
        raise InvalidMarket(
            f"Market has no whole number of collection slots c in [{market.c_min:g}, {c_max:g}]."
        )
    idx = solve_integer(prob, theta)
    if idx is None:
        order = " with non-decreasing f" if prob.monotone else ""
        raise InvalidMarket(
            f"Market is invalid for method='integer': no whole c in "
            f"{{{int(cs[-1])}..{int(cs[0])}}} gives every type g > 0{order}."
        )
    f = 1.0 / theta[idx]
    return build_contract(
        market,
        f,
        _rewards(market, scheme, f),
        scheme=scheme,
        method="integer",
        converged=True,
        message=f"dynamic programme over c in {{{int(cs[-1])}..{int(cs[0])}}}",
    )

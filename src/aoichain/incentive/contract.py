"""Contracts: the menu a service provider offers, its utilities and its feasibility (Sec. IV).

A contract is a menu of items ``(f_n, R_n)``, one per worker type. A worker of
type ``n`` taking item ``i`` gets ``U = R_i - f_i / gamma_n`` (eq. 10). The menu
is feasible when every type prefers its own item (IC, eq. 14) and gets a
non-negative utility from it (IR, eq. 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aoichain.incentive.freshness import aoi, collection_slots, latency
from aoichain.incentive.market import Market, satisfaction

__all__ = [
    "Contract",
    "Feasibility",
    "build_contract",
    "choose_item",
    "feasibility",
    "optimal_rewards",
    "utility_matrix",
]

FloatArray = NDArray[np.float64]

#: Relative tolerance (of the largest reward) under which utilities count as equal.
UTILITY_RTOL = 1e-9

_PEEL_PASSES = 64


def optimal_rewards(gammas: ArrayLike, f: ArrayLike) -> FloatArray:
    """The SP's optimal rewards for non-decreasing update frequencies (eqs. 17-18).

    ``R_1 = f_1/gamma_1`` and ``R_n = R_{n-1} + (f_n - f_{n-1})/gamma_n``: type 1's
    IR and every local downward IC constraint bind.

    Parameters
    ----------
    gammas : array_like
        Types ``gamma_n``, ascending.
    f : array_like
        Update frequencies ``f_n`` in Hz, non-decreasing.

    Returns
    -------
    ndarray
        Rewards ``R_n``, in the same money unit as ``f/gamma``.
    """
    g = np.asarray(gammas, dtype=np.float64)
    fa = np.asarray(f, dtype=np.float64)
    return np.asarray(np.cumsum(np.diff(fa, prepend=0.0) / g), dtype=np.float64)


def utility_matrix(gammas: ArrayLike, f: ArrayLike, reward: ArrayLike) -> FloatArray:
    """Utility of every type for every item: entry ``[n, i] = R_i - f_i / gamma_n``.

    Row ``n`` is what a type-``n`` worker would get from each item; the menu is IC
    when every row peaks on its diagonal and IR when the diagonal is ``>= 0``.
    """
    g = np.asarray(gammas, dtype=np.float64)
    fa = np.asarray(f, dtype=np.float64)
    r = np.asarray(reward, dtype=np.float64)
    return np.asarray(r[None, :] - fa[None, :] / g[:, None], dtype=np.float64)


def _tolerance(reward: FloatArray) -> float:
    scale = float(np.max(np.abs(reward))) if reward.size else 0.0
    return UTILITY_RTOL * max(1.0, scale)


def choose_item(gamma: float, f: ArrayLike, reward: ArrayLike) -> int:
    """The item a worker with private type ``gamma`` picks: the one it likes best.

    With the optimal rewards of eq. (18) each type is exactly indifferent between
    its own item and the one below (local downward IC binds), so utilities within
    ``1e-9`` of the largest reward count as ties and a tie goes to the higher
    index, i.e. the item designed for the higher type.

    Returns
    -------
    int
        Index of the chosen item, or ``-1`` when every item gives a negative
        utility (beyond the same tolerance): the worker declines.
    """
    fa = np.asarray(f, dtype=np.float64)
    r = np.asarray(reward, dtype=np.float64)
    u = r - fa / float(gamma)
    tol = _tolerance(r)
    best = float(np.max(u))
    if best < -tol:
        return -1
    return int(np.flatnonzero(u >= best - tol)[-1])


@dataclass(frozen=True)
class Feasibility:
    """IC and IR of a menu, checked against every type and every item.

    Attributes
    ----------
    ic : bool
        No type gains more than the tolerance by taking another type's item.
    ir : bool
        No type gets less than minus the tolerance from its own item.
    max_ic_violation : float
        ``max_n (max_i U[n, i] - U[n, n])`` (0 when IC holds exactly).
    min_worker_utility : float
        ``min_n U[n, n]``.
    """

    ic: bool
    ir: bool
    max_ic_violation: float
    min_worker_utility: float


def _upper_hull(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vertices of the upper convex hull of points sorted by ``x`` (distinct ``x``).

    Points on or below the chord of their neighbours are never hull vertices,
    so all of them can go at once; a few such passes usually leave the hull,
    and a monotone-chain pass finishes the rare case that needs more.
    """
    for _ in range(_PEEL_PASSES):
        if x.size < 3:
            return x, y
        cross = (x[1:-1] - x[:-2]) * (y[2:] - y[:-2]) - (y[1:-1] - y[:-2]) * (x[2:] - x[:-2])
        drop = cross >= 0
        if not drop.any():
            return x, y
        keep = np.concatenate([[True], ~drop, [True]])
        x, y = x[keep], y[keep]
    hx: list[float] = []
    hy: list[float] = []
    for px, py in zip(x.tolist(), y.tolist(), strict=True):
        while (
            len(hx) >= 2
            and (hx[-1] - hx[-2]) * (py - hy[-2]) - (hy[-1] - hy[-2]) * (px - hx[-2]) >= 0
        ):
            hx.pop()
            hy.pop()
        hx.append(px)
        hy.append(py)
    return np.asarray(hx), np.asarray(hy)


def best_utilities(gammas: ArrayLike, f: ArrayLike, reward: ArrayLike) -> FloatArray:
    """``max_i (R_i - f_i / gamma_n)`` for every type ``n``: the rows' maxima of
    :func:`utility_matrix` without building the ``N x N`` matrix.

    The maximum over items of a linear function of ``(f_i, R_i)`` is reached on
    the upper convex hull of those points, and along the hull the best vertex
    moves monotonically with ``1/gamma_n``, so ``O(N log N)`` suffices.
    """
    g = np.asarray(gammas, dtype=np.float64)
    fa = np.asarray(f, dtype=np.float64)
    r = np.asarray(reward, dtype=np.float64)
    order = np.lexsort((r, fa))
    xs, ys = fa[order], r[order]
    last = np.concatenate([xs[1:] != xs[:-1], [True]])
    xs, ys = xs[last], ys[last]
    hx, hy = _upper_hull(xs, ys)
    s = 1.0 / g
    if hx.size == 1:
        return np.asarray(hy[0] - hx[0] * s, dtype=np.float64)
    slopes = np.diff(hy) / np.diff(hx)
    k = np.searchsorted(-slopes, -s, side="left")
    return np.asarray(hy[k] - hx[k] * s, dtype=np.float64)


def feasibility(gammas: ArrayLike, f: ArrayLike, reward: ArrayLike) -> Feasibility:
    """Check IC (eq. 14) and IR (eq. 15) over all ``N x N`` type/item pairs.

    A pair counts as violated only beyond ``1e-9`` times the largest reward
    (at least ``1e-9``): the optimal menus bind many constraints exactly, and
    rounding must not read as a violation.
    """
    g = np.asarray(gammas, dtype=np.float64)
    fa = np.asarray(f, dtype=np.float64)
    r = np.asarray(reward, dtype=np.float64)
    own = r - fa / g
    best = best_utilities(g, fa, r)
    violation = float(max(0.0, float(np.max(best - own))))
    lowest = float(np.min(own))
    tol = _tolerance(r)
    return Feasibility(
        ic=violation <= tol,
        ir=lowest >= -tol,
        max_ic_violation=violation,
        min_worker_utility=lowest,
    )


@dataclass(frozen=True, eq=False)
class Contract:
    """An optimal (or baseline) contract and everything that follows from it.

    Per-type arrays (index ``n`` = type ``n + 1``): ``gamma``, ``q`` (``Q_n``),
    ``alpha``, ``f`` (Hz), ``theta = 1/f`` (s), ``c = theta/t - a`` (slots),
    ``reward`` (``R_n``), ``worker_utility`` (``R_n - f_n/gamma_n``), ``aoi`` and
    ``latency`` (s, in the market's closed forms), ``satisfaction``
    (``G_n = beta ln g_n``) and ``sp_utility`` (``M Q_n (G_n - R_n)``, the type's
    share of eq. 13; 0 for a type with ``Q_n = 0``).

    Totals: ``sp_utility_total`` (eq. 13), ``workers_utility``
    (``sum M Q_n U_n``) and ``social_welfare`` (their sum); ``feasibility`` from
    all ``N x N`` type/item pairs. ``converged`` and ``message`` say whether the
    method met its own optimality check and how.
    """

    scheme: str
    method: str
    market: Market
    gamma: FloatArray
    q: FloatArray
    alpha: FloatArray
    f: FloatArray
    theta: FloatArray
    c: FloatArray
    reward: FloatArray
    worker_utility: FloatArray
    aoi: FloatArray
    latency: FloatArray
    satisfaction: FloatArray
    sp_utility: FloatArray
    sp_utility_total: float
    workers_utility: float
    social_welfare: float
    feasibility: Feasibility
    converged: bool
    message: str

    @property
    def n_types(self) -> int:
        """Number of types."""
        return int(self.f.size)

    def items(self) -> list[dict[str, Any]]:
        """The menu as one plain dict per type (the ``items`` of :meth:`to_dict`)."""
        cols = {
            "gamma": self.gamma,
            "q": self.q,
            "alpha": self.alpha,
            "f": self.f,
            "theta": self.theta,
            "c": self.c,
            "reward": self.reward,
            "worker_utility": self.worker_utility,
            "aoi": self.aoi,
            "latency": self.latency,
            "sp_utility": self.sp_utility,
        }
        lists = {k: [_json_float(v) for v in arr.tolist()] for k, arr in cols.items()}
        return [{"type": n + 1, **{k: lists[k][n] for k in cols}} for n in range(self.n_types)]

    def to_dict(self) -> dict[str, Any]:
        """The contract as one JSON-ready object (non-finite numbers become ``None``)."""
        return {
            "scheme": self.scheme,
            "method": self.method,
            "formulas": self.market.formulas,
            "market": self.market.model_dump(mode="json"),
            "items": self.items(),
            "sp_utility": _json_float(self.sp_utility_total),
            "workers_utility": _json_float(self.workers_utility),
            "social_welfare": _json_float(self.social_welfare),
            "feasibility": {
                "ic": self.feasibility.ic,
                "ir": self.feasibility.ir,
                "max_ic_violation": _json_float(self.feasibility.max_ic_violation),
                "min_worker_utility": _json_float(self.feasibility.min_worker_utility),
            },
        }


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _frozen(arr: ArrayLike) -> FloatArray:
    out = np.array(arr, dtype=np.float64)
    out.setflags(write=False)
    return out


def build_contract(
    market: Market,
    f: ArrayLike,
    reward: ArrayLike,
    *,
    scheme: str,
    method: str,
    converged: bool = True,
    message: str = "",
) -> Contract:
    """Assemble a :class:`Contract` from a menu ``(f, R)`` in ``market``.

    Works for any menu, optimal or not (the feasibility report says whether it
    is IC and IR), so that hand-made or perturbed menus can be evaluated too.
    """
    fa = np.asarray(f, dtype=np.float64)
    r = np.asarray(reward, dtype=np.float64)
    g = market.gamma_array
    q = market.prob_array
    m = float(market.workers)
    theta = 1.0 / fa
    sat = satisfaction(market, fa)
    own = r - fa / g
    with np.errstate(invalid="ignore"):
        share = np.where(q > 0, m * q * (sat - r), 0.0)
    workers = float(np.sum(m * q * own))
    sp_total = float(np.sum(share))
    return Contract(
        scheme=scheme,
        method=method,
        market=market,
        gamma=_frozen(g),
        q=_frozen(q),
        alpha=_frozen(market.alpha_array),
        f=_frozen(fa),
        theta=_frozen(theta),
        c=_frozen(collection_slots(theta, t=market.t, a=market.a)),
        reward=_frozen(r),
        worker_utility=_frozen(own),
        aoi=_frozen(aoi(theta, t=market.t, a=market.a, formulas=market.formulas)),
        latency=_frozen(latency(theta, t=market.t, a=market.a, formulas=market.formulas)),
        satisfaction=_frozen(sat),
        sp_utility=_frozen(share),
        sp_utility_total=sp_total,
        workers_utility=workers,
        social_welfare=sp_total + workers,
        feasibility=feasibility(g, fa, r),
        converged=converged,
        message=message,
    )

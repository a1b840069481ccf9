"""A learning-aware satisfaction: ``G`` fitted to a measured accuracy-against-AoI curve.

The paper's satisfaction ``G = beta ln(alpha (K - A) + (1 - alpha)(H - D))``
(eqs. 11-12) values freshness by assumption. A publisher that has measured
how its model's quality ``s`` (accuracy, F1, ...) falls with the AoI ``A`` of
the training data can value freshness by what it buys instead::

    G(A) = v * s(A),    s(A) = p + q ln(K - A),   q >= 0,  K > max A

``v`` is what one unit of quality is worth (reward units per second, like
``G``). The family is the paper's with ``alpha = 1``, so
``G = beta ln(K - A) + v p`` with ``beta = v q``: the additive ``v p``
changes no choice and is dropped, and the fitted market is an ordinary
:class:`~aoichain.incentive.Market` every solver takes.

Why the exact solver still applies. It needs each per-type objective
``h_n(theta) = w_n G(A(theta)) - k_n / theta`` to be concave in the cycle
``theta`` (pool-adjacent-violators is exact for separable concave objectives
under a chain order). ``A(theta)`` is convex (both closed forms), so
``K - A`` is concave, and ``ln`` is concave and increasing: ``G`` is concave
wherever ``K > A``; ``-k/theta`` is concave. The same holds for any ``G =
phi(A)`` with ``phi`` concave and non-increasing, which is why the fit is
restricted to such a family: a measured curve that is convex (accuracy
dropping fast, then flattening) is approximated by the best concave member,
and the fit's ``r2`` says how well. :func:`fit_satisfaction` checks the
concavity on the fitted market from numbers (second differences of every
type's objective on a grid of cycles) rather than quoting this argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from aoichain.incentive.curvature import largest_relative_second_difference
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.market import Market
from aoichain.incentive.solve import SCHEMES, objective_by_type

__all__ = ["LearnedSatisfaction", "fit_quality_curve", "fit_satisfaction", "objective_curvature"]

FloatArray = NDArray[np.float64]

#: Largest relative second difference still read as concave (rounding).
CONCAVITY_TOL = 1e-9
#: ``beta`` of a curve that does not fall with AoI at all (Market needs beta > 0).
FLAT_BETA = 1e-9


def _ls(x: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """Least squares ``y = p + q x`` with ``q >= 0``; returns ``p, q, sse``."""
    xm, ym = float(x.mean()), float(y.mean())
    var = float(np.sum((x - xm) ** 2))
    q = float(np.sum((x - xm) * (y - ym)) / var) if var > 0 else 0.0
    q = max(q, 0.0)
    p = ym - q * xm
    return p, q, float(np.sum((y - p - q * x) ** 2))


def fit_quality_curve(aoi: ArrayLike, score: ArrayLike) -> tuple[float, float, float, float]:
    """Fit ``score = p + q ln(K - aoi)`` (``q >= 0``, ``K > max aoi``) by least squares.

    For each ``K`` the best ``p, q`` are linear least squares; ``K`` is
    searched on a log grid of ``K - max(aoi)`` and refined by a bounded
    scalar search. A curve that never falls with AoI gets ``q = 0``.

    Returns
    -------
    p, q, K, r2 : float
        The fit and its coefficient of determination (``nan`` for a constant score).
    """
    a = np.asarray(aoi, dtype=np.float64).ravel()
    y = np.asarray(score, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(y)
    a, y = a[ok], y[ok]
    if a.size < 2 or np.unique(a).size < 2:
        raise InvalidMarket(
            "fit_quality_curve needs finite scores at two or more distinct AoI values; "
            f"got {a.size} point(s) at {np.unique(a).size} AoI value(s)."
        )
    top = float(a.max())
    scale = max(float(a.max() - a.min()), 1e-6)

    def sse(log_gap: float) -> float:
        return _ls(np.log(top + np.exp(log_gap) - a), y)[2]

    grid = np.log(scale) + np.linspace(np.log(1e-3), np.log(1e5), 161)
    values = np.array([sse(g) for g in grid])
    k = int(np.argmin(values))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    found = minimize_scalar(sse, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    best = float(found.x) if found.fun <= values[k] else float(grid[k])
    K = top + float(np.exp(best))
    p, q, err = _ls(np.log(K - a), y)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - err / total if total > 0 else float("nan")
    return p, q, K, r2


@dataclass(frozen=True, eq=False)
class LearnedSatisfaction:
    """A satisfaction fitted to measured quality against AoI, and the market it defines.

    Attributes
    ----------
    aoi, score : ndarray
        The measured points (seconds; the quality metric).
    p, q, K : float
        The fit ``score = p + q ln(K - aoi)``.
    r2 : float
        Its coefficient of determination.
    value : float
        Reward units per second that one unit of the score is worth.
    market : Market
        The base market with ``alpha = 1``, ``K`` fitted and ``beta = value q``:
        its ``G`` is ``value * fit(A)`` less the constant ``value p``.
    curvature : float
        The largest relative second difference of every scheme's per-type
        objective over a grid of the allowed cycles (``<= 0``: concave).
    concave : bool
        Whether ``curvature <= 1e-9``: the exact solver's premise holds.
    """

    aoi: FloatArray
    score: FloatArray
    p: float
    q: float
    K: float
    r2: float
    value: float
    market: Market
    curvature: float
    concave: bool

    def predict(self, aoi: ArrayLike) -> FloatArray:
        """The fitted score at ``aoi`` seconds (``-inf`` at or past ``K``)."""
        a = np.asarray(aoi, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                np.where(a < self.K, self.p + self.q * np.log(np.maximum(self.K - a, 0)), -np.inf)
            )

    def to_dict(self) -> dict[str, object]:
        """The fit as a JSON-ready object."""
        return {
            "form": "G(A) = value * (p + q ln(K - A)); beta = value * q, alpha = 1",
            "p": self.p,
            "q": self.q,
            "K": self.K,
            "r2": self.r2 if np.isfinite(self.r2) else None,
            "value": self.value,
            "beta": self.market.beta,
            "curvature": self.curvature,
            "concave": self.concave,
            "points": [
                {"aoi_s": float(a), "score": float(s)}
                for a, s in zip(self.aoi, self.score, strict=True)
            ],
        }


def objective_curvature(market: Market, points: int = 401) -> float:
    """Largest relative second difference of every scheme's per-type objective in ``theta``.

    Sampled on an even grid of the allowed cycles where every type's ``g > 0``
    (at most ``(c_min + a) t`` to ``(60 + a) t`` without ``c_max``); ``<= 0``
    up to rounding means concave, the premise of the exact solver.
    """
    lo, hi = market.theta_bounds
    hi = min(hi, (60.0 + market.a) * market.t) if market.c_max is None else hi
    theta = np.linspace(lo, hi, points)
    worst = -np.inf
    for scheme in SCHEMES:
        rows = objective_by_type(market, 1.0 / theta, scheme)
        worst = max(worst, largest_relative_second_difference(rows))
    return float(worst)


def fit_satisfaction(
    market: Market, aoi: ArrayLike, score: ArrayLike, *, value: float
) -> LearnedSatisfaction:
    """Fit ``G`` to measured quality against AoI, and the market it defines.

    Parameters
    ----------
    market : Market
        The publisher's market (types, costs, slot clock); its ``beta``,
        ``K``, ``H`` and ``alpha`` are replaced.
    aoi, score : array_like
        Measured mean AoI (seconds) and the model's quality at each.
    value : float
        Reward units per second one unit of quality is worth (``> 0``).

    Raises
    ------
    InvalidMarket
        For ``value <= 0``, fewer than two distinct AoI values, or a fit
        whose market has no feasible cycle.
    """
    if not value > 0:
        raise InvalidMarket(
            f"The 'value' parameter of fit_satisfaction must be > 0. Got {value!r}."
        )
    p, q, K, r2 = fit_quality_curve(aoi, score)
    beta = value * q if value * q > FLAT_BETA else FLAT_BETA
    fitted = market.model_copy(update={"alpha": 1.0, "K": K, "beta": beta})
    curvature = objective_curvature(fitted)
    a = np.asarray(aoi, dtype=np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    return LearnedSatisfaction(
        aoi=a,
        score=s,
        p=p,
        q=q,
        K=K,
        r2=r2,
        value=float(value),
        market=fitted,
        curvature=curvature,
        concave=curvature <= CONCAVITY_TOL,
    )

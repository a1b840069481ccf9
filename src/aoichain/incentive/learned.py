"""A learning-aware satisfaction: ``G`` fitted to the model quality a pilot measured.

The paper's satisfaction ``G = beta ln(alpha (K - A) + (1 - alpha)(H - D))``
(eqs. 11-12) values freshness by assumption. A publisher that has measured
its model's quality ``s`` (accuracy, F1, ...) against the AoI ``A`` of the
training data (and the latency ``D`` that comes with it: on the slot clock
both move with the cycle) can value freshness by what it buys instead::

    G = v * s,    s = p + q ln(C - alpha A - (1 - alpha) D),
    q >= 0,  0 <= alpha <= 1,  C > alpha A + (1 - alpha) D at every point

``v`` is what one unit of quality is worth (reward units per second, like
``G``). That is the paper's family with ``K = H = C``: ``G = beta ln g + v p``
with ``beta = v q``. The additive ``v p`` changes no choice and is dropped,
and the fitted market is an ordinary :class:`~aoichain.incentive.Market`
(with the ``corrected`` closed forms, which the measured AoI and latency
follow) that every solver takes. ``alpha = 1`` is quality against AoI alone;
a smaller ``alpha`` is what the data say when longer waits hurt the model
too. A curve that does not fall at all gets ``q = 0``: freshness buys nothing.

Why the exact solver still applies. It needs each per-type objective
``h_n(theta) = w_n G(theta) - k_n / theta`` to be concave in the cycle
``theta`` (pool-adjacent-violators is exact for separable concave objectives
under a chain order). AoI and latency are convex in ``theta`` (both closed
forms), so ``g`` is concave, ``ln`` is concave and increasing: ``G`` is
concave wherever ``g > 0``; ``-k/theta`` is concave. The same holds for
``G = phi(A, D)`` with ``phi`` concave and non-increasing in each, which is
why the fit is restricted to such a family: a measured curve that is convex
(quality dropping fast, then flattening) gets the best concave member, and
the fit's ``r2`` says how well. :func:`fit_satisfaction` also checks the
concavity on the fitted market from numbers (second differences of every
scheme's per-type objective on a grid of cycles) rather than quoting this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from aoichain.incentive.curvature import largest_relative_second_difference
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.market import Market
from aoichain.incentive.solve import SCHEMES, objective_by_type

__all__ = [
    "LearnedSatisfaction",
    "QualityFit",
    "fit_quality",
    "fit_satisfaction",
    "objective_curvature",
]

FloatArray = NDArray[np.float64]

#: Largest relative second difference still read as concave (rounding).
CONCAVITY_TOL = 1e-9
#: ``beta`` of a curve that does not fall at all (a Market needs beta > 0).
FLAT_BETA = 1e-9
_ALPHAS = np.linspace(0.0, 1.0, 51)
_GAPS = np.geomspace(1e-3, 1e5, 81)


def _ls(x: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """Least squares ``y = p + q x`` with ``q >= 0``; returns ``p, q, sse``."""
    xm, ym = float(x.mean()), float(y.mean())
    var = float(np.sum((x - xm) ** 2))
    q = max(float(np.sum((x - xm) * (y - ym)) / var) if var > 0 else 0.0, 0.0)
    p = ym - q * xm
    return p, q, float(np.sum((y - p - q * x) ** 2))


@dataclass(frozen=True)
class QualityFit:
    """``score = p + q ln(C - alpha A - (1 - alpha) D)`` and its ``r2`` (``nan``: flat data)."""

    p: float
    q: float
    alpha: float
    C: float
    r2: float

    def predict(self, aoi: ArrayLike, latency: ArrayLike) -> FloatArray:
        """The fitted score (``-inf`` where the argument of the log is not positive)."""
        z = (
            self.C
            - self.alpha * np.asarray(aoi, dtype=np.float64)
            - (1 - self.alpha) * np.asarray(latency, dtype=np.float64)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(
                np.where(z > 0, self.p + self.q * np.log(np.maximum(z, 1e-300)), -np.inf)
            )


def fit_quality(aoi: ArrayLike, latency: ArrayLike, score: ArrayLike) -> QualityFit:
    """Least-squares fit of ``score = p + q ln(C - alpha A - (1 - alpha) D)``.

    For each ``alpha`` on a grid of ``[0, 1]`` (step 0.02) and each gap
    ``C - max(alpha A + (1 - alpha) D)`` on a log grid (1e-3 to 1e5 times the
    spread of the data), ``p`` and ``q >= 0`` are linear least squares; the
    best pair is polished by a bounded Nelder-Mead search. A score that never
    falls gets ``q = 0`` and, ``C`` and ``alpha`` being then unidentified,
    ``alpha = 1`` and the largest gap.

    Raises
    ------
    InvalidMarket
        Fewer than two points with finite values, or all at one AoI.
    """
    a = np.asarray(aoi, dtype=np.float64).ravel()
    d = np.asarray(latency, dtype=np.float64).ravel()
    y = np.asarray(score, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(d) & np.isfinite(y)
    a, d, y = a[ok], d[ok], y[ok]
    if a.size < 2 or np.unique(a).size < 2:
        raise InvalidMarket(
            "fit_quality needs finite scores at two or more distinct AoI values; "
            f"got {a.size} point(s) at {np.unique(a).size} AoI value(s)."
        )

    def sse_at(x: FloatArray) -> float:
        alpha = float(np.clip(x[0], 0.0, 1.0))
        cost = alpha * a + (1 - alpha) * d
        C = float(cost.max()) + float(np.exp(x[1]))
        return _ls(np.log(C - cost), y)[2]

    # A grid over alpha and the log gap C - max(cost), then a local polish.
    spread = max(float(np.ptp(np.r_[a, d])), 1e-6)
    grid = [(alpha, float(np.log(gap * spread))) for alpha in _ALPHAS for gap in _GAPS]
    values = [sse_at(np.array(x)) for x in grid]
    start = np.array(grid[int(np.argmin(values))])
    polished = minimize(
        sse_at,
        start,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0), (start[1] - 3.0, start[1] + 3.0)],
        options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 4000},
    )
    x = polished.x if polished.fun <= min(values) else start
    alpha = float(np.clip(x[0], 0.0, 1.0))
    cost = alpha * a + (1 - alpha) * d
    C = float(cost.max()) + float(np.exp(x[1]))
    p, q, sse = _ls(np.log(C - cost), y)
    if q == 0.0:
        alpha = 1.0
        C = float(a.max()) + float(_GAPS[-1]) * max(float(np.ptp(a)), 1e-6)
        p, q, sse = _ls(np.log(C - a), y)
    total = float(np.sum((y - y.mean()) ** 2))
    return QualityFit(p, q, alpha, C, 1.0 - sse / total if total > 0 else float("nan"))


@dataclass(frozen=True, eq=False)
class LearnedSatisfaction:
    """A satisfaction fitted to measured quality, and the market it defines.

    Attributes
    ----------
    aoi, latency, score : ndarray
        The measured points (seconds, seconds, the quality metric).
    fit : QualityFit
        ``score = p + q ln(C - alpha A - (1 - alpha) D)``.
    value : float
        Reward units per second that one unit of the score is worth.
    market : Market
        The base market with the fitted ``alpha``, ``K = H = C``,
        ``beta = value q`` and the ``corrected`` closed forms (those the
        measured AoI and latency follow): its ``G`` is ``value * fit`` less
        the constant ``value p``.
    curvature : float
        The largest relative second difference of every scheme's per-type
        objective over a grid of the allowed cycles (``<= 0``: concave).
    concave : bool
        Whether ``curvature <= 1e-9``: the exact solver's premise holds.
    """

    aoi: FloatArray
    latency: FloatArray
    score: FloatArray
    fit: QualityFit
    value: float
    market: Market
    curvature: float
    concave: bool

    def to_dict(self) -> dict[str, object]:
        """The fit as a JSON-ready object."""
        f = self.fit
        return {
            "form": "G = value * (p + q ln(C - alpha A - (1 - alpha) D)); "
            "beta = value q, K = H = C",
            "p": f.p,
            "q": f.q,
            "alpha": f.alpha,
            "C": f.C,
            "r2": f.r2 if np.isfinite(f.r2) else None,
            "value": self.value,
            "beta": self.market.beta,
            "curvature": self.curvature,
            "concave": self.concave,
            "points": [
                {"aoi_s": float(a), "latency_s": float(d), "score": float(s)}
                for a, d, s in zip(self.aoi, self.latency, self.score, strict=True)
            ],
        }


def objective_curvature(market: Market, points: int = 401) -> float:
    """Largest relative second difference of every scheme's per-type objective in ``theta``.

    Sampled on an even grid of the allowed cycles (``(c_min + a) t`` to
    ``(c_max + a) t``, or ``(60 + a) t`` without ``c_max``); points where some
    ``g <= 0`` are left out. ``<= 0`` up to rounding means concave, the premise
    of the exact solver.
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
    market: Market,
    aoi: ArrayLike,
    latency: ArrayLike,
    score: ArrayLike,
    *,
    value: float,
) -> LearnedSatisfaction:
    """Fit ``G`` to measured quality against AoI and latency, and the market it defines.

    Parameters
    ----------
    market : Market
        The publisher's market (types, costs, slot clock); its ``beta``,
        ``K``, ``H``, ``alpha`` and ``formulas`` are replaced.
    aoi, latency, score : array_like
        Measured mean AoI and latency (seconds) and the model's quality at each.
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
            f"The 'value' parameter of fit_satisfaction must be > 0. Got {value!r} instead."
        )
    fit = fit_quality(aoi, latency, score)
    beta = value * fit.q if value * fit.q > FLAT_BETA else FLAT_BETA
    fitted = market.model_copy(
        update={
            "alpha": fit.alpha,
            "K": fit.C,
            "H": fit.C,
            "beta": beta,
            "formulas": "corrected",
        }
    )
    curvature = objective_curvature(fitted)
    return LearnedSatisfaction(
        aoi=np.asarray(aoi, dtype=np.float64).ravel(),
        latency=np.asarray(latency, dtype=np.float64).ravel(),
        score=np.asarray(score, dtype=np.float64).ravel(),
        fit=fit,
        value=float(value),
        market=fitted,
        curvature=curvature,
        concave=curvature <= CONCAVITY_TOL,
    )

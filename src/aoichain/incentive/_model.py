"""The service provider's performance ``g`` as a function of the cycle ``theta`` (eq. 12).

Private to the engine: plain values in, numpy out, no validation. The
solvers work in ``theta = 1/f``, where the closed forms are simplest.

Concavity, for every valid market (``a >= 1``, ``alpha`` in ``[0, 1]``, both
closed forms). AoI and latency are convex in ``theta`` (see
:mod:`aoichain.incentive.freshness`) and also in ``f``: with ``s = a t``,
``A = t + k f/(1 - s f)`` (paper) and ``t + k f`` (corrected) are, the corrected
latency is ``1/(2f) + const + k f``, and the paper's latency is
``(1 - sf)^3/(2 t f^2) + 3 (1 - sf)^2/(2f) + a t^2 f``, whose first term has second
derivative ``3 (1 - sf)[s (1 + sf) f + (1 - sf)(2 + sf)] / (2 t f^4) > 0`` (likewise the
second). So ``g`` is concave in both, ``ln g`` is concave where ``g > 0``, and
every per-type objective ``w beta ln g - k f`` (``= w beta ln g - k/theta``) is
concave in ``f`` and in ``theta``. (The paper's remark that ``U_s`` "is not a
concave function" does not hold for its own model.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive.freshness import Formulas, aoi_derivatives, latency_derivatives
from aoichain.incentive.satisfaction import performance_from

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Algorithm 1's lowest update frequency (Hz); the continuous methods never go below it.
F_MIN = 1e-5

_BISECT_STEPS = 200


@dataclass(frozen=True)
class Performance:
    """Plain parameters of ``g`` (already validated)."""

    t: float
    a: float
    beta: float
    K: float
    H: float
    formulas: Formulas

    def terms(
        self, theta: FloatArray, alpha: FloatArray | float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``g``, ``dg/dtheta`` and ``d2g/dtheta2`` (broadcast over ``theta`` and ``alpha``)."""
        A, A1, A2 = aoi_derivatives(theta, t=self.t, a=self.a, formulas=self.formulas)
        D, D1, D2 = latency_derivatives(theta, t=self.t, a=self.a, formulas=self.formulas)
        al = np.asarray(alpha, dtype=np.float64)
        g = performance_from(A, D, al, self.K, self.H)
        return g, -al * A1 - (1.0 - al) * D1, -al * A2 - (1.0 - al) * D2

    def g(self, theta: FloatArray, alpha: FloatArray | float) -> FloatArray:
        """``g`` alone; ``-inf`` where ``theta <= a t``."""
        th = np.asarray(theta, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g = self.terms(th, alpha)[0]
        return np.where(th > self.a * self.t, g, -np.inf)


@dataclass(frozen=True)
class Domain:
    """Where ``g > 0`` inside the allowed cycles ``[theta_lo, theta_hi]``, per alpha value.

    ``left``/``right`` are the ends of that interval; an end is ``closed`` when
    it is the box end itself (``g > 0`` there) and open when ``g = 0`` there.
    ``peak`` is where ``g`` is largest in the box and ``gmax`` its value.
    """

    left: FloatArray
    left_closed: BoolArray
    right: FloatArray
    right_closed: BoolArray
    peak: FloatArray
    gmax: FloatArray

    @property
    def empty(self) -> BoolArray:
        """Alphas for which no cycle in the box gives ``g > 0``."""
        return np.asarray(~(self.gmax > 0))


def _bisect_sign(
    fn: Callable[[FloatArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    positive_low: bool = True,
) -> FloatArray:
    """Bisection for the point where a monotone-sign function changes sign (vectorised)."""
    lo = lo.copy()
    hi = hi.copy()
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        val = fn(mid)
        go_right = (val > 0) if positive_low else (val <= 0)
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
        if np.all(hi - lo <= 2.0 * np.finfo(float).eps * np.abs(hi)):
            break
    return 0.5 * (lo + hi)


def positive_domain(
    perf: Performance, alphas: FloatArray, theta_lo: float, theta_hi: float
) -> Domain:
    """The interval of cycles in ``[theta_lo, theta_hi]`` where ``g > 0``, per alpha.

    ``g`` is concave in ``theta``, so the set is an interval around the
    maximiser of ``g``; its ends are found by bisection to full precision.
    """
    al = np.asarray(alphas, dtype=np.float64)
    lo = np.full(al.shape, theta_lo)
    hi = np.full(al.shape, theta_hi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_lo = perf.terms(lo, al)[1]
        d_hi = perf.terms(hi, al)[1]
        inner = _bisect_sign(lambda th: perf.terms(th, al)[1], lo, hi)
        peak = np.where(d_lo <= 0, lo, np.where(d_hi >= 0, hi, inner))
        gmax = perf.terms(peak, al)[0]
        g_lo = perf.terms(lo, al)[0]
        g_hi = perf.terms(hi, al)[0]
        left_closed = g_lo > 0
        right_closed = g_hi > 0
        left = np.where(
            left_closed, lo, _bisect_sign(lambda th: perf.terms(th, al)[0], lo, peak, False)
        )
        right = np.where(right_closed, hi, _bisect_sign(lambda th: perf.terms(th, al)[0], peak, hi))
    return Domain(left, left_closed, right, right_closed, peak, gmax)

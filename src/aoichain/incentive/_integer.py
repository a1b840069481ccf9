"""Whole collection slots: the best contract with ``c in {c_min, ..., c_max}``.

Enumerates the candidate cycles ``theta_c = (c + a) t`` and assigns them to the
types by dynamic programming over non-decreasing ``f`` (``O(N m)`` for ``m``
candidates): exactly optimal among integer menus, since every IC menu has
non-decreasing ``f`` and, given such ``f``, the rewards of eq. (18) are the SP's
best (Lemma 2). For CC the types are independent and each takes its best
candidate.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive._exact import Problem
from aoichain.incentive.freshness import cycle
from aoichain.incentive.satisfaction import satisfaction_of_performance

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


def integer_candidates(
    c_min: float, c_max: float, a: float, t: float, theta_hi: float
) -> tuple[FloatArray, FloatArray]:
    """Whole ``c`` in ``[c_min, c_max]`` (cycles above ``theta_hi`` dropped) and their cycles.

    Returned in ascending ``f``, i.e. descending ``c``.
    """
    lo = math.ceil(c_min - 1e-12)
    hi = math.floor(c_max + 1e-12)
    cs = np.arange(hi, lo - 1, -1, dtype=np.float64)
    theta = cycle(cs, t=t, a=a)
    keep = theta <= theta_hi * (1 + 1e-12)
    return cs[keep], theta[keep]


def objective_table(prob: Problem, theta: FloatArray) -> FloatArray:
    """``h_n(theta_k)`` for every type and candidate (``-inf`` where ``g_n <= 0``)."""
    alphas = prob.alpha_values[prob.alpha_index]
    g = prob.perf.g(theta[None, :], alphas[:, None])
    w = prob.weights[:, None]
    sat = satisfaction_of_performance(g, prob.perf.beta)
    with np.errstate(invalid="ignore"):
        val = np.where(w > 0, w * sat, 0.0) - prob.costs[:, None] / theta[None, :]
    return np.asarray(val, dtype=np.float64)


def solve_integer(prob: Problem, theta: FloatArray) -> IntArray | None:
    """Index of the candidate (ascending ``f``) each type gets; ``None`` if none is feasible."""
    n = prob.weights.size
    table = objective_table(prob, theta)
    if not prob.monotone:
        best = np.argmax(table, axis=1)
        if not np.all(np.isfinite(table[np.arange(n), best])):
            return None
        return np.asarray(best, dtype=np.intp)
    m = theta.size
    ptr = np.empty((n, m), dtype=np.int32 if m > 32767 else np.int16)
    value = table[0].copy()
    for i in range(1, n):
        run = np.maximum.accumulate(value)
        # first index reaching the running maximum (lowest f among ties)
        arg = np.flatnonzero(np.concatenate([[True], run[1:] > run[:-1]]))
        where = np.searchsorted(arg, np.arange(m), side="right") - 1
        ptr[i] = arg[where]
        value = table[i] + run
    k = int(np.argmax(value))
    if not np.isfinite(value[k]):
        return None
    out = np.empty(n, dtype=np.intp)
    out[-1] = k
    for i in range(n - 1, 0, -1):
        out[i - 1] = ptr[i, out[i]]
    return out

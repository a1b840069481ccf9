"""Algorithm 1 of the paper, as published: grid search, then bunching and ironing.

For each type the per-type objective is evaluated on the grid
``f = f_min + z phi < f_max`` (``f_min = 1e-5``, ``f_max = 1/((c_min + a) t)``,
the largest feasible frequency) and its argmax taken. Points where ``g <= 0``
(``f_min`` itself lies there in the paper's setting, erratum 5) or outside the
market's allowed cycles score ``-inf``. If the argmaxes are not
non-decreasing, adjacent violating types are pooled and given the grid point
that maximises their summed objective (bunching and ironing, Gao et al.,
JSAC 2011), until the sequence is monotone. Cost: ``O(N (f_max - f_min)/phi)``
evaluations (erratum 4), in chunks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive._exact import Problem
from aoichain.incentive._model import F_MIN
from aoichain.incentive.satisfaction import satisfaction_of_performance

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

_CHUNK_ELEMENTS = 1 << 22


def grid(f_max: float, phi: float) -> FloatArray:
    """The grid ``f_min + z phi`` for ``z = 0, 1, ...`` while below ``f_max``."""
    count = int(np.ceil((f_max - F_MIN) / phi))
    pts = F_MIN + phi * np.arange(max(count, 0), dtype=np.float64)
    return pts[pts < f_max]


def _satisfaction_rows(prob: Problem, f: FloatArray, f_lo: float) -> FloatArray:
    """``G`` on a chunk of the grid, one row per distinct alpha (``-inf`` where infeasible)."""
    theta = 1.0 / f
    g = prob.perf.g(theta[None, :], prob.alpha_values[:, None])
    sat = satisfaction_of_performance(g, prob.perf.beta)
    return np.where(f[None, :] >= f_lo, sat, -np.inf)


def _objective(
    sat_rows: FloatArray, f: FloatArray, weights: FloatArray, cost: float, f_lo: float
) -> FloatArray:
    """``sum_alpha W_alpha G_alpha(f) - K f`` for one pooled block (1-D, over the chunk)."""
    val = -cost * f
    val = np.where(f >= f_lo, val, -np.inf)
    for j in np.flatnonzero(weights > 0):
        val = val + weights[j] * sat_rows[j]
    return np.asarray(val, dtype=np.float64)


def _block_argmax(
    prob: Problem, pts: FloatArray, f_lo: float, weights: FloatArray, cost: float
) -> tuple[int, float]:
    """Grid index (first among ties) and value of a pooled block's best point."""
    best_i, best_v = -1, -np.inf
    step = max(1, _CHUNK_ELEMENTS // max(1, prob.alpha_values.size))
    for s in range(0, pts.size, step):
        f = pts[s : s + step]
        val = _objective(_satisfaction_rows(prob, f, f_lo), f, weights, cost, f_lo)
        i = int(np.argmax(val))
        if val[i] > best_v:
            best_i, best_v = s + i, float(val[i])
    return best_i, best_v


def solve_algorithm1(prob: Problem, pts: FloatArray, f_lo: float) -> IntArray | None:
    """Grid index per type (``None`` when some type has no feasible grid point)."""
    n = prob.weights.size
    n_alpha = prob.alpha_values.size
    best_v = np.full(n, -np.inf)
    best_i = np.full(n, -1, dtype=np.intp)
    chunk = max(1, _CHUNK_ELEMENTS // max(n, n_alpha))
    w = prob.weights
    k = prob.costs
    for s in range(0, pts.size, chunk):
        f = pts[s : s + chunk]
        sat = _satisfaction_rows(prob, f, f_lo)[prob.alpha_index]
        with np.errstate(invalid="ignore"):
            val = np.where(w[:, None] > 0, w[:, None] * sat, 0.0) - k[:, None] * f[None, :]
        val = np.where(f[None, :] >= f_lo, val, -np.inf)
        i = np.argmax(val, axis=1)
        v = val[np.arange(n), i]
        better = v > best_v
        best_v = np.where(better, v, best_v)
        best_i = np.where(better, s + i, best_i)
    if not np.all(np.isfinite(best_v)):
        return None
    if not prob.monotone:
        return best_i
    # Bunching and ironing: a stack of pooled blocks, each at its best grid point.
    idx: list[int] = []
    members: list[list[int]] = []
    for n_type in range(n):
        idx.append(int(best_i[n_type]))
        members.append([n_type])
        while len(idx) > 1 and idx[-2] > idx[-1]:
            top = members.pop()
            idx.pop()
            members[-1].extend(top)
            block = np.asarray(members[-1])
            weights = np.bincount(
                prob.alpha_index[block], weights=w[block], minlength=n_alpha
            ).astype(np.float64)
            idx[-1], _ = _block_argmax(prob, pts, f_lo, weights, float(k[block].sum()))
    out = np.empty(n, dtype=np.intp)
    for i_block, block_members in zip(idx, members, strict=True):
        out[block_members] = i_block
    return out

"""The exact continuous solver: pool adjacent violators in the cycle ``theta = 1/f``.

Every scheme maximises ``sum_n h_n`` with, per type,
``h_n(theta) = w_n beta ln g_n(theta) - k_n / theta`` (``w_n, k_n >= 0``; see
:func:`aoichain.incentive.solve`), under ``theta_1 >= ... >= theta_N``
(``f`` non-decreasing) for CA and CS, and without it for CC, over
``theta_lo <= theta <= theta_hi``.

Why this is exact for every valid market. Every ``h_n`` is concave, in ``f``
and in ``theta`` alike (proof in :mod:`aoichain.incentive._model`; checked
numerically by the tests): AoI and latency are convex, so ``g_n`` is concave,
``ln g_n`` is concave where ``g_n > 0``, and ``-k/theta`` is concave. A
separable concave objective under a chain order is maximised exactly by
pool-adjacent-violators, each pooled block at the maximiser of its summed
objective (Best, Chakravarti & Ubhaya 2000). The order of ``theta`` is the
reverse of that of ``f``, and a block's maximiser is found to machine
precision by safeguarded Newton on its derivative, which is decreasing. The
result is then checked, not assumed: the KKT conditions of the chain problem
(within each block, prefix sums of the types' derivatives ``<= 0`` and a zero
total, with the usual signs at the box ends) are verified, and the contract
reports whether they hold. Pooling only ever happens through the constraint;
the per-type maximisers themselves are unique.

With one ``alpha`` for all types the blocks' maximisers depend only on the
ratio ``k_B / w_B``, so the pooling runs on those ratios alone (a weighted
antitonic regression, vectorised) and the maximisers are computed once at the
end; with per-type ``alpha`` each pooling round solves its new blocks anew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aoichain.incentive._model import Domain, Performance

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

_EPS = float(np.finfo(np.float64).eps)
_NEWTON_STEPS = 200
_VECTOR_ROUNDS = 64
_KKT_RTOL = 1e-7
_HUGE = 1e300


@dataclass(frozen=True)
class Problem:
    """Plain inputs of the exact solver."""

    perf: Performance
    weights: FloatArray  # w_n
    costs: FloatArray  # k_n
    alpha_values: FloatArray  # distinct alphas
    alpha_index: IntArray  # per type, into alpha_values
    domain: Domain  # per distinct alpha
    theta_lo: float
    theta_hi: float
    monotone: bool


@dataclass(frozen=True)
class Solution:
    """Cycles per type, whether the optimality check passed, and a note."""

    theta: FloatArray
    converged: bool
    message: str


# ---- block maximisers -----------------------------------------------------------------


def _decreasing_root(
    fn: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    lo: FloatArray,
    hi: FloatArray,
    x0: FloatArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """Root of decreasing functions on ``(lo, hi)`` with a sign change (vectorised).

    Newton steps inside the bracket, bisection whenever a step leaves the
    bracket or is not at most half the step before last (as in Numerical
    Recipes' ``rtsafe``). An element is done when its Newton step is below
    ``32`` ulps of ``x`` or its bracket below ``4`` ulps. ``fn(x)`` returns the
    values and the derivatives; ``x0`` is an optional first guess.
    """
    lo = lo.copy()
    hi = hi.copy()
    x = 0.5 * (lo + hi)
    if x0 is not None:
        x = np.where((x0 > lo) & (x0 < hi), x0, x)
    step_old = hi - lo
    step = step_old.copy()
    done = np.zeros(x.shape, dtype=bool)
    for _ in range(_NEWTON_STEPS):
        val, der = fn(x)
        zero = val == 0
        up = val > 0
        lo = np.where(up | zero, x, lo)
        hi = np.where(up & ~zero, hi, x)
        mid = 0.5 * (lo + hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton_step = val / der
        newton = x - newton_step
        use_newton = (
            np.isfinite(newton)
            & (newton > lo)
            & (newton < hi)
            & (np.abs(newton_step) <= 0.5 * np.abs(step_old))
        )
        step_old = step
        step = np.where(use_newton, newton_step, x - mid)
        nxt = np.where(use_newton, newton, mid)
        tiny = np.isfinite(newton_step) & (np.abs(newton_step) <= 32.0 * _EPS * np.abs(x))
        small = tiny | (hi - lo <= 4.0 * _EPS * hi)
        x = np.where(done | (small & ~use_newton), x, nxt)
        done = done | small | zero
        if done.all():
            break
    return x, done


def _block_argmax(
    evaluate: Callable[[FloatArray, IntArray], tuple[FloatArray, FloatArray]],
    left: FloatArray,
    left_closed: BoolArray,
    right: FloatArray,
    right_closed: BoolArray,
    x0: FloatArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """Maximisers of concave block objectives from their derivative ``evaluate``.

    ``evaluate(x, idx)`` gives the derivative and its derivative for blocks
    ``idx`` at ``x``. A closed end is the answer when the derivative already
    points outward there; otherwise the derivative changes sign inside.
    """
    n = left.size
    out = np.empty(n)
    ok = np.ones(n, dtype=bool)
    all_idx = np.arange(n)
    d_left = np.where(left_closed, evaluate(left, all_idx)[0], np.inf)
    d_right = np.where(right_closed, evaluate(right, all_idx)[0], -np.inf)
    at_left = d_left <= 0
    at_right = ~at_left & (d_right >= 0)
    out[at_left] = left[at_left]
    out[at_right] = right[at_right]
    inner = np.flatnonzero(~at_left & ~at_right)
    if inner.size:
        root, conv = _decreasing_root(
            lambda x: evaluate(x, inner),
            left[inner].copy(),
            right[inner].copy(),
            None if x0 is None else x0[inner],
        )
        out[inner] = root
        ok[inner] = conv
    return out, ok


def _scalar_derivative(
    prob: Problem, ratios: FloatArray
) -> Callable[[FloatArray], tuple[FloatArray, FloatArray]]:
    """Derivative in ``theta`` of ``beta ln g - r/theta`` (one alpha) and its derivative."""
    alpha = float(prob.alpha_values[0])
    beta = prob.perf.beta
    peak = float(prob.domain.peak[0])

    def evaluate(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g, g1, g2 = prob.perf.terms(x, alpha)
            inside = g > 0
            gs = np.where(inside, g, 1.0)
            inv2 = 1.0 / (x * x)
            val = beta * g1 / gs + ratios * inv2
            der = beta * (g2 * gs - g1 * g1) / (gs * gs) - 2.0 * ratios * inv2 / x
        val = np.where(inside, val, np.where(x < peak, _HUGE, -_HUGE))
        return val, der

    return evaluate


# ---- scalar alpha: pooling on ratios ------------------------------------------------------


def _merge_runs(starts: IntArray, viol: BoolArray) -> IntArray:
    """Keep the block starts that do not continue a violating run."""
    keep = np.concatenate([[True], ~viol])
    return starts[keep]


def _pool_ratios(w: FloatArray, k: FloatArray) -> IntArray:
    """Block starts of the weighted antitonic regression of ``k/w`` (PAV).

    Blocks must have non-increasing ratios ``K_B / W_B`` (``theta`` non-increasing);
    a block with ``W_B = 0`` has ratio ``+inf``. Whole increasing runs are pooled
    at once (PAV would pool them one by one with the same result), which takes
    a few vectorised rounds; a stack pass finishes any remainder.
    """
    n = w.size
    starts = np.arange(n)
    for _ in range(_VECTOR_ROUNDS):
        bw = np.add.reduceat(w, starts)
        bk = np.add.reduceat(k, starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bw > 0, bk / np.where(bw > 0, bw, 1.0), np.inf)
        viol = ratio[:-1] < ratio[1:]
        if not viol.any():
            return starts
        starts = _merge_runs(starts, viol)
    bw = np.add.reduceat(w, starts).tolist()
    bk = np.add.reduceat(k, starts).tolist()
    st: list[int] = []
    sw: list[float] = []
    sk: list[float] = []
    for s, wi, ki in zip(starts.tolist(), bw, bk, strict=True):
        st.append(s)
        sw.append(wi)
        sk.append(ki)
        while len(st) > 1 and _ratio_less(sk[-2], sw[-2], sk[-1], sw[-1]):
            k_top, w_top = sk.pop(), sw.pop()
            sk[-1] += k_top
            sw[-1] += w_top
            st.pop()
    return np.asarray(st, dtype=np.intp)


def _ratio_less(k1: float, w1: float, k2: float, w2: float) -> bool:
    r1 = k1 / w1 if w1 > 0 else np.inf
    r2 = k2 / w2 if w2 > 0 else np.inf
    return bool(r1 < r2)


def _scalar_argmax(prob: Problem, ratios: FloatArray) -> tuple[FloatArray, bool]:
    """Maximiser of ``beta ln g(theta) - r/theta`` for each (sorted) ratio ``r``.

    A closed end of the domain is the answer when the derivative points
    outward there, which for one alpha is a threshold on ``r``. Otherwise many
    ratios are started from the interpolated solution of a sample of them.
    """
    dom = prob.domain
    left, right = float(dom.left[0]), float(dom.right[0])
    one = np.array([left, right])
    with np.errstate(divide="ignore", invalid="ignore"):
        g, g1, _ = prob.perf.terms(one, float(prob.alpha_values[0]))
        slope = prob.perf.beta * g1 / g
    out = np.empty(ratios.size)
    at_left = bool(dom.left_closed[0]) & (ratios <= -slope[0] * left * left)
    at_right = ~at_left & bool(dom.right_closed[0]) & (ratios >= -slope[1] * right * right)
    out[at_left] = left
    out[at_right] = right
    inner = np.flatnonzero(~at_left & ~at_right)
    if inner.size == 0:
        return out, True
    r = ratios[inner]

    def run(rs: FloatArray, x0: FloatArray | None) -> tuple[FloatArray, BoolArray]:
        return _decreasing_root(
            _scalar_derivative(prob, rs), np.full(rs.size, left), np.full(rs.size, right), x0
        )

    x0 = None
    if r.size > 256:
        pick = np.unique(np.linspace(0, r.size - 1, 65).round().astype(np.intp))
        sample, _ = run(r[pick], None)
        order = np.argsort(r[pick])
        x0 = np.interp(np.log(r), np.log(r[pick][order]), sample[order])
    root, conv = run(r, x0)
    out[inner] = root
    return out, bool(conv.all())


def _solve_scalar(prob: Problem, w: FloatArray, k: FloatArray) -> tuple[FloatArray, bool]:
    n = w.size
    starts = _pool_ratios(w, k) if prob.monotone else np.arange(n)
    bw = np.add.reduceat(w, starts)
    bk = np.add.reduceat(k, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bw > 0, bk / np.where(bw > 0, bw, 1.0), np.inf)
    # One maximiser per distinct ratio (pooled ratios are already non-increasing).
    if prob.monotone:
        first = np.concatenate([[True], ratio[1:] != ratio[:-1]])
        uniq = ratio[first]
        inv = np.cumsum(first) - 1
    else:
        uniq, inv = np.unique(ratio, return_inverse=True)
    finite = np.isfinite(uniq)
    theta_u = np.full(uniq.size, prob.theta_hi)
    ok = True
    if finite.any():
        r = uniq[finite]
        theta_u[finite], ok = _scalar_argmax(prob, r)
    sizes = np.diff(np.append(starts, n))
    return np.repeat(theta_u[inv.reshape(-1)], sizes), ok


# ---- per-type alpha: pooling rounds with block solves ---------------------------------


def _solve_blocks(
    prob: Problem, w: FloatArray, k: FloatArray, aidx: IntArray, starts: IntArray
) -> tuple[FloatArray, BoolArray]:
    """Maximiser of each block's summed objective (several alphas per block)."""
    n = w.size
    dom = prob.domain
    beta = prob.perf.beta
    sizes = np.diff(np.append(starts, n))
    has_w = w > 0
    left_t = np.where(has_w, dom.left[aidx], -np.inf)
    right_t = np.where(has_w, dom.right[aidx], np.inf)
    lc_t = np.where(has_w, dom.left_closed[aidx], True)
    rc_t = np.where(has_w, dom.right_closed[aidx], True)
    left = np.maximum.reduceat(left_t, starts)
    right = np.minimum.reduceat(right_t, starts)
    # An end is closed only if every member that sets it is closed there.
    left_closed = ~np.logical_or.reduceat(~lc_t & (left_t >= np.repeat(left, sizes)), starts)
    right_closed = ~np.logical_or.reduceat(~rc_t & (right_t <= np.repeat(right, sizes)), starts)
    no_w = ~np.logical_or.reduceat(has_w, starts)
    left = np.where(no_w, prob.theta_lo, left)
    right = np.where(no_w, prob.theta_hi, right)
    left_closed = left_closed | no_w
    right_closed = right_closed | no_w
    bk = np.add.reduceat(k, starts)
    alphas = prob.alpha_values[aidx]
    peaks = dom.peak[aidx]
    block_of = np.repeat(np.arange(starts.size), sizes)

    def evaluate(x: FloatArray, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        sel = np.zeros(starts.size, dtype=bool)
        sel[idx] = True
        member = sel[block_of]
        xs_full = np.zeros(starts.size)
        xs_full[idx] = x
        xm = xs_full[block_of][member]
        wm = w[member]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g, g1, g2 = prob.perf.terms(xm, alphas[member])
            inside = g > 0
            gs = np.where(inside, g, 1.0)
            val_m = np.where(wm > 0, wm * beta * g1 / gs, 0.0)
            der_m = np.where(wm > 0, wm * beta * (g2 * gs - g1 * g1) / (gs * gs), 0.0)
        outside = np.where(xm < peaks[member], _HUGE, -_HUGE)
        val_m = np.where(inside | (wm == 0), val_m, outside)
        local_starts = np.concatenate([[0], np.cumsum(sizes[idx])[:-1]])
        val = np.add.reduceat(val_m, local_starts) + bk[idx] / (x * x)
        der = np.add.reduceat(der_m, local_starts) - 2.0 * bk[idx] / (x * x * x)
        return val, der

    return _block_argmax(evaluate, left, left_closed, right, right_closed)


def _solve_general(
    prob: Problem, w: FloatArray, k: FloatArray, aidx: IntArray
) -> tuple[FloatArray, bool]:
    """PAV rounds: pool every run of violators at once, re-solve only the pooled blocks."""
    n = w.size
    starts = np.arange(n)
    theta_b, ok = _solve_blocks(prob, w, k, aidx, starts)
    while prob.monotone:
        viol = theta_b[:-1] < theta_b[1:]
        if not viol.any():
            break
        keep = np.concatenate([[True], ~viol])
        pooled = keep & np.concatenate([~viol, [True]])  # False where a block joins a run
        new_starts = starts[keep]
        # a new block is unchanged when the old block at its start was not pooled
        unchanged = pooled[keep]
        theta_new = theta_b[keep]
        ok_new = ok[keep]
        redo = np.flatnonzero(~unchanged)
        sizes = np.diff(np.append(new_starts, n))
        local = np.concatenate([[0], np.cumsum(sizes[redo])[:-1]])
        members = np.repeat(new_starts[redo] - local, sizes[redo]) + np.arange(
            int(sizes[redo].sum())
        )
        theta_new[redo], ok_new[redo] = _solve_blocks(
            prob, w[members], k[members], aidx[members], local
        )
        starts, theta_b, ok = new_starts, theta_new, ok_new
    sizes = np.diff(np.append(starts, n))
    return np.repeat(theta_b, sizes), bool(ok.all())


# ---- the solver -------------------------------------------------------------------------


def solve_exact(prob: Problem) -> Solution:
    """Exact maximiser of ``sum_n h_n(theta_n)`` (see the module docstring)."""
    w, k = prob.weights, prob.costs
    n = w.size
    free = (w == 0) & (k == 0)
    active = np.flatnonzero(~free)
    wa, ka, aa = w[active], k[active], prob.alpha_index[active]
    if prob.alpha_values.size == 1:
        theta_a, ok = _solve_scalar(prob, wa, ka)
    else:
        theta_a, ok = _solve_general(prob, wa, ka, aa)
    theta = np.empty(n)
    theta[active] = theta_a
    if free.any():
        # A type that is worth nothing either way takes its lower neighbour's item.
        pos = np.searchsorted(active, np.flatnonzero(free)) - 1
        theta[free] = np.where(pos >= 0, theta_a[np.maximum(pos, 0)], theta_a[0])
    theta = np.clip(theta, prob.theta_lo, prob.theta_hi)
    kkt_ok, note = check_kkt(prob, theta)
    converged = ok and kkt_ok
    if not ok:
        note = "a block maximiser did not reach machine precision; " + note
    return Solution(theta, converged, note)


def type_derivatives(prob: Problem, theta: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Per type: ``dh_n/dtheta``, its scale (sum of absolute parts) and ``g_n > 0``."""
    alphas = prob.alpha_values[prob.alpha_index]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g, g1, _ = prob.perf.terms(theta, alphas)
        inside = g > 0
        part = np.where(prob.weights > 0, prob.weights * prob.perf.beta * g1 / g, 0.0)
        cost = prob.costs / (theta * theta)
    return part + cost, np.abs(part) + cost, inside | (prob.weights == 0)


def check_kkt(prob: Problem, theta: FloatArray) -> tuple[bool, str]:
    """Verify the optimality conditions of the (chain-ordered) concave problem.

    Runs of equal ``theta`` are the blocks. Inside a run, with ``d`` the
    types' derivatives in ``theta``: every prefix sum ``<= 0`` (no leading
    subset wants a longer cycle) and the total ``= 0``; at ``theta_hi`` every
    suffix sum ``>= 0`` instead, at ``theta_lo`` every prefix sum ``<= 0``.
    Tolerance: ``1e-7`` of the block's sum of absolute derivative parts.
    """
    d, scale, inside = type_derivatives(prob, theta)
    if not inside.all():
        return False, f"{int((~inside).sum())} type(s) ended where g <= 0"
    n = theta.size
    if prob.monotone:
        if np.any(np.diff(theta) > 0):
            return False, "the cycles are not non-increasing (f not non-decreasing)"
        starts = np.flatnonzero(np.concatenate([[True], theta[1:] != theta[:-1]]))
    else:
        starts = np.arange(n)
    sizes = np.diff(np.append(starts, n))
    run = np.repeat(np.arange(starts.size), sizes)
    csum = np.cumsum(d)
    base = np.concatenate([[0.0], csum])[starts]
    prefix = csum - base[run]
    total = np.add.reduceat(d, starts)
    suffix = total[run] - prefix + d
    tol = _KKT_RTOL * np.add.reduceat(scale, starts) + 1e-300
    tol_t = tol[run]
    th_b = theta[starts]
    pinned = th_b >= prob.theta_hi
    at_lo = th_b <= prob.theta_lo
    at_hi = pinned & ~at_lo
    pinned &= at_lo  # theta_lo == theta_hi: nothing can move
    at_lo &= ~pinned
    interior = ~at_hi & ~at_lo & ~pinned
    bad_prefix = (prefix > tol_t) & (interior | at_lo)[run]
    bad_suffix = (suffix < -tol_t) & at_hi[run]
    bad_total = interior & (np.abs(total) > tol)
    bad = int(bad_prefix.sum() + bad_suffix.sum() + bad_total.sum())
    if bad:
        return False, f"the optimality (KKT) check failed at {bad} place(s)"
    return True, "optimal: KKT conditions of the concave problem in theta hold"

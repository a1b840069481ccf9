"""How a cost grows with problem size: log-log slopes of measured or predicted costs.

Erratum 4 of the SPEC says Algorithm 1's cost grows as ``(f_max - f_min)/phi``,
not as its logarithm. A cost ``T ~ x^k`` has slope ``k`` on a log-log plot,
so the slope of measured times against ``1/phi`` tells the two laws apart:
about 1 for a grid scan, about ``1/ln((f_max - f_min)/phi)`` (near 0.1 here)
for a logarithmic one. The timing itself is left to the caller (this layer
does no I/O).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["log_cost", "log_log_slope"]


def log_log_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of ``ln y`` against ``ln x``: the exponent ``k`` of ``y ~ x^k``.

    Parameters
    ----------
    x, y : array_like
        Positive values, at least two distinct ``x``.

    Returns
    -------
    float
        The fitted exponent (dimensionless).

    Raises
    ------
    ValueError
        If fewer than two points, a value is not positive, or every ``x`` is equal.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.size != ya.size or xa.size < 2:
        raise ValueError("log_log_slope needs two equally long series of at least 2 values")
    if not (np.all(xa > 0) and np.all(ya > 0) and np.all(np.isfinite(xa * ya))):
        raise ValueError("log_log_slope needs finite values > 0")
    lx, ly = np.log(xa), np.log(ya)
    spread = lx - lx.mean()
    denominator = float(np.sum(spread * spread))
    if denominator == 0:
        raise ValueError("log_log_slope needs at least two distinct x values")
    return float(np.sum(spread * (ly - ly.mean())) / denominator)


def log_cost(span: float, step: ArrayLike, n: int = 1) -> np.ndarray:
    """The cost ``n log2(span/step)`` of the claimed ``O(N log((f_max - f_min)/phi))`` law.

    Parameters
    ----------
    span : float
        ``f_max - f_min`` in Hz.
    step : array_like
        Grid steps ``phi`` in Hz (each below ``span``).
    n : int
        Number of types ``N``.

    Returns
    -------
    ndarray
        Operations the claimed law counts (its scale is irrelevant to a slope).
    """
    return np.asarray(n * np.log2(span / np.asarray(step, dtype=np.float64)), dtype=np.float64)

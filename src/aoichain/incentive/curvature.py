"""Curvature on a grid: second differences, to check concavity and convexity numerically.

On evenly spaced points a function is convex where its second differences
are ``>= 0`` and concave where they are ``<= 0``. :mod:`aoichain.incentive._model`
proves that every per-type objective is concave; these functions let a
report check it (and the convexity of AoI and latency in the cycle) from
numbers instead of quoting it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["largest_relative_second_difference", "second_differences"]

FloatArray = NDArray[np.float64]


def second_differences(values: ArrayLike, axis: int = -1) -> FloatArray:
    """``y[k+2] - 2 y[k+1] + y[k]`` along ``axis`` (two points fewer than ``values``).

    ``nan`` where a non-finite value makes the difference undefined.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(np.diff(np.asarray(values, dtype=np.float64), 2, axis=axis))


def largest_relative_second_difference(values: ArrayLike) -> float:
    """The largest second difference along the last axis, over the largest ``|value|``.

    Only points whose three neighbours are finite count (an objective is
    ``-inf`` where it is infeasible). ``<= 0`` (up to rounding) means every row
    is concave on the grid; a clearly positive value means some row bends
    upward.

    Parameters
    ----------
    values : array_like
        One row per function, sampled on the same evenly spaced grid.

    Returns
    -------
    float
        Dimensionless; ``-inf`` when no three neighbouring values are finite.
    """
    y = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(y)
    defined = finite[..., :-2] & finite[..., 1:-1] & finite[..., 2:]
    if not defined.any():
        return -np.inf
    largest = float(np.max(np.where(defined, second_differences(y), -np.inf)))
    scale = float(np.max(np.abs(y[finite])))
    return largest / scale if scale > 0 else largest

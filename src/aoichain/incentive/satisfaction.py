"""The service provider's satisfaction with the data it is served (eqs. 11-12).

The SP weighs how stale the cached data is (AoI ``A``) against how long a
training request waits (latency ``D``), each against the most it tolerates
(``K`` and ``H`` seconds), into its *performance*
``g = alpha (K - A) + (1 - alpha)(H - D)`` (eq. 12), and is satisfied by
``G = beta ln g`` (eq. 11). Where ``g <= 0`` the logarithm is undefined and no
contract may go: ``G = -inf`` there, never a ``nan``.

These are the only places the two formulas are written: the market's
:func:`~aoichain.incentive.market.satisfaction`, the solvers and the
workflow's measured satisfaction all call them. Plain numpy, no validation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "performance_from",
    "performance_slope_in_alpha",
    "satisfaction_from",
    "satisfaction_of_performance",
]

FloatArray = NDArray[np.float64]


def performance_from(
    aoi: ArrayLike, latency: ArrayLike, alpha: ArrayLike, K: float, H: float
) -> FloatArray:
    """The SP's performance ``g = alpha (K - A) + (1 - alpha)(H - D)`` (eq. 12).

    Parameters
    ----------
    aoi, latency : array_like
        Age of information ``A`` and service latency ``D``, in seconds.
    alpha : array_like
        AoI preference in ``[0, 1]`` (broadcast against ``aoi`` and ``latency``).
    K, H : float
        Largest tolerated AoI and latency, in seconds.

    Returns
    -------
    ndarray
        ``g`` in seconds (``-inf`` where ``A`` or ``D`` is ``inf``).
    """
    A = np.asarray(aoi, dtype=np.float64)
    D = np.asarray(latency, dtype=np.float64)
    al = np.asarray(alpha, dtype=np.float64)
    return np.asarray(al * (K - A) + (1.0 - al) * (H - D), dtype=np.float64)


def satisfaction_of_performance(g: ArrayLike, beta: float) -> FloatArray:
    """The SP's satisfaction ``G = beta ln g`` (eq. 11, natural log).

    Parameters
    ----------
    g : array_like
        Performance (eq. 12), e.g. from :func:`performance_from`.
    beta : float
        Unit profit of satisfaction.

    Returns
    -------
    ndarray
        ``G``; ``-inf`` where ``g <= 0`` (or ``g`` is ``nan``): no satisfaction
        is defined there, and a maximiser must never pick such a point.
    """
    ga = np.asarray(g, dtype=np.float64)
    positive = ga > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            np.where(positive, beta * np.log(np.where(positive, ga, 1.0)), -np.inf),
            dtype=np.float64,
        )


def satisfaction_from(
    aoi: ArrayLike, latency: ArrayLike, alpha: ArrayLike, K: float, H: float, beta: float
) -> FloatArray:
    """The SP's satisfaction ``G = beta ln(alpha (K - A) + (1 - alpha)(H - D))`` (eqs. 11-12).

    For measured (or predicted) AoI and latency; the market's
    :func:`~aoichain.incentive.market.satisfaction` is the same as a function
    of the update frequency.

    Parameters
    ----------
    aoi, latency : array_like
        Age of information and service latency, in seconds.
    alpha : array_like
        AoI preference in ``[0, 1]`` (broadcast against ``aoi`` and ``latency``).
    K, H : float
        Largest tolerated AoI and latency, in seconds.
    beta : float
        Unit profit of satisfaction.

    Returns
    -------
    ndarray
        ``G``; ``-inf`` where the performance ``g <= 0``.
    """
    return satisfaction_of_performance(performance_from(aoi, latency, alpha, K, H), beta)


def performance_slope_in_alpha(
    aoi: ArrayLike, latency: ArrayLike, K: float, H: float
) -> FloatArray:
    """``dg/dalpha = (K - A) - (H - D)``: how the performance moves with the AoI preference.

    Positive exactly where ``K - A > H - D``, the condition under which Sec. V
    says the SP's utility grows linearly with ``alpha``.

    Parameters
    ----------
    aoi, latency : array_like
        Age of information and service latency, in seconds.
    K, H : float
        Largest tolerated AoI and latency, in seconds.

    Returns
    -------
    ndarray
        The slope, in seconds per unit of ``alpha``.
    """
    A = np.asarray(aoi, dtype=np.float64)
    D = np.asarray(latency, dtype=np.float64)
    return np.asarray((K - A) - (H - D), dtype=np.float64)

"""Age of information and service latency of a periodically refreshed cache (Sec. III-A).

A worker's update cycle lasts ``theta = (c + a) t`` seconds: ``c`` slots of
``t`` seconds collecting and processing data, then ``a`` slots serving. Both
closed forms of the SPEC (``docs/formulas.md``) are offered:

``paper``
    eqs. (4)-(5) exactly as printed, the default for reproducing the paper;
``corrected``
    what the slot rules of Sec. III-A really average to (eq. (3) for AoI, and
    eq. (2) without its extra factor ``c``), errata 1-2 of the SPEC.

The functions are vectorised over ``theta`` and return seconds. A cycle with
``theta <= a t`` has no collection phase (``c <= 0``) and is infeasible: its
AoI and latency are ``inf``, so a satisfaction ``beta ln g`` built on them is
``-inf`` rather than a ``nan``.

The module also holds the first and second derivatives in ``theta`` that the
exact solver needs. In ``theta`` every form is convex for ``a >= 1``:
``A = t + t^2 a(a+1) / (2 (theta - a t))`` (paper) and
``A = t + t^2 (a^2 - a) / (2 theta)`` (corrected) are, ``D`` (paper) is
``(theta - at)^3/(2 t theta) + 3 (theta - at)^2/(2 theta) + a t^2/theta`` whose
second derivative ``(1 - (at/theta)^3)/t + 3 (at)^2/theta^3 + 2 a t^2/theta^3``
is positive, and ``D`` (corrected) is
``(theta + (3 - 2a) t)/2 + t^2 (a^2 - a)/(2 theta)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aoichain.errors import InvalidInput

__all__ = [
    "FORMULAS",
    "Formulas",
    "aoi",
    "at_bound",
    "collection_slots",
    "cycle",
    "latency",
    "printed_aoi",
    "printed_aoi_factor",
    "printed_latency",
    "printed_latency_excess",
]

Formulas = Literal["paper", "corrected"]
FORMULAS: tuple[Formulas, ...] = ("paper", "corrected")
FloatArray = NDArray[np.float64]


def _check_formulas(formulas: str) -> None:
    if formulas not in FORMULAS:
        raise InvalidInput(
            f"The 'formulas' parameter must be one of {list(FORMULAS)}. Got {formulas!r} instead."
        )


def cycle(c: ArrayLike, *, t: float, a: ArrayLike) -> FloatArray:
    """Length of an update cycle, ``theta = (c + a) t`` seconds (Sec. III-A).

    Parameters
    ----------
    c : array_like
        Slots of the collection phase.
    t : float
        Slot length in seconds.
    a : array_like
        Slots of the serving (idle) phase.

    Returns
    -------
    ndarray
        ``theta`` in seconds; the update frequency is ``f = 1/theta`` Hz.
    """
    slots = np.asarray(c, dtype=np.float64) + np.asarray(a, dtype=np.float64)
    return np.asarray(slots * t, dtype=np.float64)


def collection_slots(theta: ArrayLike, *, t: float, a: float) -> FloatArray:
    """Slots of the collection phase of a cycle, ``c = theta/t - a`` (the inverse of :func:`cycle`).

    Parameters
    ----------
    theta : array_like
        Update cycle in seconds.
    t : float
        Slot length in seconds.
    a : float
        Slots of the serving (idle) phase.

    Returns
    -------
    ndarray
        ``c`` in slots (not rounded: the contract solvers relax ``c`` to a real number).
    """
    return np.asarray(np.asarray(theta, dtype=np.float64) / t - a, dtype=np.float64)


def at_bound(
    c: ArrayLike, *, c_min: float, c_max: float | None, rtol: float = 1e-9
) -> NDArray[np.int8]:
    """Which collection phases sit at a bound: ``+1`` at ``c_max``, ``-1`` at ``c_min``, else 0.

    Parameters
    ----------
    c : array_like
        Collection slots (e.g. a contract's ``c``).
    c_min : float
        Shortest allowed collection phase, slots.
    c_max : float or None
        Longest allowed collection phase, slots (``None``: no upper bound).
    rtol : float
        Relative tolerance of "at".

    Returns
    -------
    ndarray of int8
        Same shape as ``c``.
    """
    ca = np.asarray(c, dtype=np.float64)
    low = np.isclose(ca, c_min, rtol=rtol, atol=0.0)
    high = np.isclose(ca, c_max, rtol=rtol, atol=0.0) if c_max is not None else np.zeros_like(low)
    return np.asarray(np.where(high, 1, np.where(low, -1, 0)), dtype=np.int8)


def aoi(theta: ArrayLike, *, t: float, a: float, formulas: Formulas = "paper") -> FloatArray:
    """Average age of information of the cached data, in seconds.

    Parameters
    ----------
    theta : array_like
        Update cycle ``theta = 1/f = (c + a) t`` in seconds.
    t : float
        Slot length in seconds (one global FL iteration plus consensus).
    a : float
        Slots of the serving (idle) phase, ``a >= 1``.
    formulas : {"paper", "corrected"}
        ``paper``: eq. (5) as printed, ``t theta/(theta - at) + t^2 (a^2 - a)/(2 (theta - at))``;
        ``corrected``: eq. (3), ``t + t^2 (a^2 - a)/(2 theta)``.

    Returns
    -------
    ndarray
        AoI in seconds, ``inf`` where ``theta <= a t`` (no collection phase).
    """
    _check_formulas(formulas)
    th = np.asarray(theta, dtype=np.float64)
    x = th - a * t
    with np.errstate(divide="ignore", invalid="ignore"):
        if formulas == "paper":
            val = t + t * t * a * (a + 1.0) / (2.0 * x)
        else:
            val = t + t * t * (a * a - a) / (2.0 * th)
    return np.asarray(np.where(x > 0, val, np.inf), dtype=np.float64)


def latency(theta: ArrayLike, *, t: float, a: float, formulas: Formulas = "paper") -> FloatArray:
    """Average service latency of a training request, in seconds.

    Parameters
    ----------
    theta : array_like
        Update cycle ``theta = 1/f = (c + a) t`` in seconds.
    t : float
        Slot length in seconds.
    a : float
        Slots of the serving (idle) phase, ``a >= 1``.
    formulas : {"paper", "corrected"}
        ``paper``: eq. (4) as printed (with the extra factor ``c`` of erratum 1),
        ``(theta-at)^3/(2 t theta) + 3 (theta-at)^2/(2 theta) + a t^2/theta``;
        ``corrected``: ``[(theta-at)^2 + 3t(theta-at) + 2at^2] / (2 theta)``,
        i.e. ``c/(c+a) t(c+3)/2 + a t/(c+a)``.

    Returns
    -------
    ndarray
        Latency in seconds, ``inf`` where ``theta <= a t``.
    """
    _check_formulas(formulas)
    th = np.asarray(theta, dtype=np.float64)
    x = th - a * t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if formulas == "paper":
            val = (x * x * x / t + 3.0 * x * x + 2.0 * a * t * t) / (2.0 * th)
        else:
            val = (x * x + 3.0 * t * x + 2.0 * a * t * t) / (2.0 * th)
    return np.asarray(np.where(x > 0, val, np.inf), dtype=np.float64)


def printed_aoi(theta: ArrayLike, *, t: float, a: float) -> FloatArray:
    """Eq. (5) exactly as printed, for any cycle: no domain check.

    ``t theta/(theta - at) + t^2 (a^2 - a)/(2 (theta - at))``. Unlike
    ``aoi(..., formulas="paper")``, which equals it for ``theta > a t`` and
    refuses every other cycle (``inf``), this evaluates the printed expression
    wherever ``theta != a t``: for ``theta < a t``, the case the paper's text
    names (erratum 3 of the SPEC), it is negative, so that case cannot be meant.

    Returns
    -------
    ndarray
        Seconds (``inf`` or ``nan`` at ``theta = a t``).
    """
    th = np.asarray(theta, dtype=np.float64)
    x = th - a * t
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(t * th / x + t * t * (a * a - a) / (2.0 * x), dtype=np.float64)


def printed_latency(theta: ArrayLike, *, t: float, a: float) -> FloatArray:
    """Eq. (4) exactly as printed, for any cycle: no domain check.

    ``(theta-at)^3/(2 t theta) + 3 (theta-at)^2/(2 theta) + a t^2/theta``.
    Equal to ``latency(..., formulas="paper")`` for ``theta > a t``; unlike it,
    this also evaluates the printed expression for ``0 < theta < a t`` (the
    case the paper's text names, erratum 3 of the SPEC), where it is negative
    for some cycles once ``a >= 4`` (``c^3 + 3 c^2 + 2 a < 0`` for ``c = -a``).

    Returns
    -------
    ndarray
        Seconds.
    """
    th = np.asarray(theta, dtype=np.float64)
    x = th - a * t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray((x * x * x / t + 3.0 * x * x + 2.0 * a * t * t) / (2.0 * th))


def printed_latency_excess(c: ArrayLike, *, t: float, a: ArrayLike) -> FloatArray:
    """How much eq. (4) as printed overstates the latency, ``(c - 1) c/(c + a) t (c + 3)/2`` s.

    Eq. (2) multiplies the collection phase's share ``c/(c + a) t (c + 3)/2`` of
    the latency by ``c`` once too often (erratum 1 of the SPEC): for a cycle of
    ``c + a`` whole slots the printed form exceeds the slot rules' average by
    ``c - 1`` times that share, and is exact only at ``c = 1``. ``c``, ``t`` and
    ``a`` are as in :func:`cycle`.

    Returns
    -------
    ndarray
        ``latency(paper) - latency(corrected)`` in seconds.
    """
    ca = np.asarray(c, dtype=np.float64)
    collection_share = ca / (ca + np.asarray(a, dtype=np.float64)) * t * (ca + 3) / 2
    return np.asarray((ca - 1) * collection_share, dtype=np.float64)


def printed_aoi_factor(c: ArrayLike, *, a: ArrayLike) -> FloatArray:
    """How many times eq. (5) as printed overstates the AoI, ``(c + a)/c``.

    Eq. (5) does not follow from eq. (3): a ``t/(c + a)`` became ``t/c``
    (erratum 2 of the SPEC), which scales the whole AoI by ``(c + a)/c`` for a
    cycle of ``c + a`` slots.

    Returns
    -------
    ndarray
        ``aoi(paper) / aoi(corrected)``, dimensionless.
    """
    ca = np.asarray(c, dtype=np.float64)
    return np.asarray((ca + np.asarray(a, dtype=np.float64)) / ca, dtype=np.float64)


def aoi_derivatives(
    theta: FloatArray, *, t: float, a: float, formulas: Formulas
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``A``, ``dA/dtheta`` and ``d2A/dtheta2`` for ``theta > a t`` (no checks)."""
    if formulas == "paper":
        x = theta - a * t
        k = t * t * a * (a + 1.0) / 2.0
        return t + k / x, -k / (x * x), 2.0 * k / (x * x * x)
    k = t * t * (a * a - a) / 2.0
    return t + k / theta, -k / (theta * theta), 2.0 * k / (theta * theta * theta)


def latency_derivatives(
    theta: FloatArray, *, t: float, a: float, formulas: Formulas
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``D``, ``dD/dtheta`` and ``d2D/dtheta2`` for ``theta > a t`` (no checks)."""
    if formulas == "paper":
        x = theta - a * t
        num = x * x * x / t + 3.0 * x * x + 2.0 * a * t * t
        d1 = 3.0 * x * x / t + 6.0 * x
        d2 = 6.0 * x / t + 6.0
        return (
            num / (2.0 * theta),
            d1 / (2.0 * theta) - num / (2.0 * theta * theta),
            d2 / (2.0 * theta) - d1 / (theta * theta) + num / (theta * theta * theta),
        )
    k = t * t * (a * a - a) / 2.0
    return (
        (theta + (3.0 - 2.0 * a) * t) / 2.0 + k / theta,
        0.5 - k / (theta * theta),
        2.0 * k / (theta * theta * theta),
    )

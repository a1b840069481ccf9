"""Slot-by-slot simulation of data freshness (AoI) and service latency (Sec. III-A).

A worker refreshes its cached sensing data periodically. One update cycle
lasts ``c + a`` slots of ``t`` seconds: ``c`` slots collecting and processing
data, then ``a`` slots idle or serving. A training request arrives at the
start of every slot. The rules of Sec. III-A (and ``docs/formulas.md``), for
a request in slot ``l`` of the cycle (1-based):

* ``l = z`` in ``1..c`` (collection): the request waits for the collection to
  finish, latency ``(c + 2 - z) t``, and gets fresh data, AoI ``t``;
* ``l = c + 1``: latency ``t``, AoI ``t``;
* ``l >= c + 2``: latency ``t``, AoI ``(l - c) t``.

This module plays those rules over any set of slots, so that the long-run
averages can be checked against the closed forms of eqs. (2)-(5): they agree
with the ``corrected`` forms exactly over whole cycles and show where the
printed (``paper``) forms go wrong (errata 1 and 2 of the SPEC). The federated
run uses the same functions as its clock.

Non-integer ``c`` (the continuous relaxation used by the contract solver) is
read in continuous time: a request at offset ``tau`` seconds into a cycle of
``(c + a) t`` seconds has latency ``(c t - tau) + t`` and AoI ``t`` if
``tau < c t``, else latency ``t`` and AoI ``(tau - c t) + t``. For integer
``c`` and requests at slot starts this is exactly the slot rules above. For
non-integer ``c`` the long-run average over slot-start requests is a Riemann
sum of these piecewise-linear functions and need not equal the closed forms,
which are exact only for whole numbers of slots.

Pure numpy, no I/O, no hidden state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aoichain.errors import InvalidInput

__all__ = [
    "SimulationResult",
    "last_refresh_time",
    "request_aoi_latency",
    "simulate",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    mean_aoi : float
        Average AoI over all requests, seconds.
    mean_latency : float
        Average service latency over all requests, seconds.
    aoi : numpy.ndarray
        AoI of the request at each slot ``0 .. n_slots - 1``, seconds.
    latency : numpy.ndarray
        Service latency of the request at each slot, seconds.
    """

    mean_aoi: float
    mean_latency: float
    aoi: FloatArray
    latency: FloatArray


def _bad(name: str, func: str, rule: str, got: Any) -> InvalidInput:
    return InvalidInput(f"The {name!r} parameter of {func} must be {rule}. Got {got!r} instead.")


def _check_cycle(
    func: str, c: Any, a: Any, t: Any, phase: Any
) -> tuple[float, float, float, float]:
    def real(x: Any) -> bool:
        return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))

    if not real(c) or float(c) <= 0:
        raise _bad("c", func, "a finite number of slots > 0", c)
    if not real(a) or float(a) < 0:
        raise _bad("a", func, "a finite number of slots >= 0", a)
    if not real(t) or float(t) <= 0:
        raise _bad("t", func, "a finite number of seconds > 0", t)
    if not real(phase):
        raise _bad("phase", func, "a finite number of slots", phase)
    return float(c), float(a), float(t), float(phase)


def _offset_slots(slots: FloatArray, c: float, a: float, phase: float) -> FloatArray:
    """Position of each instant inside its cycle, in slots, in ``[0, c + a)``."""
    offset: FloatArray = np.mod(slots - phase, c + a)
    # np.mod may return exactly c + a for tiny negative inputs; fold it back.
    offset[offset >= c + a] = 0.0
    return offset


def request_aoi_latency(
    c: float, a: float, t: float, slots: ArrayLike, phase: float = 0
) -> tuple[FloatArray, FloatArray]:
    """AoI and service latency of the requests arriving at the given slots.

    The worker's update cycle of ``c + a`` slots starts at slot ``phase`` (and
    repeats forever, before and after it). A request arrives at the start of
    each slot in ``slots`` and is answered by the rules of Sec. III-A (see
    the module docstring); the latency is the time until the answer, the AoI
    the age of the answering data at that moment.

    Parameters
    ----------
    c : float
        Collection slots per cycle, ``> 0``. Integer ``c`` follows the slot
        rules exactly; non-integer ``c`` uses their continuous-time reading.
    a : float
        Idle/serving slots per cycle, ``>= 0`` (the paper's fixed ``a``).
    t : float
        Slot length, seconds (one FL iteration plus consensus).
    slots : array_like of int
        Global 0-based slot numbers of the requests.
    phase : float, default 0
        Slot at which one of the worker's cycles starts.

    Returns
    -------
    aoi, latency : numpy.ndarray
        Seconds, one per request, same shape as ``slots``.

    Raises
    ------
    InvalidInput
        If a parameter is out of range or ``slots`` holds non-integers.
    """
    c, a, t, phase = _check_cycle("request_aoi_latency", c, a, t, phase)
    raw = np.asarray(slots)
    integral = np.issubdtype(raw.dtype, np.integer) or (
        np.issubdtype(raw.dtype, np.floating)
        and bool(np.all(np.isfinite(raw)))
        and bool(np.all(raw == np.round(raw)))
    )
    if not integral:
        raise _bad("slots", "request_aoi_latency", "an array of integer slot numbers", slots)
    offset = _offset_slots(raw.astype(np.float64), c, a, phase)
    collecting = offset < c
    latency = np.where(collecting, c - offset + 1.0, 1.0) * t
    aoi = np.where(collecting, 1.0, offset - c + 1.0) * t
    return aoi, latency


def simulate(c: float, a: float, t: float, n_slots: int, phase: float = 0) -> SimulationResult:
    """Play the slot rules for ``n_slots`` consecutive slots, one request per slot.

    Over a whole number of cycles (``n_slots`` a multiple of ``c + a``, ``c``
    integer) the averages equal the ``corrected`` closed forms of the SPEC:
    latency ``c/(c+a) t (c+3)/2 + a t/(c+a)`` (eq. 2 without erratum 1) and
    AoI ``t/(c+a) [c + 1 + (a-1)(a+2)/2]`` (eq. 3). Over a long horizon the
    partial last cycle changes them by at most ``O((c+a)^2 / n_slots)``.

    Parameters
    ----------
    c, a, t, phase
        As in :func:`request_aoi_latency`.
    n_slots : int
        Number of slots (and requests) to simulate, ``>= 1``.

    Returns
    -------
    SimulationResult
        Per-request AoI and latency (seconds) and their means.
    """
    if not isinstance(n_slots, Integral) or isinstance(n_slots, bool) or n_slots < 1:
        raise _bad("n_slots", "simulate", "an integer >= 1", n_slots)
    aoi, latency = request_aoi_latency(c, a, t, np.arange(int(n_slots)), phase)
    return SimulationResult(
        mean_aoi=float(aoi.mean()),
        mean_latency=float(latency.mean()),
        aoi=aoi,
        latency=latency,
    )


def last_refresh_time(
    c: float, a: float, t: float, now_s: ArrayLike, phase: float = 0
) -> tuple[Any, Any]:
    """When the worker's cache was last refreshed, as seen at time ``now_s``.

    The cache is refreshed at the end of each collection phase. This returns
    the end of the last collection phase completed at or before ``now_s`` and
    the start of that phase: the cache at ``now_s`` holds the data sensed in
    ``[start, refresh]``. Cycles repeat forever in both directions from
    ``phase``, so the result may be negative (a worker already running when
    the clock starts).

    A request is served during the last slot of its latency and reads the
    cache when that service starts: the data a request arriving at ``s``
    gets is the one returned here for ``now_s = s + latency - t``, and its
    AoI is ``s + latency - refresh_s`` (a request arriving mid-collection
    waits for that collection to finish and reads it fresh, AoI ``t``).

    Parameters
    ----------
    c, a, t, phase
        As in :func:`request_aoi_latency`.
    now_s : array_like of float
        Time or times, seconds since slot 0 started.

    Returns
    -------
    refresh_s, collect_start_s : float or numpy.ndarray
        Seconds; ``refresh_s - collect_start_s == c t``. Scalars for scalar
        ``now_s``.
    """
    c, a, t, phase = _check_cycle("last_refresh_time", c, a, t, phase)
    now = np.asarray(now_s, dtype=np.float64)
    if not np.all(np.isfinite(now)):
        raise _bad("now_s", "last_refresh_time", "finite times in seconds", now_s)
    cycle_s = (c + a) * t
    first_end = (phase + c) * t
    k = np.floor((now - first_end) / cycle_s)
    refresh = first_end + k * cycle_s
    # Guard the floor against rounding just past a boundary.
    refresh = np.where(refresh > now, refresh - cycle_s, refresh)
    refresh = np.where(refresh + cycle_s <= now, refresh + cycle_s, refresh)
    start = refresh - c * t
    if now.ndim == 0:
        return float(refresh), float(start)
    return refresh, start

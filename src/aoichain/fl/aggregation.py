"""Aggregating updates into the next global model: FedAvg, median, trimmed mean, and more.

A rule combines, tensor by tensor, the stacked tensors of ``K`` updates
(shape ``(K, ...)``) with their weights (shape ``(K,)``, e.g. sample counts).
A rule whose attribute ``whole_update`` is true sees each update whole
instead: its delta from the global model the workers trained from, all
tensors flattened into one row (shape ``(K, D)``), and returns the combined
delta (shape ``(D,)``): norm clipping and (multi-)Krum need the whole
update. Rules are registered by name in :data:`AGGREGATION_RULES`;
:func:`register_rule` adds one. Computation is in float64 and the result is
cast back to each tensor's dtype, so the same updates give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aoichain.errors import InvalidInput
from aoichain.fl.errors import MalformedUpdate
from aoichain.fl.model import deserialize_state, serialize_state
from aoichain.fl.robust import clip_deltas, krum_select

F64 = npt.NDArray[np.float64]


@runtime_checkable
class AggregationRule(Protocol):
    """Combines one tensor's ``K`` stacked versions into one, given weights.

    ``stacked`` has shape ``(K, ...)`` (float64); ``weights`` has shape
    ``(K,)``, non-negative with a positive sum. Return shape ``(...)``. A rule
    with a true class attribute ``whole_update`` gets the ``(K, D)`` deltas
    of whole updates instead and returns a ``(D,)`` delta.
    """

    def __call__(self, stacked: F64, weights: F64) -> F64: ...


@dataclass(frozen=True)
class FedAvg:
    """Weighted mean (McMahan et al., 2017): weight ``k`` is usually its sample count.

    The weighted terms are summed in sorted order, so the result's bytes do
    not depend on the order in which the updates arrive.
    """

    def __call__(self, stacked: F64, weights: F64) -> F64:
        w = weights / np.sort(weights).sum()
        terms = w.reshape((-1,) + (1,) * (stacked.ndim - 1)) * stacked
        return np.sort(terms, axis=0).sum(axis=0)


@dataclass(frozen=True)
class Median:
    """Coordinate-wise median (Yin et al., 2018).

    Unweighted on purpose: weighting would let one worker that claims many
    samples decide the median, which is what this rule is meant to resist.
    """

    def __call__(self, stacked: F64, weights: F64) -> F64:
        return np.median(stacked, axis=0)


@dataclass(frozen=True)
class TrimmedMean:
    """Coordinate-wise trimmed mean (Yin et al., 2018), unweighted like :class:`Median`.

    Parameters
    ----------
    trim : float
        Fraction of the ``K`` values cut at *each* end, in ``[0, 0.5)``;
        ``floor(trim * K)`` values go on each side.
    """

    trim: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.trim < 0.5:
            raise InvalidInput(
                "The 'trim' parameter of TrimmedMean must be a float in the range [0, 0.5). "
                f"Got {self.trim!r} instead."
            )

    def __call__(self, stacked: F64, weights: F64) -> F64:
        k = stacked.shape[0]
        cut = int(np.floor(self.trim * k))
        ordered = np.sort(stacked, axis=0)
        return ordered[cut : k - cut].mean(axis=0)


def _check_count(owner: str, name: str, value: object, least: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < least
    ):
        raise InvalidInput(
            f"The {name!r} parameter of {owner} must be an int >= {least}. Got {value!r} instead."
        )


def largest_krum_f(k: int) -> int:
    """The most Byzantine updates Krum tolerates among ``k``: the largest ``f`` with
    ``k >= 2 f + 3`` (0 below 5 updates)."""
    return max(0, (k - 3) // 2)


@dataclass(frozen=True)
class NormClip:
    """Norm clipping, then FedAvg (Sun et al., 2019): no update moves the model far.

    Each update's delta from the global model is scaled down to at most
    ``bound`` (by default the median of the round's delta norms, so at least
    half pass unchanged), then the deltas are averaged with the sample
    weights. It bounds what a scaled-up update can do, not the direction a
    sign-flipped one of ordinary size pushes in.

    Parameters
    ----------
    bound : float, optional
        Largest norm a delta keeps (> 0), in the units of the weights.
    """

    bound: float | None = None
    whole_update: ClassVar[bool] = True

    def __post_init__(self) -> None:
        b = self.bound
        if b is not None and (
            isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b) or b <= 0
        ):
            raise InvalidInput(
                f"The 'bound' parameter of NormClip must be a finite float > 0. Got {b!r} instead."
            )

    def __call__(self, stacked: F64, weights: F64) -> F64:
        return FedAvg()(clip_deltas(stacked, self.bound), weights)


@dataclass(frozen=True)
class Krum:
    """Krum (Blanchard et al., 2017): the one update closest to its nearest others.

    Each delta is scored by the summed squared distances to its ``K - f - 2``
    nearest others (:func:`aoichain.fl.robust.krum_scores`); the
    lowest-scored update becomes the global model. Unweighted, like
    :class:`Median`.

    Parameters
    ----------
    f : int, optional
        Byzantine updates assumed, ``>= 0``. Default: the most Krum
        tolerates among the round's ``K`` (:func:`largest_krum_f`).
    """

    f: int | None = None
    whole_update: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_count("Krum", "f", self.f, 0)

    def assumed(self, k: int) -> int:
        """The ``f`` used for a round of ``k`` updates."""
        return largest_krum_f(k) if self.f is None else self.f

    def __call__(self, stacked: F64, weights: F64) -> F64:
        return stacked[krum_select(stacked, self.assumed(stacked.shape[0]))[0]]


@dataclass(frozen=True)
class MultiKrum(Krum):
    """Multi-Krum: the unweighted mean of the ``m`` lowest-scored updates (scored once).

    Parameters
    ----------
    f : int, optional
        Byzantine updates assumed (see :class:`Krum`).
    m : int, optional
        Updates averaged, ``>= 1``. Default: ``K - f``, every update but as
        many as may be Byzantine.
    """

    m: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_count("MultiKrum", "m", self.m, 1)

    def __call__(self, stacked: F64, weights: F64) -> F64:
        k = stacked.shape[0]
        f = self.assumed(k)
        chosen = krum_select(stacked, f, max(1, k - f) if self.m is None else self.m)
        return FedAvg()(stacked[chosen], np.ones(chosen.size))


AGGREGATION_RULES: dict[str, Callable[..., AggregationRule]] = {
    "fedavg": FedAvg,
    "median": Median,
    "trimmed_mean": TrimmedMean,
    "norm_clip": NormClip,
    "krum": Krum,
    "multi_krum": MultiKrum,
}


def register_rule(name: str, factory: Callable[..., AggregationRule]) -> None:
    """Make ``aggregate(..., rule=name, **opts)`` build ``factory(**opts)``."""
    AGGREGATION_RULES[name] = factory


def get_rule(rule: str | AggregationRule, **opts: Any) -> AggregationRule:
    """The rule named ``rule`` built with ``opts``, or ``rule`` itself if already one."""
    if not isinstance(rule, str):
        if opts:
            raise InvalidInput("Options are given to a rule name, not to a built rule.")
        return rule
    factory = AGGREGATION_RULES.get(rule)
    if factory is None:
        raise InvalidInput(
            f"The 'rule' parameter of aggregate must be one of {sorted(AGGREGATION_RULES)}. "
            f"Got {rule!r} instead."
        )
    try:
        return factory(**opts)
    except TypeError as exc:
        raise InvalidInput(f"Bad options {opts} for aggregation rule {rule!r}: {exc}") from None


def aggregate(
    blobs: Sequence[bytes],
    weights: Sequence[float],
    rule: str | AggregationRule = "fedavg",
    *,
    reference: bytes | None = None,
    **opts: Any,
) -> bytes:
    """Combine serialised updates into one serialised model.

    Parameters
    ----------
    blobs : sequence of bytes
        Updates made by :func:`~aoichain.fl.model.serialize_state`, all with the
        same tensor names, shapes and dtypes.
    weights : sequence of float
        One non-negative weight per blob (sample counts for FedAvg), positive sum.
    rule : str or AggregationRule
        ``"fedavg"``, ``"median"``, ``"trimmed_mean"`` (option ``trim``),
        ``"norm_clip"`` (option ``bound``), ``"krum"`` (option ``f``),
        ``"multi_krum"`` (options ``f``, ``m``), any name added by
        :func:`register_rule`, or a rule object.
    reference : bytes, optional
        The global model the updates were trained from: whole-update rules
        combine the deltas from it. Default: all zeros (the deltas are then
        the weights themselves). Per-tensor rules ignore it.

    Raises
    ------
    InvalidInput
        No blobs, mismatched or invalid weights, unknown rule or options.
    MalformedUpdate
        A blob (or the reference) does not parse or its tensors differ from
        the first blob's.
    """
    if not blobs:
        raise InvalidInput("aggregate needs at least one update.")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(blobs),):
        raise InvalidInput(f"aggregate got {len(blobs)} updates but {w.size} weights.")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise InvalidInput(
            f"The 'weights' of aggregate must be finite, >= 0, with a positive sum. Got {list(w)}."
        )
    combine = get_rule(rule, **opts)
    states = [deserialize_state(b) for b in blobs]
    layout = {k: (v.shape, v.dtype) for k, v in states[0].items()}
    for i, st in enumerate(states[1:], start=1):
        if {k: (v.shape, v.dtype) for k, v in st.items()} != layout:
            raise MalformedUpdate(f"update {i} has other tensors than update 0")
    if getattr(combine, "whole_update", False):
        return serialize_state(_combine_whole(combine, states, w, reference, layout))
    out = {}
    for name, (_, dtype) in layout.items():
        stacked = np.stack([st[name].astype(np.float64) for st in states])
        out[name] = np.asarray(combine(stacked, w)).astype(dtype)
    return serialize_state(out)


Layout = Mapping[str, tuple[tuple[int, ...], np.dtype[Any]]]


def _flat(state: Mapping[str, npt.NDArray[Any]], layout: Layout) -> F64:
    """All tensors of ``state`` in one float64 vector (in the layout's order)."""
    return np.concatenate([state[name].astype(np.float64).ravel() for name in layout])


def _combine_whole(
    combine: AggregationRule,
    states: Sequence[Mapping[str, npt.NDArray[Any]]],
    weights: F64,
    reference: bytes | None,
    layout: Layout,
) -> dict[str, npt.NDArray[Any]]:
    """Apply a whole-update rule: rows of deltas from ``reference`` in, one delta out."""
    flat = np.stack([_flat(st, layout) for st in states])
    base = np.zeros(flat.shape[1])
    if reference is not None:
        ref = deserialize_state(reference)
        if {k: (v.shape, v.dtype) for k, v in ref.items()} != dict(layout):
            raise MalformedUpdate("the reference model has other tensors than the updates")
        base = _flat(ref, layout)
    merged = base + np.asarray(combine(flat - base, weights), dtype=np.float64)
    out, start = {}, 0
    for name, (shape, dtype) in layout.items():
        size = math.prod(shape)
        out[name] = merged[start : start + size].reshape(shape).astype(dtype)
        start += size
    return out

"""Aggregating updates into the next global model: FedAvg, median, trimmed mean, and more.

A rule combines, tensor by tensor, the stacked tensors of ``K`` updates
(shape ``(K, ...)``) with their weights (shape ``(K,)``, e.g. sample counts).
Rules are registered by name in :data:`AGGREGATION_RULES`;
:func:`register_rule` adds one. Computation is in float64 and the result is
cast back to each tensor's dtype, so the same updates give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aoichain.errors import InvalidInput
from aoichain.fl.errors import MalformedUpdate
from aoichain.fl.model import deserialize_state, serialize_state

F64 = npt.NDArray[np.float64]


@runtime_checkable
class AggregationRule(Protocol):
    """Combines one tensor's ``K`` stacked versions into one, given weights.

    ``stacked`` has shape ``(K, ...)`` (float64); ``weights`` has shape
    ``(K,)``, non-negative with a positive sum. Return shape ``(...)``.
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


AGGREGATION_RULES: dict[str, Callable[..., AggregationRule]] = {
    "fedavg": FedAvg,
    "median": Median,
    "trimmed_mean": TrimmedMean,
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
        ``"fedavg"``, ``"median"``, ``"trimmed_mean"`` (option ``trim``), any
        name added by :func:`register_rule`, or a rule object.

    Raises
    ------
    InvalidInput
        No blobs, mismatched or invalid weights, unknown rule or options.
    MalformedUpdate
        A blob does not parse or its tensors differ from the first blob's.
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
    out = {}
    for name, (_, dtype) in layout.items():
        stacked = np.stack([st[name].astype(np.float64) for st in states])
        out[name] = np.asarray(combine(stacked, w)).astype(dtype)
    return serialize_state(out)

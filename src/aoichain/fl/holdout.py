"""A held-out evaluation set that no worker trains on, stratified by stream and by class.

:func:`holdout_split` cuts a stream into blocks of ``block`` records and holds
out a share of them: among the blocks holding an anomaly and, separately,
among the others, every ``1/fraction``-th block from a seeded offset
(stratified systematic sampling, so the held-out records are spread evenly
over time and over both classes). A stream with any anomalous block keeps at
least one of them held out. Workers get the rest: a window never spans a
held-out block, since :func:`~aoichain.fl.data.make_windows` does not cut
across gaps in time.

:class:`HeldOut` keeps every held-out window of every stream, and
:meth:`HeldOut.at` picks a round's evaluation set: each stream's held-out
windows of the recent span, topped up per stream, from that stream's earlier
held-out windows (never later than ``now``), until it holds at least
``per_stream`` windows of each class where it has them. Which streams have
no anomalous window at all is part of the answer, so a report can say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aoichain.fl.data import Dataset, concat_datasets, make_windows
from aoichain.fl.streams import SensorStream

__all__ = ["EvaluationSet", "HeldOut", "holdout_split"]


def _subset(stream: SensorStream, keep: np.ndarray) -> SensorStream:
    return SensorStream(
        name=stream.name,
        columns=stream.columns,
        times=stream.times[keep],
        values=stream.values[keep],
        labels=stream.labels[keep],
        mask=stream.mask,
        origin=stream.origin,
    )


def _systematic(count: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Every ``1/fraction``-th of ``count`` items from a random offset (a boolean mask)."""
    u = rng.uniform()
    k = np.arange(count)
    return np.floor((k + 1) * fraction + u) > np.floor(k * fraction + u)


def holdout_split(
    stream: SensorStream, *, fraction: float, block: int, seed: int
) -> tuple[SensorStream, SensorStream]:
    """Split ``stream`` into (what workers may train on, what is held out for evaluation).

    Parameters
    ----------
    stream : SensorStream
        A node's whole stream.
    fraction : float
        Share of blocks held out, in ``(0, 1)``.
    block : int
        Records per block (at least a model window, or no held-out window fits).
    seed : int
        Seeds the offsets of the systematic choice.

    Returns
    -------
    (training, held_out) : SensorStream, SensorStream
        The records outside and inside the held-out blocks.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1); got {fraction!r}")
    if block < 1:
        raise ValueError(f"block must be >= 1; got {block!r}")
    n = len(stream)
    n_blocks = math.ceil(n / block) if n else 0
    which = np.arange(n) // block
    anomalous = np.zeros(n_blocks, dtype=bool)
    np.logical_or.at(anomalous, which, stream.labels.astype(bool))
    rng = np.random.default_rng(seed)
    held = np.zeros(n_blocks, dtype=bool)
    for members in (np.flatnonzero(anomalous), np.flatnonzero(~anomalous)):
        held[members] = _systematic(members.size, fraction, rng)
    anomalous_blocks = np.flatnonzero(anomalous)
    if anomalous_blocks.size and not held[anomalous_blocks].any():
        held[anomalous_blocks[anomalous_blocks.size // 2]] = True
    out = held[which]
    return _subset(stream, ~out), _subset(stream, out)


@dataclass(frozen=True)
class EvaluationSet:
    """A round's evaluation windows and where they came from.

    ``per_stream`` holds, per stream name, the anomalous and normal windows
    it contributes; ``without_anomalies`` the streams that contribute none
    (they have had no anomalous held-out window by ``now``).
    """

    data: Dataset
    per_stream: dict[str, tuple[int, int]]
    without_anomalies: tuple[str, ...]

    @property
    def positives(self) -> int:
        """Anomalous windows."""
        return int(self.data.y.sum())

    @property
    def negatives(self) -> int:
        """Normal windows."""
        return len(self.data) - self.positives


@dataclass(frozen=True, eq=False)
class HeldOut:
    """Every held-out window of every stream (cut once), to draw evaluation sets from."""

    names: tuple[str, ...]
    windows: tuple[Dataset, ...]

    @classmethod
    def of(cls, held_out: Sequence[SensorStream], window: int) -> HeldOut:
        """Cut the held-out streams into windows (stride 1, never across a gap)."""
        return cls(
            names=tuple(s.name if s.name else f"stream{i}" for i, s in enumerate(held_out)),
            windows=tuple(make_windows(s, window) for s in held_out),
        )

    def at(self, now: float, span: float, per_stream: int) -> EvaluationSet:
        """The evaluation set at stream time ``now`` (seconds).

        Each stream gives its held-out windows ending in ``(now - span, now]``;
        if these hold fewer than ``per_stream`` windows of a class, its latest
        earlier windows of that class are added until they do (or run out).
        Nothing sensed after ``now`` is used.
        """
        parts, counts, without = [], {}, []
        for k, (name, data) in enumerate(zip(self.names, self.windows, strict=True)):
            past = data.t_end <= now
            recent = past & (data.t_end > now - span)
            chosen = recent.copy()
            for label in (1.0, 0.0):
                have = int(np.sum(recent & (data.y == label)))
                if have < per_stream:
                    older = np.flatnonzero(past & ~recent & (data.y == label))
                    chosen[older[max(0, len(older) - (per_stream - have)) :]] = True
            idx = np.flatnonzero(chosen)
            part = Dataset(data.x[idx], data.y[idx], data.t_end[idx])
            pos = int(part.y.sum())
            key = name if name not in counts else f"{name}#{k}"
            counts[key] = (pos, len(part) - pos)
            if pos == 0:
                without.append(key)
            parts.append(part)
        return EvaluationSet(concat_datasets(parts), counts, tuple(without))

"""The held-out evaluation set: no worker's record in it, both classes from every stream."""

from __future__ import annotations

import numpy as np

from aoichain.fl import HeldOut, SensorStream, holdout_split, make_windows


def _stream(name: str, labels: np.ndarray) -> SensorStream:
    n = labels.size
    return SensorStream(
        name=name,
        columns=("a",),
        times=np.arange(n) * 1.0,
        values=np.arange(n, dtype=np.float32)[:, None],
        labels=labels.astype(np.int8),
    )


def test_the_split_is_disjoint_stratified_and_keeps_windows_apart(
    line: list[SensorStream],
) -> None:
    stream = line[0]
    train, held = holdout_split(stream, fraction=0.2, block=32, seed=1)
    assert len(train) + len(held) == len(stream)
    assert not set(train.times.tolist()) & set(held.times.tolist())
    assert 0.15 < len(held) / len(stream) < 0.25
    assert held.labels.any()  # anomalies held out too
    # No training window reaches into a held-out block.
    windows = make_windows(train, 16)
    held_times = set(held.times.tolist())
    starts = windows.t_end - 15 * stream.period
    for lo, hi in zip(starts, windows.t_end, strict=True):
        inside = stream.times[(stream.times >= lo - 1e-9) & (stream.times <= hi + 1e-9)]
        assert not set(inside.tolist()) & held_times


def test_a_stream_with_one_anomaly_still_holds_it_out() -> None:
    labels = np.zeros(1000)
    labels[500:510] = 1
    _, held = holdout_split(_stream("s", labels), fraction=0.1, block=32, seed=3)
    assert held.labels.sum() == 10


def test_a_stream_without_anomalies_is_named_and_others_are_topped_up() -> None:
    quiet = np.zeros(2000)
    early = np.zeros(2000)
    early[200:400] = 1  # anomalies long before the evaluation span
    streams = [_stream("quiet", quiet), _stream("early", early)]
    held = HeldOut.of([holdout_split(s, fraction=0.25, block=32, seed=0)[1] for s in streams], 8)
    chosen = held.at(now=1900.0, span=100.0, per_stream=5)
    assert chosen.without_anomalies == ("quiet",)
    assert chosen.per_stream["early"][0] >= 5  # earlier anomalies brought in
    assert (chosen.data.t_end <= 1900.0).all()  # never a record from after now

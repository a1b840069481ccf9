"""Training examples: sliding windows over a stream, with the column-mask channels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aoichain.fl.streams import Float32Array, Float64Array, SensorStream


@dataclass(frozen=True, eq=False)
class Dataset:
    """Windows of sensor records and the label of each window's last record.

    Attributes
    ----------
    x : ndarray of float32, shape (B, window, 2*S)
        Raw sensor values (zeros in masked columns), then ``S`` mask channels
        (1.0 observed, 0.0 masked).
    y : ndarray of float32, shape (B,)
        1.0 if the window's last record is anomalous.
    t_end : ndarray of float64, shape (B,)
        Stream time of each window's last record, seconds: when its newest
        datum was sensed (what its age of information counts from).
    """

    x: Float32Array
    y: Float32Array
    t_end: Float64Array

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def empty(window: int, n_sensors: int) -> Dataset:
        """A dataset with no windows (what an empty cache gives)."""
        return Dataset(
            x=np.zeros((0, window, 2 * n_sensors), dtype=np.float32),
            y=np.zeros(0, dtype=np.float32),
            t_end=np.zeros(0, dtype=np.float64),
        )


def make_windows(
    stream: SensorStream,
    window: int,
    *,
    stride: int = 1,
    max_windows: int | None = None,
    max_gap: float | None = None,
) -> Dataset:
    """Cut ``stream`` into windows of ``window`` consecutive records.

    A window never spans a gap in time (a withheld record, or a pause in the
    recording) longer than ``max_gap`` seconds, by default 3 times the
    stream's median record spacing. With ``max_windows``, only the most
    recent windows are kept (a bounded training cost per cache).

    Parameters
    ----------
    stream : SensorStream
        A node's records or a twin's view of them (masked columns are zeros).
    window : int
        Records per window (the model spec's ``window``).
    stride : int
        Records between the starts of consecutive windows.
    max_windows : int, optional
        Keep at most this many windows, the latest ones.
    max_gap : float, optional
        Longest time between consecutive records inside a window, seconds.
    """
    if window < 1 or stride < 1:
        raise ValueError("window and stride must be >= 1")
    n, s = len(stream), stream.n_sensors
    if n < window:
        return Dataset.empty(window, s)
    gap = 3.0 * stream.period if max_gap is None else max_gap
    breaks = np.concatenate([[0], np.cumsum(np.diff(stream.times) > gap)])
    starts = np.arange(0, n - window + 1)
    ok = breaks[starts + window - 1] == breaks[starts]
    # Stride counted back from the newest window, so the freshest record always ends one.
    starts = starts[ok][::-1][::stride][::-1]
    if max_windows is not None:
        starts = starts[-max_windows:] if max_windows > 0 else starts[:0]
    if starts.size == 0:
        return Dataset.empty(window, s)
    idx = starts[:, None] + np.arange(window)[None, :]
    values = stream.values * stream.mask.astype(np.float32)
    x = np.empty((starts.size, window, 2 * s), dtype=np.float32)
    x[..., :s] = values[idx]
    x[..., s:] = stream.mask.astype(np.float32)
    ends = starts + window - 1
    return Dataset(
        x=x,
        y=stream.labels[ends].astype(np.float32),
        t_end=stream.times[ends].astype(np.float64),
    )


def concat_datasets(datasets: Sequence[Dataset]) -> Dataset:
    """All windows of ``datasets`` in one (e.g. the centralised baseline's data)."""
    if not datasets:
        raise ValueError("concat_datasets needs at least one dataset")
    return Dataset(
        x=np.concatenate([d.x for d in datasets]),
        y=np.concatenate([d.y for d in datasets]),
        t_end=np.concatenate([d.t_end for d in datasets]),
    )

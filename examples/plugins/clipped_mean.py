"""An aggregation rule added from outside aoichain: the norm-clipped weighted mean.

Each update's deviation from the coordinate-wise median is clipped to at most
``limit`` times the median deviation before the weighted mean, so one wild
update moves the global model only a bounded amount. aoichain calls it once
per tensor with the updates stacked along axis 0 (float64) and their weights
(sample counts).

Use it from a run config::

    [train]
    aggregation = "clipped_mean:clipped_mean"

(run from this folder, or put it on ``PYTHONPATH``).
"""

from __future__ import annotations

import numpy as np


def clipped_mean(stacked: np.ndarray, weights: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """Weighted mean of ``stacked`` (shape ``(K, ...)``) after clipping outlying updates."""
    center = np.median(stacked, axis=0)
    deviation = stacked - center
    norms = np.sqrt((deviation.reshape(len(stacked), -1) ** 2).sum(axis=1))
    bound = limit * float(np.median(norms)) if np.any(norms > 0) else 0.0
    scale = np.where(norms > bound, bound / np.where(norms > 0, norms, 1.0), 1.0)
    clipped = center + deviation * scale.reshape((-1,) + (1,) * (stacked.ndim - 1))
    w = weights / weights.sum()
    return np.tensordot(w, clipped, axes=1)

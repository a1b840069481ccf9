"""A worker's answer to a training request: the cache its last collection phase sensed.

Kept apart from the loop (:mod:`aoichain.workflow.task`) because a worker
computes it on its own machine: the Flower engine's ClientApp calls it with
the worker's own facts and streams.
"""

from __future__ import annotations

import numpy as np

from aoichain.fl import concat_datasets, make_windows
from aoichain.incentive.simulation import request_aoi_latency
from aoichain.workflow.steps import Request
from aoichain.workflow.workers import Worker


def answer_request(
    worker: Worker,
    slot: int,
    *,
    t: float,
    a: float,
    time_scale: float,
    window: int,
    max_windows: int,
    cache_slots: float | None = None,
) -> Request:
    """A worker's answer to the training request at global slot ``slot``: its cache.

    The request's AoI and latency follow from the worker's cycle (``c + a``
    slots of ``t`` seconds, from its phase); the cache is what it sensed in the
    collection phase that ends at ``arrival + latency - AoI`` (simulated
    seconds, times ``time_scale`` in stream seconds), cut into at most
    ``max_windows`` windows over its streams. It spans that phase's ``c``
    slots (``[data] cache = "window"``), or the last ``cache_slots`` slots up
    to its end whatever ``c`` is (``"fixed"``: only freshness moves with the
    menu). It reads only the worker's own facts and streams, so a worker
    computes it on its own machine.
    """
    aoi, lat = request_aoi_latency(worker.c, a, t, np.array([slot]), phase=worker.phase)
    age, delay = float(aoi[0]), float(lat[0])
    data_time = slot * t + delay - age
    slots = worker.c if cache_slots is None else cache_slots
    end, span = data_time * time_scale, slots * t * time_scale
    share = max(1, max_windows // len(worker.streams))
    parts = [
        make_windows(s.window(end - span, end), window, max_windows=share) for s in worker.streams
    ]
    return Request(worker, concat_datasets(parts), age, delay, data_time)

"""Data sources: where the IIoT nodes' sensor streams come from.

A source is a callable ``(request: StreamRequest) -> list[SensorStream]``
returning one stream per physical node (all with the same sensor columns).
Built-ins: ``generator`` (drifting production-line streams, no download)
and ``folder`` (SKAB-format or generic CSV files, round-robin over the
nodes). A plug-in is any callable of that shape, named in TOML by a dotted
path (see :mod:`aoichain.workflow.plugins`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from aoichain.config import describe_validation_error
from aoichain.errors import InvalidInput
from aoichain.fl import GeneratorConfig, SensorStream, generate_streams, read_stream_folder
from aoichain.workflow.plugins import Kind


@dataclass(frozen=True)
class StreamRequest:
    """What the run asks a data source for.

    Attributes
    ----------
    nodes : int
        Streams wanted, one per IIoT node.
    seed : int
        The task's seed (a source that draws anything should draw from it).
    slots : int
        Slots the run spans (warm-up, rounds, and the longest wait to be served).
    slot_s : float
        Seconds of one slot, ``t``.
    records_per_slot : int
        Records the run would like per slot (it maps simulated time onto
        stream time by it, shrunk if the streams are too short).
    time_scale : float or None
        ``[data] time_scale``: stream seconds per simulated second, if set.
    folder : str or None
        ``[data] folder``.
    generator : mapping
        ``[data.generator]``: overrides of the built-in generator.
    """

    nodes: int
    seed: int
    slots: int
    slot_s: float
    records_per_slot: int
    time_scale: float | None = None
    folder: str | None = None
    generator: Mapping[str, Any] = field(default_factory=dict)


def time_scale(request: StreamRequest, period_s: float, stream_s: float = math.inf) -> float:
    """Stream seconds per simulated second.

    As configured; otherwise ``records_per_slot`` records a slot of streams
    sampled every ``period_s`` seconds, shrunk if needed so that the run's
    slots fit in the shortest stream (``stream_s`` seconds): a run past the
    end of its data would train on a frozen cache.
    """
    if request.time_scale is not None:
        return request.time_scale
    wanted = max(1.0, request.records_per_slot * period_s / request.slot_s)
    return min(wanted, stream_s / (request.slots * request.slot_s))


@runtime_checkable
class DataSource(Protocol):
    """Gives one sensor stream per physical node."""

    def __call__(self, request: StreamRequest) -> list[SensorStream]: ...


def generator_source(request: StreamRequest) -> list[SensorStream]:
    """The built-in generator, its streams just long enough for the run.

    Unless ``[data.generator] duration_s`` is set, a stream lasts the run's
    ``slots`` and two more (evaluation reads a little past the last round) at
    the run's :func:`time_scale`.
    """
    try:
        gen = GeneratorConfig.model_validate(
            {"n_streams": request.nodes, "seed": request.seed, **request.generator}
        )
    except ValidationError as err:
        raise InvalidInput(
            describe_validation_error(err, "GeneratorConfig", "[data.generator]")
        ) from None
    if "duration_s" not in request.generator:
        seconds = (request.slots + 2) * request.slot_s * time_scale(request, gen.period_s)
        gen = gen.model_copy(update={"duration_s": seconds})
    return generate_streams(gen)


def folder_source(request: StreamRequest) -> list[SensorStream]:
    """The CSV streams of ``[data] folder``, dealt round-robin to the nodes."""
    found = read_stream_folder(request.folder or "")
    return [found[i % len(found)] for i in range(request.nodes)]


BUILTIN_SOURCES: dict[str, Callable[[], DataSource]] = {
    "generator": lambda: generator_source,
    "folder": lambda: folder_source,
}

SOURCE_KIND = Kind(
    key="data.source", shape="a callable (request: StreamRequest) -> list[SensorStream]", arity=1
)

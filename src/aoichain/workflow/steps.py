"""The values the steps of a federated task take and return.

:class:`aoichain.workflow.FederatedTask` threads these from step to step in
its one loop; a subclass that overrides a step returns the same types.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Protocol

import numpy as np

from aoichain.chain import Publisher, Receipt, Relayer, TaskSpec, Ticket, UpdateRecord
from aoichain.chain import Worker as ChainWorker
from aoichain.fl import (
    AggregationRule,
    Dataset,
    LocalUpdate,
    Metrics,
    ModelSpec,
    PrivacyPolicy,
    SensorStream,
)
from aoichain.incentive import Contract, Market
from aoichain.workflow.config import RunConfig
from aoichain.workflow.faults import FaultInjector
from aoichain.workflow.schemes import Scheme
from aoichain.workflow.sources import DataSource
from aoichain.workflow.workers import Worker


class Parties(Protocol):
    """What the loop needs of the parties: the publisher and the relayer it acts through,
    each worker's chain party and the log every transaction's receipt goes to.

    :class:`aoichain.chain.Network` is one (every party in this process); an engine
    whose workers run elsewhere gives parties that only read what a worker did.
    """

    publisher: Publisher
    relayer: Relayer
    receipts: list[Receipt]

    def worker(self, space: str, index: int) -> ChainWorker: ...


@dataclass(frozen=True)
class Plugins:
    """The plug-ins a run uses, and the names they were given by (recorded in the run folder)."""

    aggregation: AggregationRule
    scheme: Scheme
    source: DataSource
    faults: FaultInjector
    names: dict[str, str]


@dataclass(frozen=True)
class Prepared:
    """Everything validated and computed before the chains are touched.

    ``task`` is the task exactly as it will be posted on M (menu in wei per
    round, escrow), validated against the contracts' limits here, so a
    menu or a worker count the chain cannot hold fails before any deployment.
    """

    config: RunConfig
    plugins: Plugins
    contract: Contract
    streams: list[SensorStream]
    policies: list[PrivacyPolicy]
    workers: list[Worker]
    spec: ModelSpec
    time_scale: float
    warmup_slots: int
    task: TaskSpec

    @property
    def market(self) -> Market:
        """The run's market (``config.market``)."""
        return self.config.market


@dataclass(frozen=True)
class GlobalModel:
    """A global model: its bytes and their sha256."""

    blob: bytes
    sha256: bytes


@dataclass(frozen=True)
class Request:
    """A worker's answer to a round's training request: its cache, and how fresh it is.

    ``aoi`` and ``latency`` in simulated seconds; ``data_time`` is when the
    cache's newest record was sensed (the end of its collection phase).
    """

    worker: Worker
    cache: Dataset
    aoi: float
    latency: float
    data_time: float


@dataclass(frozen=True)
class Trained:
    """A worker's local update of a round, with the request it answered."""

    request: Request
    update: LocalUpdate

    @property
    def worker(self) -> Worker:
        """Who trained it."""
        return self.request.worker


@dataclass(frozen=True)
class Rejection:
    """Something the system refused, and why (one row of the run's rejections)."""

    round: int
    worker: str
    where: str
    reason: str


@dataclass(frozen=True)
class Enrolled:
    """What step b produced: the workers that enrolled, and each one's admission ticket."""

    workers: list[Worker]
    tickets: dict[int, Ticket]


@dataclass(frozen=True)
class Submission:
    """An update sealed by its worker (see :mod:`aoichain.workflow.updates`) and recorded."""

    trained: Trained
    sha256: bytes


@dataclass(frozen=True)
class Uploaded:
    """What step d produced: the updates recorded on the subchains, and those refused."""

    recorded: list[Submission]
    rejections: list[Rejection]


@dataclass(frozen=True)
class Relayed:
    """What step e produced: the update records M attested (checked by the publisher), refusals."""

    attested: list[UpdateRecord]
    rejections: list[Rejection]


@dataclass(frozen=True)
class Aggregated:
    """What step f produced: the new global model and the attested updates it includes."""

    model: GlobalModel
    included: list[tuple[Worker, UpdateRecord]]
    rejections: list[Rejection]


@dataclass(frozen=True)
class RoundMetrics:
    """What one round produced (one row of ``rounds.csv``)."""

    round: int
    slot: int
    accuracy: float
    f1: float
    roc_auc: float
    loss: float
    mean_aoi: float
    mean_latency: float
    accepted: int
    rejected: int
    gas: int
    transactions: int
    seconds_training: float
    seconds_ledger: float
    seconds_relaying: float
    seconds_aggregating: float
    global_sha256: str


@dataclass
class Phases:
    """Wall-clock seconds per phase (measurement only; nothing depends on it)."""

    training: float = 0.0
    ledger: float = 0.0
    relaying: float = 0.0
    aggregating: float = 0.0
    evaluating: float = 0.0

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Add the seconds spent in the ``with`` block to ``phase``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, phase, getattr(self, phase) + time.perf_counter() - started)

    def snapshot(self) -> dict[str, float]:
        """The seconds per phase so far."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RequestLog:
    """Per round and worker: AoI and latency of the request, seconds; delivered or not."""

    aoi: np.ndarray
    latency: np.ndarray
    delivered: np.ndarray

    @classmethod
    def empty(cls, rounds: int, workers: int) -> RequestLog:
        """No requests yet: nan times, nothing delivered."""
        return cls(
            aoi=np.full((rounds, workers), np.nan),
            latency=np.full((rounds, workers), np.nan),
            delivered=np.zeros((rounds, workers), dtype=bool),
        )

    def first(self, rounds: int) -> RequestLog:
        """The log of the first ``rounds`` rounds."""
        return RequestLog(self.aoi[:rounds], self.latency[:rounds], self.delivered[:rounds])


@dataclass(frozen=True)
class Claimed:
    """One worker's claim on M: what the contract paid, what the worker spent on gas, and
    how its balance moved (wei)."""

    amount: int
    fee: int
    moved: int


@dataclass(frozen=True)
class Payout:
    """What step pay produced: each worker's withdrawal, the publisher's reclaim, the checks."""

    paid_wei: list[int]
    reclaimed_wei: int
    checks: list[str]


@dataclass
class TaskOutcome:
    """What :meth:`aoichain.workflow.FederatedTask.run` returns."""

    task_id: int
    rounds: list[RoundMetrics]
    requests: RequestLog
    credited_wei: list[int]
    paid_wei: list[int]
    reclaimed_wei: int
    budget_wei: int
    balance_checks: list[str]
    global_sha256: str
    initial: Metrics
    tickets: dict[int, Ticket] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)

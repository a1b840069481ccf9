"""One federated task from publish to payment: the paper's steps a–f.

:class:`FederatedTask` is a template method, as Flower's ``Strategy.start``:
:meth:`FederatedTask.run` is the one loop, and each step of Fig. 1 is a named
method that takes what it needs and returns what it produces (``publish``,
``allocate``, ``open_round``, ``serve``, ``train``, ``upload``, ``relay``,
``aggregate``, ``record``, ``announce``, ``evaluate``, ``pay``). Only
:meth:`~FederatedTask.run` threads values from step to step, so a subclass
may override any step without knowing what the others keep.

Time is a slot clock of ``t`` simulated seconds (never wall time). Round ``r``
is the training request at global slot ``k = r + warmup``. Each worker runs
its own update cycle of ``c + a`` slots (from its chosen contract item),
starting at a random phase; the request's AoI and latency follow the slot
rules of Sec. III-A (:func:`aoichain.incentive.simulation.request_aoi_latency`).
The data a request is answered with is the worker's cache: the records it
sensed in the collection phase that ends at ``arrival + latency - AoI``.
Simulated seconds map to stream seconds by ``time_scale``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np

from aoichain.chain import AttestedUpdate, ChainRejected, Ledger, TaskSpec
from aoichain.errors import IntegrityError
from aoichain.fl import (
    AggregationRule,
    Dataset,
    LocalUpdate,
    Metrics,
    ModelSpec,
    ModelStore,
    PrivacyPolicy,
    SensorStream,
    TrainConfig,
    aggregate,
    concat_datasets,
    evaluate,
    init_model,
    make_windows,
    train_local,
)
from aoichain.incentive import Contract, Market
from aoichain.incentive.simulation import request_aoi_latency
from aoichain.workflow.config import RunConfig
from aoichain.workflow.faults import FaultInjector
from aoichain.workflow.schemes import Scheme
from aoichain.workflow.sources import DataSource
from aoichain.workflow.workers import Worker


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
class Uploaded:
    """What step d produced: the updates recorded on the subchains, and those refused."""

    recorded: list[Trained]
    rejections: list[Rejection]


@dataclass(frozen=True)
class Relayed:
    """What step e produced: the update records accepted on M, and the refusals met."""

    attested: list[AttestedUpdate]
    rejections: list[Rejection]


@dataclass(frozen=True)
class Aggregated:
    """What step f produced: the new global model and the attested updates it includes."""

    model: GlobalModel
    included: list[tuple[Worker, AttestedUpdate]]
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
class Payout:
    """What step pay produced: each worker's withdrawal, the publisher's reclaim, the checks."""

    paid_wei: list[int]
    reclaimed_wei: int
    checks: list[str]


@dataclass
class TaskOutcome:
    """What :meth:`FederatedTask.run` returns."""

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
    rejections: list[Rejection] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)


class FederatedTask:
    """The paper's workflow over a ledger, a model store and sensor streams.

    Parameters
    ----------
    prepared : Prepared
        The validated config and plug-ins, the menu, the workers (physical
        first, then their twins, with their private types, items and
        streams), the nodes' full streams (evaluation reads their current
        records), the model spec, the clock's scale and the task as posted on M.
    ledger : Ledger
        The four chains, already started.
    store : ModelStore
        The content-addressed store for update and global blobs.
    on_round : callable, optional
        Called with each round's :class:`RoundMetrics` (progress display).
    """

    def __init__(
        self,
        prepared: Prepared,
        ledger: Ledger,
        store: ModelStore,
        on_round: Callable[[RoundMetrics], None] | None = None,
    ) -> None:
        self.prepared = prepared
        self.config = prepared.config
        self.market = prepared.market
        self.workers = list(prepared.workers)
        self.spec = prepared.spec
        self.plugins = prepared.plugins
        self.ledger = ledger
        self.store = store
        self.on_round = on_round
        self.phases = Phases()

    # -- before the first round ---------------------------------------------------------

    def initial_model(self) -> GlobalModel:
        """The untrained global model every worker starts from (seeded)."""
        blob = init_model(self.spec, self.config.task.seed)
        return GlobalModel(blob, self.store.put(blob))

    def publish(self) -> int:
        """Step a: post the task, its menu and the escrow on the main chain; the task id."""
        with self.phases.timing("ledger"):
            return self.ledger.publish_task(**self.prepared.task.model_dump())

    def allocate(self, task_id: int) -> list[Worker]:
        """Step b: relay the task to P and V; every worker that took an item enrols with it.

        Returns the enrolled workers.
        """
        with self.phases.timing("relaying"):
            self.ledger.relay_task(task_id)
        enrolled = [w for w in self.workers if w.item >= 0]
        with self.phases.timing("ledger"):
            for w in enrolled:
                self.ledger.enrol(w.space, w.space_index, task_id, w.item)
        return enrolled

    # -- steps c to f, once per round -----------------------------------------------------

    def slot_of(self, round_no: int) -> int:
        """The global slot at whose start round ``round_no``'s request arrives."""
        return round_no + self.prepared.warmup_slots

    def open_round(self, task_id: int, round_no: int) -> None:
        """The aggregator opens the round on M; the opening is relayed down to P and V."""
        with self.phases.timing("ledger"):
            self.ledger.open_round(task_id, round_no)

    def serve(self, round_no: int, workers: Sequence[Worker]) -> list[Request]:
        """Each worker answers the round's request with its cache (what it sensed last)."""
        t, a = self.market.t, float(self.market.a)
        slot = self.slot_of(round_no)
        scale = self.prepared.time_scale
        requests = []
        for w in workers:
            aoi, lat = request_aoi_latency(w.c, a, t, np.array([slot]), phase=w.phase)
            age, delay = float(aoi[0]), float(lat[0])
            data_time = slot * t + delay - age
            end, span = data_time * scale, w.c * t * scale
            share = max(1, self.config.train.max_windows // len(w.streams))
            parts = [
                make_windows(s.window(end - span, end), self.spec.window, max_windows=share)
                for s in w.streams
            ]
            requests.append(Request(w, concat_datasets(parts), age, delay, data_time))
        return requests

    def train(
        self, round_no: int, model: GlobalModel, requests: Sequence[Request]
    ) -> list[Trained]:
        """Step c: every worker with a non-empty cache trains the global model on it."""
        tc = self.config.train
        trained = []
        with self.phases.timing("training"):
            for req in requests:
                if len(req.cache) == 0:
                    continue
                cfg = TrainConfig(
                    epochs=tc.epochs,
                    batch_size=tc.batch_size,
                    lr=tc.lr,
                    momentum=tc.momentum,
                    seed=self.config.task.seed * 1_000_003 + round_no * 1000 + req.worker.index,
                )
                trained.append(Trained(req, train_local(self.spec, model.blob, req.cache, cfg)))
        return trained

    def upload(self, task_id: int, round_no: int, trained: Sequence[Trained]) -> Uploaded:
        """Step d: blobs to the model store, update records to each worker's subchain."""
        recorded, rejections = [], []
        with self.phases.timing("ledger"):
            for item in trained:
                w, update = item.worker, item.update
                self.store.put(update.blob, expected=update.sha256)
                self.plugins.faults.after_store(round_no, w, update.sha256, self.store)
                try:
                    self.ledger.submit_update(
                        w.space,
                        w.space_index,
                        task_id,
                        round_no,
                        update.sha256,
                        update.samples,
                        # When the cache was sensed, in simulated seconds of the slot clock.
                        round(item.request.data_time),
                    )
                except ChainRejected as exc:
                    rejections.append(Rejection(round_no, w.label, "subchain", exc.reason))
                    continue
                recorded.append(item)
        return Uploaded(recorded, rejections)

    def relay(self, task_id: int, round_no: int) -> Relayed:
        """Step e: checkpoints, committee attestations, update records accepted on M."""
        attested: list[AttestedUpdate] = []
        rejections = []
        with self.phases.timing("relaying"):
            if self.plugins.faults.lying_relayer(round_no):
                known = len(self.ledger.refusals)
                attested += self.ledger.relay_updates(task_id, round_no, lying_relayer=True)
                rejections += [
                    Rejection(
                        round_no, "-", "relay committee", f"subchain {x['space']}: {x['reason']}"
                    )
                    for x in self.ledger.refusals[known:]
                ]
            # An honest relayer carries whatever is still undelivered.
            attested += self.ledger.relay_updates(task_id, round_no)
        return Relayed(attested, rejections)

    def aggregate(
        self, round_no: int, attested: Sequence[AttestedUpdate], model: GlobalModel
    ) -> Aggregated:
        """Step f: aggregate exactly the attested updates whose blobs verify.

        A record the aggregator cannot use (a worker it does not know, a blob
        missing or not matching its hash) is a rejection with a reason; with
        nothing usable, the global model stays as it was.
        """
        by_address = {w.address.lower(): w for w in self.workers}
        blobs, weights, included, rejections = [], [], [], []
        with self.phases.timing("aggregating"):
            for record in attested:
                worker = by_address.get(record.worker.lower())
                if worker is None:
                    rejections.append(
                        Rejection(round_no, record.worker, "aggregator", "not a worker of this run")
                    )
                    continue
                try:
                    blob = self.store.get(record.update_sha256)
                except (IntegrityError, KeyError) as exc:
                    rejections.append(Rejection(round_no, worker.label, "aggregator", str(exc)))
                    continue
                blobs.append(blob)
                weights.append(float(record.samples))
                included.append((worker, record))
            blob = aggregate(blobs, weights, self.plugins.aggregation) if blobs else model.blob
            new = GlobalModel(blob, self.store.put(blob))
        return Aggregated(new, included, rejections)

    def record(self, task_id: int, round_no: int, aggregated: Aggregated) -> None:
        """The aggregator records the global model and the included updates on M (credits)."""
        with self.phases.timing("ledger"):
            self.ledger.record_global_model(
                task_id,
                round_no,
                aggregated.model.sha256,
                [record.update_sha256 for _, record in aggregated.included],
            )

    def announce(self, task_id: int, round_no: int, model: GlobalModel) -> None:
        """The global hash travels back down to P and V; workers verify what they download.

        Then the aggregator closes the round on M.
        """
        with self.phases.timing("relaying"):
            announced = self.ledger.relay_global_model(task_id, round_no)
        for space, sha in announced.items():
            if bytes(sha) != model.sha256:
                raise IntegrityError(
                    f"subchain {space} announces {bytes(sha).hex()} for round {round_no}, "
                    f"but the aggregator recorded {model.sha256.hex()}"
                )
        downloaded = self.store.get(model.sha256)
        if hashlib.sha256(downloaded).digest() != model.sha256:
            raise IntegrityError("downloaded global model does not match its announced hash")
        with self.phases.timing("ledger"):
            self.ledger.close_round(task_id, round_no)

    def evaluate(self, round_no: int, model: GlobalModel) -> Metrics:
        """Quality of a global model on the current records of every stream.

        Before round 0 has trained, this scores the untrained model: the
        baseline every later round is compared with.
        """
        with self.phases.timing("evaluating"):
            scale = self.prepared.time_scale
            now = self.slot_of(round_no) * self.market.t * scale
            span = self.config.data.eval_slots * self.market.t * scale
            parts = [
                make_windows(s.window(now - span, now), self.spec.window, stride=4)
                for s in self.prepared.streams
            ]
            data = concat_datasets([p for p in parts if len(p)] or [parts[0]])
            return evaluate(self.spec, model.blob, data)

    # -- payment ------------------------------------------------------------------------

    def pay(self, task_id: int, credited: Sequence[int], earned_before: Sequence[int]) -> Payout:
        """Workers withdraw what they earned; the publisher reclaims the rest.

        Checks that the chain's view matches this run's own accounting
        (``credited``: wei per worker in this task; ``earned_before``: what
        each had earned on M before it) and that every balance moved by
        exactly what was paid (less gas).
        """
        with self.phases.timing("ledger"):
            self.ledger.finish_task(task_id)
            paid = []
            for w in self.workers:
                earned = self.ledger.earned(w.address) - earned_before[w.index]
                if earned != credited[w.index]:
                    raise IntegrityError(
                        f"worker {w.label}: chain says {earned} wei earned in this task, run "
                        f"credited {credited[w.index]}"
                    )
                owed = self.ledger.withdrawable(w.address)
                if owed == 0:
                    paid.append(0)
                    continue
                before = self.ledger.balance("M", w.address)
                got, fee = self.ledger.withdraw(w.address)
                after = self.ledger.balance("M", w.address)
                if got != owed or got < earned or after - before != got - fee:
                    raise IntegrityError(
                        f"worker {w.label}: balance moved {after - before} wei, expected "
                        f"{got} paid less {fee} gas"
                    )
                paid.append(got)
            budget, earned_total = self.prepared.task.escrow_wei, sum(credited)
            # The contract refuses an empty reclaim; with every worker at the top reward
            # for every round (e.g. flat) the whole escrow was earned.
            reclaimed = self.ledger.reclaim(task_id) if budget > earned_total else 0
        if reclaimed != budget - earned_total:
            raise IntegrityError(
                f"publisher reclaimed {reclaimed} wei, expected escrow {budget} less "
                f"{earned_total} earned"
            )
        checks = [
            f"{sum(1 for p in paid if p)} withdrawals match the chain's credits",
            f"escrow {budget} wei = earned {earned_total} + reclaimed {reclaimed}",
        ]
        return Payout(paid, reclaimed, checks)

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> TaskOutcome:
        """Publish, allocate, then per round: open, serve, train, upload, relay,
        aggregate, record, announce, evaluate; then pay. The one place values flow."""
        rounds, m = self.config.task.rounds, len(self.workers)
        reward = self.prepared.task.menu_reward_wei_per_round
        model = self.initial_model()
        initial = self.evaluate(0, model)
        # The ledger may have run tasks before: credits are counted from here.
        earned_before = [self.ledger.earned(w.address) for w in self.workers]
        task_id = self.publish()
        enrolled = self.allocate(task_id)
        log = RequestLog.empty(rounds, m)
        credited = [0] * m
        history: list[RoundMetrics] = []
        rejections: list[Rejection] = []
        for r in range(rounds):
            before, n_receipts = self.phases.snapshot(), len(self.ledger.receipts)
            self.open_round(task_id, r)
            requests = self.serve(r, enrolled)
            for req in requests:
                log.aoi[r, req.worker.index] = req.aoi
                log.latency[r, req.worker.index] = req.latency
            trained = self.train(r, model, requests)
            uploaded = self.upload(task_id, r, trained)
            relayed = self.relay(task_id, r)
            aggregated = self.aggregate(r, relayed.attested, model)
            self.record(task_id, r, aggregated)
            self.announce(task_id, r, aggregated.model)
            model = aggregated.model
            for worker, _record in aggregated.included:
                log.delivered[r, worker.index] = True
                credited[worker.index] += reward[worker.item]
            lost = _not_attested(r, uploaded.recorded, relayed.attested)
            round_rejections = (
                uploaded.rejections + relayed.rejections + aggregated.rejections + lost
            )
            rejections += round_rejections
            metrics = self.evaluate(r, model)
            spent, new = self.phases.snapshot(), self.ledger.receipts[n_receipts:]
            row = RoundMetrics(
                round=r,
                slot=self.slot_of(r),
                accuracy=metrics.accuracy,
                f1=metrics.f1,
                roc_auc=metrics.roc_auc,
                loss=metrics.loss,
                mean_aoi=mean_finite(log.aoi[r]),
                mean_latency=mean_finite(log.latency[r]),
                accepted=len(aggregated.included),
                rejected=sum(1 for x in round_rejections if x.worker != "-"),
                gas=sum(rc.gas_used for rc in new),
                transactions=len(new),
                seconds_training=spent["training"] - before["training"],
                seconds_ledger=spent["ledger"] - before["ledger"],
                seconds_relaying=spent["relaying"] - before["relaying"],
                seconds_aggregating=spent["aggregating"] - before["aggregating"],
                global_sha256=model.sha256.hex(),
            )
            history.append(row)
            if self.on_round is not None:
                self.on_round(row)
            if metrics.accuracy >= self.config.task.target_accuracy:
                break
        payout = self.pay(task_id, credited, earned_before)
        return TaskOutcome(
            task_id=task_id,
            rounds=history,
            requests=log.first(len(history)),
            credited_wei=credited,
            paid_wei=payout.paid_wei,
            reclaimed_wei=payout.reclaimed_wei,
            budget_wei=self.prepared.task.escrow_wei,
            balance_checks=payout.checks,
            global_sha256=model.sha256.hex(),
            initial=initial,
            rejections=rejections,
            phases=self.phases,
        )


def _not_attested(
    round_no: int, recorded: Sequence[Trained], attested: Sequence[AttestedUpdate]
) -> list[Rejection]:
    """Updates recorded on a subchain that never reached M attested (e.g. a lying relayer)."""
    seen = {bytes(a.update_sha256) for a in attested}
    return [
        Rejection(round_no, t.worker.label, "relay", "update not attested on the main chain")
        for t in recorded
        if t.update.sha256 not in seen
    ]


def mean_finite(values: np.ndarray) -> float:
    """Mean of the finite entries (nan when there are none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan

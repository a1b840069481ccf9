"""One federated task from publish to payment: the paper's steps a–f.

:class:`FederatedTask` is a template method: :meth:`FederatedTask.run` is the
one loop, and each step of Fig. 1 is a named method (``publish``,
``allocate``, ``train``, ``upload``, ``relay``, ``aggregate``, ``announce``,
``pay``) that a subclass may override, as Flower's ``Strategy`` does.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aoichain.chain import AttestedUpdate, ChainRejected, Ledger, TaskSpec
from aoichain.errors import IntegrityError
from aoichain.fl import (
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
from aoichain.workflow.workers import Worker


@dataclass(frozen=True)
class Prepared:
    """Everything validated and computed before the chains are touched.

    ``task`` is the task exactly as it will be posted on M (menu in wei per
    round, escrow), validated against the contracts' limits here, so a
    menu or a worker count the chain cannot hold fails before any deployment.
    """

    config: RunConfig
    market: Market
    contract: Contract
    streams: list[SensorStream]
    policies: list[PrivacyPolicy]
    workers: list[Worker]
    spec: ModelSpec
    time_scale: float
    warmup_slots: int
    task: TaskSpec


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


@dataclass
class RequestLog:
    """Per worker and round: AoI and latency of the request, seconds; delivered or not."""

    aoi: np.ndarray
    latency: np.ndarray
    delivered: np.ndarray


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
    rejections: list[dict[str, Any]] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)


class FederatedTask:
    """The paper's workflow over a ledger, a model store and sensor streams.

    Parameters
    ----------
    prepared : Prepared
        The validated config, market, menu, workers (physical first, then
        their twins, with their private types, items and streams), the
        nodes' full streams (evaluation reads their current records), the
        model spec, the clock's scale and the task as posted on M.
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
        self.config = prepared.config
        self.market = prepared.market
        self.contract = prepared.contract
        self.workers = list(prepared.workers)
        self.streams = list(prepared.streams)
        self.spec = prepared.spec
        self.time_scale = prepared.time_scale
        self.warmup_slots = prepared.warmup_slots
        self.task = prepared.task
        self.ledger = ledger
        self.store = store
        self.on_round = on_round
        self.phases = Phases()
        self.task_id = -1
        self.global_blob = b""
        self.global_sha = b""
        self.rejections: list[dict[str, Any]] = []
        rounds, m = self.config.task.rounds, len(self.workers)
        self.requests = RequestLog(
            aoi=np.full((rounds, m), np.nan),
            latency=np.full((rounds, m), np.nan),
            delivered=np.zeros((rounds, m), dtype=bool),
        )
        self.credited = [0] * m
        self.data_time = np.full(m, np.nan)
        self.earned_before = [0] * m
        self.reward_wei_per_round = list(self.task.menu_reward_wei_per_round)

    # -- steps a and b ----------------------------------------------------------------

    def publish(self) -> int:
        """Step a: post the task, its menu and the escrow on the main chain."""
        started = time.perf_counter()
        self.task_id = self.ledger.publish_task(**self.task.model_dump())
        self.phases.ledger += time.perf_counter() - started
        return self.task_id

    def allocate(self) -> None:
        """Step b: relay the task to P and V; every worker enrols with its chosen item."""
        started = time.perf_counter()
        self.ledger.relay_task(self.task_id)
        self.phases.relaying += time.perf_counter() - started
        started = time.perf_counter()
        for w in self.workers:
            if w.item >= 0:
                self.ledger.enrol(w.space, w.space_index, self.task_id, w.item)
        self.phases.ledger += time.perf_counter() - started

    # -- steps c to f, once per round -------------------------------------------------

    def slot_of(self, round_no: int) -> int:
        """The global slot at whose start round ``round_no``'s request arrives."""
        return round_no + self.warmup_slots

    def cache_of(self, worker: Worker, round_no: int) -> tuple[Dataset, float, float, float]:
        """The worker's cache answering this round's request: (windows, AoI, latency, data time).

        Times in simulated seconds; the data time is when the cache's newest
        record was sensed (the end of the serving collection phase).
        """
        t, a = self.market.t, float(self.market.a)
        slot = self.slot_of(round_no)
        aoi, lat = request_aoi_latency(worker.c, a, t, np.array([slot]), phase=worker.phase)
        age, delay = float(aoi[0]), float(lat[0])
        data_time = slot * t + delay - age
        end = data_time * self.time_scale
        span = worker.c * t * self.time_scale
        share = max(1, self.config.train.max_windows // len(worker.streams))
        parts = [
            make_windows(s.window(end - span, end), self.spec.window, max_windows=share)
            for s in worker.streams
        ]
        return concat_datasets(parts), age, delay, data_time

    def train(self, round_no: int) -> list[tuple[Worker, LocalUpdate]]:
        """Step c: every enrolled worker trains the global model on its cache."""
        started = time.perf_counter()
        trained = []
        tc = self.config.train
        for w in self.workers:
            if w.item < 0:
                continue
            dataset, age, delay, self.data_time[w.index] = self.cache_of(w, round_no)
            self.requests.aoi[round_no, w.index] = age
            self.requests.latency[round_no, w.index] = delay
            if len(dataset) == 0:
                continue
            cfg = TrainConfig(
                epochs=tc.epochs,
                batch_size=tc.batch_size,
                lr=tc.lr,
                momentum=tc.momentum,
                seed=self.config.task.seed * 1_000_003 + round_no * 1000 + w.index,
            )
            trained.append((w, train_local(self.spec, self.global_blob, dataset, cfg)))
        self.phases.training += time.perf_counter() - started
        return trained

    def upload(self, round_no: int, trained: list[tuple[Worker, LocalUpdate]]) -> int:
        """Step d: blobs to the model store, update records to each worker's subchain.

        Returns the number of updates the subchains rejected.
        """
        started = time.perf_counter()
        rejected = 0
        for w, update in trained:
            self.store.put(update.blob, expected=update.sha256)
            if self.config.faults.tamper_blob == (round_no, w.index):
                self._tamper(update.sha256)
            try:
                self.ledger.submit_update(
                    w.space,
                    w.space_index,
                    self.task_id,
                    round_no,
                    update.sha256,
                    update.samples,
                    # When the cache was sensed, in simulated seconds of the slot clock.
                    round(float(self.data_time[w.index])),
                )
            except ChainRejected as exc:
                rejected += 1
                self._reject(round_no, w, "subchain", exc.reason)
        self.phases.ledger += time.perf_counter() - started
        return rejected

    def relay(self, round_no: int) -> list[AttestedUpdate]:
        """Step e: checkpoints, committee attestations, update records accepted on M."""
        started = time.perf_counter()
        attested: list[AttestedUpdate] = []
        if self.config.faults.lying_relayer == round_no:
            known = len(self.ledger.refusals)
            attested += self.ledger.relay_updates(self.task_id, round_no, lying_relayer=True)
            for refusal in self.ledger.refusals[known:]:
                self.rejections.append(
                    {
                        "round": round_no,
                        "worker": "-",
                        "where": "relay committee",
                        "reason": f"subchain {refusal['space']}: {refusal['reason']}",
                    }
                )
        # An honest relayer carries whatever is still undelivered.
        attested += self.ledger.relay_updates(self.task_id, round_no)
        self.phases.relaying += time.perf_counter() - started
        return attested

    def aggregate(self, round_no: int, attested: Sequence[AttestedUpdate]) -> tuple[int, int]:
        """Step f: aggregate exactly the attested updates whose blobs verify; record on M.

        Returns (accepted, rejected).
        """
        started = time.perf_counter()
        by_address = {w.address.lower(): w for w in self.workers}
        blobs, weights, included, rejected = [], [], [], 0
        for record in attested:
            worker = by_address[record.worker.lower()]
            try:
                blob = self.store.get(record.update_sha256)
            except (IntegrityError, KeyError) as exc:
                rejected += 1
                self._reject(round_no, worker, "aggregator", str(exc))
                continue
            blobs.append(blob)
            weights.append(float(record.samples))
            included.append(record.update_sha256)
            self.requests.delivered[round_no, worker.index] = True
            self.credited[worker.index] += self.reward_wei_per_round[worker.item]
        if blobs:
            self.global_blob = aggregate(blobs, weights, self.config.train.aggregation)
        self.global_sha = self.store.put(self.global_blob)
        self.phases.aggregating += time.perf_counter() - started
        started = time.perf_counter()
        self.ledger.record_global_model(self.task_id, round_no, self.global_sha, included)
        self.phases.ledger += time.perf_counter() - started
        return len(included), rejected

    def announce(self, round_no: int) -> None:
        """The global hash travels back down to P and V; workers verify what they download."""
        started = time.perf_counter()
        announced = self.ledger.relay_global_model(self.task_id, round_no)
        self.phases.relaying += time.perf_counter() - started
        for space, sha in dict(announced).items():
            if bytes(sha) != self.global_sha:
                raise IntegrityError(
                    f"subchain {space} announces {bytes(sha).hex()} for round {round_no}, "
                    f"but the aggregator recorded {self.global_sha.hex()}"
                )
        downloaded = self.store.get(self.global_sha)
        if hashlib.sha256(downloaded).digest() != self.global_sha:
            raise IntegrityError("downloaded global model does not match its announced hash")
        started = time.perf_counter()
        self.ledger.close_round(self.task_id, round_no)
        self.phases.ledger += time.perf_counter() - started

    def evaluate(self, round_no: int) -> Metrics:
        """Quality of the global model on the current records of every stream.

        Before round 0 has trained, this scores the untrained model: the
        baseline every later round is compared with.
        """
        started = time.perf_counter()
        now = self.slot_of(round_no) * self.market.t * self.time_scale
        span = self.config.data.eval_slots * self.market.t * self.time_scale
        parts = [
            make_windows(s.window(now - span, now), self.spec.window, stride=4)
            for s in self.streams
        ]
        data = concat_datasets([p for p in parts if len(p)] or [parts[0]])
        metrics = evaluate(self.spec, self.global_blob, data)
        self.phases.evaluating += time.perf_counter() - started
        return metrics

    # -- payment --------------------------------------------------------------------

    def pay(self) -> tuple[list[int], int, list[str]]:
        """Workers withdraw what they earned; the publisher reclaims the rest.

        Checks that the chain's view matches this run's own accounting and
        that every balance moved by exactly what was paid (less gas).
        """
        started = time.perf_counter()
        self.ledger.finish_task(self.task_id)
        checks: list[str] = []
        paid = []
        for w in self.workers:
            earned = self.ledger.earned(w.address) - self.earned_before[w.index]
            if earned != self.credited[w.index]:
                raise IntegrityError(
                    f"worker {w.label}: chain says {earned} wei earned in this task, run "
                    f"credited {self.credited[w.index]}"
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
        budget, earned = self.budget_wei, sum(self.credited)
        # The contract refuses an empty reclaim; with every worker at the top reward
        # for every round (e.g. flat) the whole escrow was earned.
        reclaimed = self.ledger.reclaim(self.task_id) if budget > earned else 0
        if reclaimed != budget - earned:
            raise IntegrityError(
                f"publisher reclaimed {reclaimed} wei, expected escrow {budget} less "
                f"{earned} earned"
            )
        checks.append(f"{sum(1 for p in paid if p)} withdrawals match the chain's credits")
        checks.append(f"escrow {budget} wei = earned {earned} + reclaimed {reclaimed}")
        self.phases.ledger += time.perf_counter() - started
        return paid, reclaimed, checks

    @property
    def budget_wei(self) -> int:
        """The escrow the task locks: every worker at the best reward, every round."""
        return self.task.escrow_wei

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> TaskOutcome:
        """Publish, allocate, then train/upload/relay/aggregate/announce per round, then pay."""
        self.global_blob = init_model(self.spec, self.config.task.seed)
        self.global_sha = self.store.put(self.global_blob)
        initial = self.evaluate(0)
        # The ledger may have run tasks before: credits are counted from here.
        self.earned_before = [self.ledger.earned(w.address) for w in self.workers]
        self.publish()
        self.allocate()
        history: list[RoundMetrics] = []
        for r in range(self.config.task.rounds):
            before = self._phase_snapshot()
            n_receipts = len(self.ledger.receipts)
            self.ledger.open_round(self.task_id, r)
            trained = self.train(r)
            rejected = self.upload(r, trained)
            attested = self.relay(r)
            accepted, refused = self.aggregate(r, attested)
            self.announce(r)
            metrics = self.evaluate(r)
            spent = self._phase_snapshot()
            new = self.ledger.receipts[n_receipts:]
            row = RoundMetrics(
                round=r,
                slot=self.slot_of(r),
                accuracy=metrics.accuracy,
                f1=metrics.f1,
                roc_auc=metrics.roc_auc,
                loss=metrics.loss,
                mean_aoi=float(np.nanmean(self.requests.aoi[r])),
                mean_latency=float(np.nanmean(self.requests.latency[r])),
                accepted=accepted,
                rejected=rejected + refused + self._lost(r, trained, attested),
                gas=sum(rc.gas_used for rc in new),
                transactions=len(new),
                seconds_training=spent[0] - before[0],
                seconds_ledger=spent[1] - before[1],
                seconds_relaying=spent[2] - before[2],
                seconds_aggregating=spent[3] - before[3],
                global_sha256=self.global_sha.hex(),
            )
            history.append(row)
            if self.on_round is not None:
                self.on_round(row)
            if metrics.accuracy >= self.config.task.target_accuracy:
                break
        paid, reclaimed, checks = self.pay()
        done = len(history)
        return TaskOutcome(
            task_id=self.task_id,
            rounds=history,
            requests=RequestLog(
                aoi=self.requests.aoi[:done],
                latency=self.requests.latency[:done],
                delivered=self.requests.delivered[:done],
            ),
            credited_wei=list(self.credited),
            paid_wei=paid,
            reclaimed_wei=reclaimed,
            budget_wei=self.budget_wei,
            balance_checks=checks,
            global_sha256=self.global_sha.hex(),
            initial=initial,
            rejections=self.rejections,
            phases=self.phases,
        )

    # -- helpers ----------------------------------------------------------------------

    def _phase_snapshot(self) -> tuple[float, float, float, float]:
        p = self.phases
        return (p.training, p.ledger, p.relaying, p.aggregating)

    def _tamper(self, sha: bytes) -> None:
        path = self.store.path(sha)
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))

    def _reject(self, round_no: int, worker: Worker, where: str, reason: str) -> None:
        self.rejections.append(
            {"round": round_no, "worker": worker.label, "where": where, "reason": reason}
        )

    def _lost(
        self,
        round_no: int,
        trained: Sequence[tuple[Worker, LocalUpdate]],
        attested: Sequence[AttestedUpdate],
    ) -> int:
        """Updates recorded on a subchain that never reached M attested (e.g. a lying relayer)."""
        seen = {bytes(a.update_sha256) for a in attested}
        missing = 0
        for w, update in trained:
            if update.sha256 not in seen and not any(
                x["round"] == round_no and x["worker"] == w.label for x in self.rejections
            ):
                missing += 1
                self._reject(round_no, w, "relay", "update not attested on the main chain")
        return missing


def mean_finite(values: np.ndarray) -> float:
    """Mean of the finite entries (nan when there are none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan

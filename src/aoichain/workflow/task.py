"""One federated task from publish to payment: the paper's steps a–f.

:class:`FederatedTask` is a template method, as Flower's ``Strategy.start``:
:meth:`FederatedTask.run` is the one loop, and each step of Fig. 1 is a named
method that takes what it needs and returns what it produces (``publish``,
``allocate``, ``open_round``, ``serve``, ``train``, ``upload``, ``relay``,
``aggregate``, ``record``, ``announce``, ``evaluate``, ``pay``; the values
are in :mod:`aoichain.workflow.steps`). Only :meth:`~FederatedTask.run`
threads values from step to step, so a subclass may override any step
without knowing what the others keep.

Each step acts through the party that would act in the paper, each with its
own key (:class:`aoichain.chain.Network`): the publisher posts, admits,
opens, records and reclaims; each worker enrols, records its own update and
claims its own pay; the relayer carries messages, which validators and the
committee check on their own views.

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
from collections.abc import Callable, Sequence

import numpy as np

from aoichain.chain import ChainRejected, Included, Network, RoundRecords, Ticket, UpdateRecord
from aoichain.chain import Worker as ChainWorker
from aoichain.chain.client import send_together
from aoichain.errors import AoichainError, IntegrityError
from aoichain.fl import (
    ModelStore,
    TrainConfig,
    aggregate,
    concat_datasets,
    evaluate,
    init_model,
    judge_target,
    make_windows,
    train_batch,
    train_local,
)
from aoichain.fl.errors import BlobNotFound
from aoichain.incentive.simulation import request_aoi_latency
from aoichain.workflow.steps import (
    Aggregated,
    Enrolled,
    Evaluation,
    GlobalModel,
    Payout,
    Phases,
    Prepared,
    Rejection,
    Relayed,
    Request,
    RequestLog,
    RoundMetrics,
    Submission,
    TaskOutcome,
    Trained,
    Uploaded,
)
from aoichain.workflow.updates import check_author, sealed_sha256
from aoichain.workflow.workers import Worker


class RunAborted(AoichainError):
    """A run failed after publishing; the task was settled (finished, escrow reclaimed)."""


class FederatedTask:
    """The paper's workflow over the parties of a network, a model store and sensor streams.

    Parameters
    ----------
    prepared : Prepared
        The validated config and plug-ins, the menu, the workers (physical
        first, then their twins, with their private types, items and
        streams), the nodes' full streams (evaluation reads their current
        records), the model spec, the clock's scale and the task as posted on M.
    network : Network
        The chains and every party, started.
    store : ModelStore
        The content-addressed store for update and global blobs.
    on_round : callable, optional
        Called with each round's :class:`RoundMetrics` (progress display).
    """

    def __init__(
        self,
        prepared: Prepared,
        network: Network,
        store: ModelStore,
        on_round: Callable[[RoundMetrics], None] | None = None,
    ) -> None:
        self.prepared = prepared
        self.config = prepared.config
        self.market = prepared.market
        self.workers = list(prepared.workers)
        self.spec = prepared.spec
        self.plugins = prepared.plugins
        self.network = network
        self.store = store
        self.on_round = on_round
        self.phases = Phases()

    def party(self, worker: Worker) -> ChainWorker:
        """The chain party (key, subchain) of a worker of this run."""
        return self.network.worker(worker.space, worker.space_index)

    # -- before the first round ---------------------------------------------------------

    def initial_model(self) -> GlobalModel:
        """The untrained global model every worker starts from (seeded)."""
        blob = init_model(self.spec, self.config.task.seed)
        return GlobalModel(blob, self.store.put(blob))

    def publish(self) -> int:
        """Step a: the publisher posts the task, its menu and the escrow on M; the task id."""
        with self.phases.timing("ledger"):
            return self.network.publisher.publish(self.prepared.task)

    def allocate(self, task_id: int) -> Enrolled:
        """Step b: the task is relayed to the subchains; the publisher admits each worker
        that took an item (a ticket naming its item and index) and the worker enrols."""
        with self.phases.timing("relaying"):
            self.network.relayer.relay_task(task_id)
        stride = self.prepared.task.stride
        taken: dict[int, int] = {}
        enrolled, tickets = [], {}
        with self.phases.timing("ledger"):
            for w in self.workers:
                if w.item < 0:
                    continue
                index = w.item * stride + taken.get(w.item, 0)
                taken[w.item] = taken.get(w.item, 0) + 1
                party = self.party(w)
                ticket = self.network.publisher.admit(
                    task_id, party.address, party.subchain, w.item, index
                )
                party.enrol(ticket)
                enrolled.append(w)
                tickets[w.index] = ticket
        return Enrolled(enrolled, tickets)

    # -- steps c to f, once per round -----------------------------------------------------

    def slot_of(self, round_no: int) -> int:
        """The global slot at whose start round ``round_no``'s request arrives."""
        return round_no + self.prepared.warmup_slots

    def open_round(self, task_id: int, round_no: int) -> None:
        """The publisher opens the round on M; the opening is relayed to every subchain."""
        with self.phases.timing("ledger"):
            self.network.publisher.open_round(task_id, round_no)
        with self.phases.timing("relaying"):
            self.network.relayer.relay_round_open(task_id, round_no)

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
            slots = self.config.data.cache_slots if self.config.data.cache == "fixed" else w.c
            end, span = data_time * scale, slots * t * scale
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
        """Step c: every worker with a non-empty cache trains the global model on it
        (in one vectorised pass, or one by one: the same bytes either way)."""
        tc = self.config.train
        serving = [req for req in requests if len(req.cache)]
        cfgs = [
            TrainConfig(
                epochs=tc.epochs,
                batch_size=tc.batch_size,
                lr=tc.lr,
                momentum=tc.momentum,
                seed=self.config.task.seed * 1_000_003 + round_no * 1000 + req.worker.index,
            )
            for req in serving
        ]
        with self.phases.timing("training"):
            if tc.batched:
                updates = train_batch(self.spec, model.blob, [r.cache for r in serving], cfgs)
            else:
                updates = [
                    train_local(self.spec, model.blob, r.cache, c)
                    for r, c in zip(serving, cfgs, strict=True)
                ]
        return [Trained(req, update) for req, update in zip(serving, updates, strict=True)]

    def upload(self, task_id: int, round_no: int, trained: Sequence[Trained]) -> Uploaded:
        """Step d: each worker seals its update (task, round, its address), stores the blob
        and signs its record ``(task, round, sha256, samples, data time)`` with its own
        key for its own subchain; the records of a round go out together, as the
        workers' transactions would land in the same blocks of a real chain."""
        submissions, txs = [], []
        with self.phases.timing("ledger"):
            for item in trained:
                w = item.worker
                party = self.party(w)
                blob, sha = sealed_sha256(
                    item.update.blob, task_id=task_id, round_no=round_no, author=party.address
                )
                self.store.put(blob, expected=sha)
                self.plugins.faults.after_store(round_no, w, sha, self.store)
                # When the cache was sensed, in simulated seconds of the slot clock.
                data_time = round(item.request.data_time)
                txs.append(party.update_tx(task_id, round_no, sha, item.update.samples, data_time))
                submissions.append(Submission(item, sha))
            results = send_together(txs)
        recorded, rejections = [], []
        for submission, result in zip(submissions, results, strict=True):
            if isinstance(result, ChainRejected):
                label = submission.trained.worker.label
                rejections.append(Rejection(round_no, label, "subchain", result.reason))
            else:
                recorded.append(submission)
        return Uploaded(recorded, rejections)

    def relay(self, task_id: int, round_no: int) -> Relayed:
        """Step e: the relayer carries each subchain's round records to M (checkpoints,
        proofs, committee attestations); the publisher checks them against what M accepted."""
        relayer = self.network.relayer
        carried: dict[str, RoundRecords] = {}
        rejections = []
        with self.phases.timing("relaying"):
            if self.plugins.faults.lying_relayer(round_no):
                known = len(relayer.refusals)
                carried.update(relayer.relay_records(task_id, round_no, lying=True))
                rejections += [
                    Rejection(round_no, "-", "relay committee", f"subchain {x.chain}: {x.reason}")
                    for x in relayer.refusals[known:]
                ]
            # An honest relayer carries whatever is still undelivered.
            carried.update(relayer.relay_records(task_id, round_no))
        with self.phases.timing("ledger"):
            verified = self.network.publisher.verify_records(task_id, round_no, carried)
        attested = [rec for records in verified.values() for rec in records]
        return Relayed(attested, rejections)

    def aggregate(
        self, task_id: int, round_no: int, attested: Sequence[UpdateRecord], model: GlobalModel
    ) -> Aggregated:
        """Step f: aggregate exactly the attested updates whose blobs verify.

        A record the aggregator cannot use (a worker it does not know, a blob
        missing, not matching its hash, or sealed by someone else: a copied
        hash) is a rejection with a reason; with nothing usable, the global
        model stays as it was. Weights are the samples the chain recorded.
        """
        by_address = {self.party(w).address.lower(): w for w in self.workers}
        models, weights, included, rejections = [], [], [], []
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
                    models.append(
                        check_author(blob, task_id=task_id, round_no=round_no, worker=record.worker)
                    )
                except (IntegrityError, BlobNotFound) as exc:
                    rejections.append(Rejection(round_no, worker.label, "aggregator", str(exc)))
                    continue
                weights.append(float(record.samples))
                included.append((worker, record))
            blob = aggregate(models, weights, self.plugins.aggregation) if models else model.blob
            new = GlobalModel(blob, self.store.put(blob))
        return Aggregated(new, included, rejections)

    def record(
        self, task_id: int, round_no: int, aggregated: Aggregated, *, open_next: bool
    ) -> None:
        """The publisher records the global model and the included worker indices on M;
        with ``open_next``, the same transaction closes the round and opens the next
        (one message down to the subchains instead of two)."""
        with self.phases.timing("ledger"):
            self.network.publisher.record_global_model(
                task_id,
                round_no,
                aggregated.model.sha256,
                [Included(r.index, r.worker, r.update_sha256) for _, r in aggregated.included],
                open_next=open_next,
            )

    def announce(
        self,
        task_id: int,
        round_no: int,
        model: GlobalModel,
        workers: Sequence[Worker],
        *,
        opened_next: bool,
    ) -> None:
        """The global hash travels down to every subchain (with the next round's opening
        if the record opened it); workers check what they download against what their
        subchain announces (one worker per subchain here: they read the same storage).
        A last round is then closed on M."""
        with self.phases.timing("relaying"):
            self.network.relayer.relay_global_model(task_id, round_no)
        checked: set[str] = set()
        for w in workers:
            party = self.party(w)
            if party.subchain in checked:
                continue
            checked.add(party.subchain)
            announced = party.announced(task_id, round_no).global_sha256
            downloaded = self.store.get(announced) if announced == model.sha256 else b""
            if announced != model.sha256 or hashlib.sha256(downloaded).digest() != announced:
                raise IntegrityError(
                    f"subchain {party.subchain} announces {announced.hex()} for round "
                    f"{round_no}, but the aggregator recorded {model.sha256.hex()}"
                )
        if not opened_next:
            with self.phases.timing("ledger"):
                self.network.publisher.close_round(task_id, round_no)

    def evaluate(self, round_no: int, model: GlobalModel, at: float | None = None) -> Evaluation:
        """Quality of a global model on the round's held-out evaluation set, and the target.

        The set holds the held-out windows (no worker trains on them) of every
        stream's last ``[data] eval_slots`` slots before ``at`` (simulated
        seconds), topped up per stream with earlier ones so that each holds
        both classes where it can (:meth:`aoichain.fl.HeldOut.at`). The loop
        passes the time the round's model exists, when the last update it
        waits for was served (so no cache holds a later record); the default
        is the round's request time. The target is judged on it
        (:func:`aoichain.fl.judge_target`). Before round 0 has trained, this
        scores the untrained model: the baseline every later round is compared with.
        """
        data_cfg, target = self.config.data, self.config.task.target
        with self.phases.timing("evaluating"):
            scale = self.prepared.time_scale
            when = self.slot_of(round_no) * self.market.t if at is None else at
            now = when * scale
            span = data_cfg.eval_slots * self.market.t * scale
            held = self.prepared.held_out
            if held is None:  # a Prepared built without a held-out set: the streams' records
                parts = [
                    make_windows(s.window(now - span, now), self.spec.window, stride=4)
                    for s in self.prepared.streams
                ]
                data = concat_datasets(parts)
                per_stream = {
                    s.name: (int(p.y.sum()), len(p) - int(p.y.sum()))
                    for s, p in zip(self.prepared.streams, parts, strict=True)
                }
            else:
                each = max(1, math.ceil(data_cfg.eval_min_windows / len(held.names)))
                chosen = held.at(now, span, each)
                data, per_stream = chosen.data, chosen.per_stream
            metrics = evaluate(self.spec, model.blob, data)
        verdict = judge_target(
            target.metric,
            target.value,
            metrics.value(target.metric),
            positives=metrics.positives,
            negatives=metrics.negatives,
            min_each=data_cfg.eval_min_windows,
        )
        return Evaluation(
            **vars(metrics),
            target=verdict,
            at=now,
            per_stream=per_stream,
            without_anomalies=tuple(k for k, (pos, _) in per_stream.items() if pos == 0),
        )

    # -- payment ------------------------------------------------------------------------

    def pay(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> Payout:
        """The publisher finishes the task; each worker claims its pay with its ticket;
        the publisher reclaims the rest.

        Checks that every claim pays exactly what this run's own accounting
        credited (``credited``: wei per worker), that every balance moved by
        exactly what was paid (less gas), and that escrow = paid + reclaimed.
        """
        publisher, rounds = self.network.publisher, self.config.task.rounds
        with self.phases.timing("ledger"):
            publisher.finish(task_id)
            paid = [0] * len(self.workers)
            for w in self.workers:
                if credited[w.index] == 0:
                    continue
                party = self.party(w)
                before = party.balance()
                got, fee = party.claim(tickets[w.index], rounds)
                after = party.balance()
                if got != credited[w.index] or after - before != got - fee:
                    raise IntegrityError(
                        f"worker {w.label}: claimed {got} wei (balance moved {after - before}, "
                        f"gas {fee}), the run credited {credited[w.index]}"
                    )
                paid[w.index] = got
            budget, earned = self.prepared.task.escrow_wei, sum(credited)
            # The contract refuses an empty reclaim; with every worker at the top reward
            # for every round (e.g. flat) the whole escrow was earned.
            reclaimed = publisher.reclaim(task_id) if budget > earned else 0
        if reclaimed != budget - earned:
            raise IntegrityError(
                f"publisher reclaimed {reclaimed} wei, expected escrow {budget} less "
                f"{earned} earned"
            )
        checks = [
            f"{sum(1 for p in paid if p)} claims pay exactly what the run credited",
            f"escrow {budget} wei = earned {earned} + reclaimed {reclaimed}",
        ]
        return Payout(paid, reclaimed, checks)

    def settle(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> str:
        """After a failure: close the open round, finish the task, let workers claim what
        they earned, reclaim the rest. Returns what was done, for the error message."""
        publisher = self.network.publisher
        state = publisher.task(task_id)
        if state["round_open"]:
            publisher.close_round(task_id, int(state["rounds_opened"]) - 1)
        if not state["finished"]:
            publisher.finish(task_id)
        claimed = 0
        for w in self.workers:
            ticket = tickets.get(w.index)
            if ticket is not None and self.party(w).claimable(ticket) > 0:
                claimed += self.party(w).claim(ticket, self.config.task.rounds).amount
        state = publisher.task(task_id)
        left = int(state["escrow"]) - int(state["credited"]) - int(state["reclaimed"])
        reclaimed = publisher.reclaim(task_id) if left > 0 else 0
        return (
            f"the task was finished; workers claimed {claimed} wei they had earned and the "
            f"publisher reclaimed {reclaimed} wei of unearned escrow"
        )

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> TaskOutcome:
        """Publish, allocate, then per round: open, serve, train, upload, relay,
        aggregate, evaluate, record, announce; then pay. The one place values flow.

        A round's record opens the next round too, unless the task stops there
        (its last round, or the target reached), so one message a round carries
        the global model down and the next round's opening.

        Raises
        ------
        RunAborted
            If a round fails after the task was published; the task is
            settled first (:meth:`settle`) and the message says how.
        """
        rounds, m = self.config.task.rounds, len(self.workers)
        reward = self.prepared.task.menu_reward_wei_per_round
        model = self.initial_model()
        initial = self.evaluate(0, model)
        task_id = self.publish()
        credited = [0] * m
        tickets: dict[int, Ticket] = {}
        log = RequestLog.empty(rounds, m)
        history: list[RoundMetrics] = []
        rejections: list[Rejection] = []
        receipts = self.network.receipts
        try:
            enrolled = self.allocate(task_id)
            tickets = enrolled.tickets
            opened = False
            for r in range(rounds):
                before, n_receipts = self.phases.snapshot(), len(receipts)
                if not opened:
                    self.open_round(task_id, r)
                requests = self.serve(r, enrolled.workers)
                # The round's model exists once the last update it waits for was served.
                served = self.slot_of(r) * self.market.t + max(
                    (q.latency for q in requests), default=0.0
                )
                for req in requests:
                    log.aoi[r, req.worker.index] = req.aoi
                    log.latency[r, req.worker.index] = req.latency
                trained = self.train(r, model, requests)
                uploaded = self.upload(task_id, r, trained)
                relayed = self.relay(task_id, r)
                aggregated = self.aggregate(task_id, r, relayed.attested, model)
                metrics = self.evaluate(r, aggregated.model, at=served)
                stop = metrics.target is not None and metrics.target.reached
                opened = not stop and r + 1 < rounds
                self.record(task_id, r, aggregated, open_next=opened)
                self.announce(task_id, r, aggregated.model, enrolled.workers, opened_next=opened)
                model = aggregated.model
                for worker, _record in aggregated.included:
                    log.delivered[r, worker.index] = True
                    credited[worker.index] += reward[worker.item]
                lost = _not_attested(r, uploaded.recorded, relayed.attested)
                round_rejections = (
                    uploaded.rejections + relayed.rejections + aggregated.rejections + lost
                )
                rejections += round_rejections
                spent, new = self.phases.snapshot(), receipts[n_receipts:]
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
                    precision=metrics.precision,
                    recall=metrics.recall,
                    pr_auc=metrics.pr_auc,
                    balanced_accuracy=metrics.balanced_accuracy,
                    base_rate=metrics.base_rate,
                    eval_windows=metrics.samples,
                    tp=metrics.tp,
                    fp=metrics.fp,
                    tn=metrics.tn,
                    fn=metrics.fn,
                    target_judged=metrics.target is not None and metrics.target.judged,
                    target_reached=stop,
                    streams_without_anomalies=" ".join(metrics.without_anomalies),
                )
                history.append(row)
                if self.on_round is not None:
                    self.on_round(row)
                if stop:
                    break
            payout = self.pay(task_id, tickets, credited)
        except Exception as exc:
            round_no = len(history)
            try:
                settled = self.settle(task_id, tickets, credited)
            except Exception as again:
                settled = f"settling the task failed too ({type(again).__name__}: {again})"
            raise RunAborted(
                f"round {round_no} of task {task_id} failed: {exc}; {settled}"
            ) from exc
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
            tickets=tickets,
            rejections=rejections,
            phases=self.phases,
        )


def _not_attested(
    round_no: int, recorded: Sequence[Submission], attested: Sequence[UpdateRecord]
) -> list[Rejection]:
    """Updates recorded on a subchain that never reached M attested (e.g. a lying relayer)."""
    seen = {bytes(a.update_sha256) for a in attested}
    return [
        Rejection(
            round_no, s.trained.worker.label, "relay", "update not attested on the main chain"
        )
        for s in recorded
        if s.sha256 not in seen
    ]


def mean_finite(values: np.ndarray) -> float:
    """Mean of the finite entries (nan when there are none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan

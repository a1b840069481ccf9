"""One federated task from publish to payment: the paper's steps a–f.

:class:`FederatedTask` is a template method, as Flower's ``Strategy.start``:
:meth:`FederatedTask.run` is the one loop, and each step of Fig. 1 is a named
method that takes what it needs and returns what it produces (``publish``,
``allocate``, ``open_round``, ``serve``, ``train``, ``upload``, ``relay``,
``aggregate``, ``evaluate``, ``record``, ``announce``, ``pay``; the values
are in :mod:`aoichain.workflow.steps`). Only :meth:`~FederatedTask.run`
threads values from step to step, so a subclass may override any step
without knowing what the others keep.

Every step that sends a transaction first reads whether the chains already
hold its effect, so a run resumed from its journal
(:mod:`aoichain.workflow.journal`) re-sends only what is missing.

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
from dataclasses import asdict

import numpy as np

from aoichain.chain import (
    ChainRejected,
    ChainUnavailable,
    Included,
    RoundRecords,
    Ticket,
    UpdateRecord,
)
from aoichain.chain import Worker as ChainWorker
from aoichain.chain.client import send_together
from aoichain.errors import AoichainError, IntegrityError, Outage
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
from aoichain.workflow.journal import Journal, RunState, load_state, ticket_json
from aoichain.workflow.payment import PaymentSteps
from aoichain.workflow.requests import answer_request
from aoichain.workflow.steps import (
    Aggregated,
    Enrolled,
    Evaluation,
    GlobalModel,
    Parties,
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


class RunInterrupted(Outage):
    """A chain's node went down mid-run; the task waits in the run folder's journal, to be
    resumed (``aoichain run --resume``) or settled (``aoichain recover``)."""


class FederatedTask(PaymentSteps):
    """The paper's workflow over the parties of a network, a model store and sensor streams.

    Parameters
    ----------
    prepared : Prepared
        The validated config and plug-ins, the menu, the workers (physical
        first, then their twins, with their private types, items and
        streams), the nodes' full streams (evaluation reads their current
        records), the model spec, the clock's scale and the task as posted on M.
    network : Parties
        The chains' parties (a started :class:`aoichain.chain.Network`, or an
        engine's own, see :class:`aoichain.workflow.steps.Parties`).
    store : ModelStore
        The content-addressed store for update and global blobs.
    on_round : callable, optional
        Called with each round's :class:`RoundMetrics` (progress display).
    journal : Journal, optional
        Where the run writes what it has done as it goes; a journal that
        already holds steps is resumed from.
    """

    def __init__(
        self,
        prepared: Prepared,
        network: Parties,
        store: ModelStore,
        on_round: Callable[[RoundMetrics], None] | None = None,
        journal: Journal | None = None,
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
        self.journal = journal
        self.phases = Phases()
        #: Workers left out before the first round, by index, and why: an engine whose
        #: workers run elsewhere fills it (no worker answered as this one, or it did not
        #: answer its enrolment). They are never admitted, asked or paid.
        self.absent: dict[int, str] = {}

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
        that took an item (a ticket naming its item and index) and the worker enrols
        (workers the subchain already holds are not sent again). A worker that does not
        answer its enrolment joins :attr:`absent` and its ticket is dropped: it is never
        asked again."""
        with self.phases.timing("relaying"):
            self.network.relayer.relay_task(task_id)
        with self.phases.timing("ledger"):
            tickets = self.admit(task_id)
            self.absent.update(self.enrol(task_id, tickets))
        tickets = {i: t for i, t in tickets.items() if i not in self.absent}
        return Enrolled([w for w in self.workers if w.index in tickets], tickets)

    def enrol(self, task_id: int, tickets: dict[int, Ticket]) -> dict[int, str]:
        """Each admitted worker enrols on its own subchain with its ticket (each signs its
        own enrolment; they land together); a worker already enrolled is not sent again.
        The workers that did not answer, by index, and why (in process: none).

        Raises
        ------
        IntegrityError
            If a subchain refuses an enrolment.
        """
        admitted = [w for w in self.workers if w.index in tickets]
        missing = [w for w in admitted if not self.party(w).enrolled(task_id)]
        results = send_together([self.party(w).enrol_tx(tickets[w.index]) for w in missing])
        for w, result in zip(missing, results, strict=True):
            if isinstance(result, ChainRejected):
                raise IntegrityError(f"worker {w.label} could not enrol: {result.reason}")
        return {}

    def admit(self, task_id: int) -> dict[int, Ticket]:
        """The publisher's ticket for each worker that took an item, by worker index: it
        names the worker's item and an index in that item's range, in worker order (the
        same tickets every time it is asked; an :attr:`absent` worker keeps its index but
        gets no ticket)."""
        stride = self.prepared.task.stride
        taken: dict[int, int] = {}
        tickets = {}
        for w in self.workers:
            if w.item < 0:
                continue
            index = w.item * stride + taken.get(w.item, 0)
            taken[w.item] = taken.get(w.item, 0) + 1
            if w.index in self.absent:
                continue
            party = self.party(w)
            tickets[w.index] = self.network.publisher.admit(
                task_id, party.address, party.subchain, w.item, index
            )
        return tickets

    # -- steps c to f, once per round -----------------------------------------------------

    def slot_of(self, round_no: int) -> int:
        """The global slot at whose start round ``round_no``'s request arrives."""
        return round_no + self.prepared.warmup_slots

    def open_round(self, task_id: int, round_no: int) -> None:
        """The publisher opens the round on M (unless M has it open); the opening is
        relayed to every subchain."""
        with self.phases.timing("ledger"):
            if self.network.publisher.task(task_id)["rounds_opened"] <= round_no:
                self.network.publisher.open_round(task_id, round_no)
        with self.phases.timing("relaying"):
            self.network.relayer.relay_round_open(task_id, round_no)

    def serve(self, round_no: int, workers: Sequence[Worker], attempt: int = 0) -> list[Request]:
        """Each worker answers the round's request with its cache (what it sensed last);
        a worker the fault injector drops out does not answer (``attempt`` 1: the retry)."""
        data = self.config.data
        cache_slots = data.cache_slots if data.cache == "fixed" else None
        return [
            answer_request(
                w,
                self.slot_of(round_no),
                t=float(self.market.t),
                a=float(self.market.a),
                time_scale=self.prepared.time_scale,
                window=self.spec.window,
                max_windows=self.config.train.max_windows,
                cache_slots=cache_slots,
            )
            for w in workers
            if not self.plugins.faults.drops_out(round_no, w, attempt)
        ]

    def in_time(
        self, round_no: int, requests: Sequence[Request]
    ) -> tuple[list[Request], list[Request]]:
        """The answers that came before the round's deadline (``[task] deadline_s`` simulated
        seconds after the request), and the late ones: the round closes without them."""
        deadline = self.config.task.deadline_s
        if deadline is None:
            return list(requests), []
        return [q for q in requests if q.latency <= deadline], [
            q for q in requests if q.latency > deadline
        ]

    def train(
        self, round_no: int, model: GlobalModel, requests: Sequence[Request]
    ) -> list[Trained]:
        """Step c: every worker with a non-empty cache trains the global model on it
        (in one vectorised pass, or one by one: the same bytes either way)."""
        faults = self.plugins.faults
        serving = [req for req in requests if len(req.cache)]
        caches = [faults.attack_cache(round_no, r.worker, r.cache) for r in serving]
        cfgs = [self.train_config(round_no, req.worker) for req in serving]
        with self.phases.timing("training"):
            if self.config.train.batched:
                updates = train_batch(self.spec, model.blob, caches, cfgs)
            else:
                updates = [
                    train_local(self.spec, model.blob, cache, c)
                    for cache, c in zip(caches, cfgs, strict=True)
                ]
        trained = []
        for req, update in zip(serving, updates, strict=True):
            blob = faults.attack_update(round_no, req.worker, model.blob, update.blob)
            if blob != update.blob:
                update = type(update)(blob, hashlib.sha256(blob).digest(), update.samples, math.nan)
            trained.append(Trained(req, update))
        return trained

    def train_config(self, round_no: int, worker: Worker) -> TrainConfig:
        """How ``worker`` trains in round ``round_no``: the run's settings, its own seed."""
        tc = self.config.train
        return TrainConfig(
            epochs=tc.epochs,
            batch_size=tc.batch_size,
            lr=tc.lr,
            momentum=tc.momentum,
            seed=self.config.task.seed * 1_000_003 + round_no * 1000 + worker.index,
        )

    def upload(self, task_id: int, round_no: int, trained: Sequence[Trained]) -> Uploaded:
        """Step d: each worker seals its update (task, round, its address), stores the blob
        and signs its record ``(task, round, sha256, samples, data time)`` with its own
        key for its own subchain; the records of a round go out together, as the
        workers' transactions would land in the same blocks of a real chain (a record the
        subchain already holds, from before a crash, is not sent again)."""
        submissions, txs = [], []
        already: list[Submission] = []
        tickets = self._tickets
        with self.phases.timing("ledger"):
            for item in trained:
                w = item.worker
                party = self.party(w)
                blob, sha = sealed_sha256(
                    item.update.blob, task_id=task_id, round_no=round_no, author=party.address
                )
                self.store.put(blob, expected=sha)
                self.plugins.faults.after_store(round_no, w, sha, self.store)
                if self._resuming and party.has_record(task_id, round_no, tickets[w.index].index):
                    already.append(Submission(item, sha))
                    continue
                # When the cache was sensed, in simulated seconds of the slot clock.
                data_time = round(item.request.data_time)
                txs.append(party.update_tx(task_id, round_no, sha, item.update.samples, data_time))
                submissions.append(Submission(item, sha))
            results = send_together(txs)
        recorded, rejections = list(already), []
        for submission, result in zip(submissions, results, strict=True):
            if isinstance(result, ChainRejected):
                label = submission.trained.worker.label
                rejections.append(Rejection(round_no, label, "subchain", result.reason))
            else:
                recorded.append(submission)
        return Uploaded(recorded, rejections)

    def relay(self, task_id: int, round_no: int) -> Relayed:
        """Step e: the relayer carries each subchain's round records to M (checkpoints,
        proofs, committee attestations); the publisher checks them against what M accepted
        (records M already held, carried before, are read again and checked the same way)."""
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
            publisher = self.network.publisher
            for key in set(publisher.attested(task_id, round_no)) - set(carried):
                head = relayer.view(key).head()
                records = relayer.records(key, task_id, round_no, head)
                carried[key] = RoundRecords(task_id, round_no, tuple(records))
            verified = publisher.verify_records(task_id, round_no, carried)
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
        by_address = {
            self.party(w).address.lower(): w for w in self.workers if w.index not in self.absent
        }
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
            blob = (
                aggregate(models, weights, self.plugins.aggregation, reference=model.blob)
                if models
                else model.blob
            )
            new = GlobalModel(blob, self.store.put(blob))
        return Aggregated(new, included, rejections)

    def record(
        self, task_id: int, round_no: int, aggregated: Aggregated, *, open_next: bool
    ) -> None:
        """The publisher records the global model and the included worker indices on M;
        with ``open_next``, the same transaction closes the round and opens the next
        (one message down to the subchains instead of two). A model M already holds for
        the round must be this one."""
        publisher = self.network.publisher
        with self.phases.timing("ledger"):
            held = publisher.global_model(task_id, round_no)
            if held == aggregated.model.sha256:
                return
            if held != bytes(32):
                raise IntegrityError(
                    f"the main chain holds global model {held.hex()} for round {round_no}, "
                    f"this run aggregated {aggregated.model.sha256.hex()}"
                )
            publisher.record_global_model(
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
        A round the record did not close is then closed on M."""
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
            self.close_round(task_id, round_no)

    def close_round(self, task_id: int, round_no: int) -> None:
        """The publisher closes the round on M, if it is still open."""
        publisher = self.network.publisher
        with self.phases.timing("ledger"):
            state = publisher.task(task_id)
            if state["round_open"] and state["rounds_opened"] == round_no + 1:
                publisher.close_round(task_id, round_no)

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

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> TaskOutcome:
        """Publish, allocate, then per round: open, serve, train, upload, relay,
        aggregate, evaluate, record, announce; then pay. The one place values flow.

        A round's record opens the next round too, unless the task stops there
        (its last round, the target reached, or too few updates: a round with
        fewer than ``[task] min_updates`` attested updates asks the missing
        workers once more, then stops the task; so does a run left with fewer
        enrolled workers than that, its :attr:`absent` ones noted as rejections of
        its first round). With a journal, every finished
        step is written down as it ends, and a journal that holds steps is
        resumed from: finished rounds are not played again.

        Raises
        ------
        RunAborted
            If a round fails after the task was published; the task is
            settled first (:meth:`settle`) and the message says how.
        ChainUnavailable, Outage
            If a chain's node is down past the wait (or answers nonsense):
            nothing can be settled then; the journal lets ``--resume`` (or
            ``aoichain recover``) finish the task once the node is back.
        """
        rounds, m = self.config.task.rounds, len(self.workers)
        state = load_state(self.journal, m, rounds) if self.journal else RunState()
        state.credited = state.credited or [0] * m
        log = state.log or RequestLog.empty(rounds, m)
        start = self.initial_model()
        initial = self.evaluate(0, start)
        model = start
        if state.model is not None:
            model = GlobalModel(self.store.get(state.model.sha256), state.model.sha256)
        if state.started and state.task_id is None:
            # A crash may have come between the publication and its journal line: this run's
            # publisher key posted no task but this run's.
            posted = self.network.publisher.my_tasks()
            state.task_id = posted[-1] if posted else None
        elif not state.started:
            self._write("started", workers=m, rounds=rounds)
        if state.task_id is None:
            state.task_id = self.publish()
        self._write("published", task_id=state.task_id)
        task_id = state.task_id
        self._tickets = state.tickets
        self._resuming = state.task_id is not None and bool(state.tickets)
        receipts = self.network.receipts
        try:
            enrolled = self.allocate(task_id)
            self._tickets = state.tickets = enrolled.tickets
            self._write(
                "enrolled", tickets={k: ticket_json(t) for k, t in enrolled.tickets.items()}
            )
            reward = self.prepared.task.menu_reward_wei_per_round
            label = {w.index: w.label for w in self.workers}
            # A journal whose last round did not open the next one holds a stopped task.
            first = state.next_round if state.opened or not state.history else rounds
            for r in range(first, rounds):
                before, n_receipts = self.phases.snapshot(), len(receipts)
                if not state.opened:
                    self.open_round(task_id, r)
                elif r == first and r > 0:  # resumed: a node back from an older state
                    with self.phases.timing("relaying"):  # gets the opening model again
                        self.network.relayer.relay_global_model(task_id, r - 1)
                requests, late = self.in_time(r, self.serve(r, enrolled.workers))
                trained = self.train(r, model, requests)
                uploaded = self.upload(task_id, r, trained)
                relayed = self.relay(task_id, r)
                retried = len(relayed.attested) < self.config.task.min_updates
                if retried:  # ask the workers that delivered nothing once more
                    delivered = {t.worker.index for t in trained}
                    again = [w for w in enrolled.workers if w.index not in delivered]
                    retry, late = self.in_time(r, self.serve(r, again, attempt=1))
                    requests += retry
                    more = self.upload(task_id, r, self.train(r, model, retry))
                    uploaded = Uploaded(
                        uploaded.recorded + more.recorded, uploaded.rejections + more.rejections
                    )
                    relayed = self.relay(task_id, r)
                answered = {req.worker.index for req in requests} | {q.worker.index for q in late}
                # The round's model exists once the last update it waits for was served.
                served = self.slot_of(r) * self.market.t + max(
                    (q.latency for q in requests), default=0.0
                )
                for req in requests:
                    log.aoi[r, req.worker.index] = req.aoi
                    log.latency[r, req.worker.index] = req.latency
                missed = [
                    Rejection(r, label[i], "enrolment", f"not enrolled: {why}")
                    for i, why in sorted(self.absent.items())
                    if r == first  # once, in the first round this run plays
                ] + [
                    Rejection(r, w.label, "worker", "missed the round (no answer)")
                    for w in enrolled.workers
                    if w.index not in answered
                ] + [
                    Rejection(
                        r, q.worker.label, "worker",
                        f"late: latency {q.latency:.1f} s, past the round's deadline of "
                        f"{self.config.task.deadline_s} s",
                    )
                    for q in late
                ]  # fmt: skip
                too_few = len(relayed.attested) < self.config.task.min_updates
                aggregated = (
                    Aggregated(model, [], [])
                    if too_few
                    else self.aggregate(task_id, r, relayed.attested, model)
                )
                metrics = self.evaluate(r, aggregated.model, at=served)
                reached = metrics.target is not None and metrics.target.reached
                stop = too_few or reached
                state.opened = not stop and r + 1 < rounds
                if too_few:
                    self.close_round(task_id, r)
                else:
                    self.record(task_id, r, aggregated, open_next=state.opened)
                    self.announce(
                        task_id, r, aggregated.model, enrolled.workers, opened_next=state.opened
                    )
                model = aggregated.model
                for worker, _record in aggregated.included:
                    log.delivered[r, worker.index] = True
                    state.credited[worker.index] += reward[worker.item]
                lost = _not_attested(r, uploaded.recorded, relayed.attested)
                round_rejections = (
                    missed + uploaded.rejections + relayed.rejections + aggregated.rejections + lost
                )
                if too_few:
                    round_rejections.append(
                        Rejection(
                            r, "-", "publisher",
                            f"{len(relayed.attested)} attested updates after a retry, fewer than "
                            f"min_updates = {self.config.task.min_updates}: the task stops",
                        )
                    )  # fmt: skip
                state.rejections += round_rejections
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
                    target_reached=reached,
                    streams_without_anomalies=" ".join(metrics.without_anomalies),
                )
                state.history.append(row)
                self._write_round(row, state, log, round_rejections, retried)
                if self.on_round is not None:
                    self.on_round(row)
                self._resuming = False
                if stop:
                    break
            payout = self.pay(task_id, state.tickets, state.credited)
            self._write("paid", paid=sum(payout.paid_wei), reclaimed=payout.reclaimed_wei)
            if self.journal is not None:
                self.journal.receipts(receipts)
        except (ChainUnavailable, Outage):
            raise  # a node is down: nothing can be settled now; the journal keeps the task
        except Exception as exc:
            try:
                settled = self.settle(task_id, state.tickets)
            except Exception as again:
                settled = f"settling the task failed too ({type(again).__name__}: {again})"
            raise RunAborted(
                f"round {state.next_round} of task {task_id} failed: {exc}; {settled}"
            ) from exc
        done = len(state.history)
        return TaskOutcome(
            task_id=task_id,
            rounds=state.history,
            requests=log.first(done),
            credited_wei=state.credited,
            paid_wei=payout.paid_wei,
            reclaimed_wei=payout.reclaimed_wei,
            budget_wei=self.prepared.task.escrow_wei,
            balance_checks=payout.checks,
            global_sha256=model.sha256.hex(),
            initial=initial,
            tickets=state.tickets,
            rejections=state.rejections,
            phases=self.phases,
        )

    # -- the journal --------------------------------------------------------------------

    _tickets: dict[int, Ticket]
    _resuming: bool = False

    def _write(self, event: str, **data: object) -> None:
        if self.journal is not None:
            self.journal.append(event, **data)

    def _write_round(
        self,
        row: RoundMetrics,
        state: RunState,
        log: RequestLog,
        rejections: list[Rejection],
        retried: bool,
    ) -> None:
        if self.journal is None:
            return
        r = row.round
        self.journal.append(
            "round",
            row=asdict(row),
            credited=state.credited,
            aoi=log.aoi[r].tolist(),
            latency=log.latency[r].tolist(),
            delivered=log.delivered[r].tolist(),
            rejections=[asdict(x) for x in rejections],
            opened_next=state.opened,
            retried=retried,
        )
        self.journal.round_files(row, rejections)
        self.journal.receipts(self.network.receipts)


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

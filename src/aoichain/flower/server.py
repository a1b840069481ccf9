"""The ServerApp's side: the publisher (and aggregator) and the relayer, driving the loop.

:class:`FlowerTask` is :class:`aoichain.workflow.FederatedTask` with the steps
a worker takes on its own machine sent as Flower messages; the loop,
:meth:`~aoichain.workflow.FederatedTask.run`, is the same one:

=============  ================================================================
``enrol``      each admitted worker gets its ticket and enrols itself (``enrol``)
``serve``      each worker gets the round's request and the global model; it
               checks the model on its chain, serves the request from its
               cache, trains, seals and records its update, and replies with
               the bytes (``train``: one message a round, as Flower starts a
               process per message)
``train``      the replies' updates (what ``serve`` brought back)
``upload``     the bytes that arrived go to the aggregator's store; each
               worker's own receipt joins the run's
``announce``   as in process (the relayer carries the hash down); the bytes
               travel with the next request
``claim``      each worker checks the last global model and claims its own pay
               (``finish``)
=============  ================================================================

Publishing, admission, relaying, aggregation (exactly the records M
attested whose bytes arrived and hash right, weighted by the samples the
chain recorded), evaluation, recording and the publisher's checks are the
base class's, unchanged. Validators and committee members answer the
relayer from their own processes (:mod:`aoichain.chain.remote`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aoichain.chain import ChainClient, Deployment, Publisher, Receipt, Relayer, Ticket
from aoichain.chain import Worker as ChainWorker
from aoichain.chain.keys import Signer
from aoichain.chain.wire import ticket_json
from aoichain.errors import IntegrityError, InvalidInput
from aoichain.fl import Dataset, LocalUpdate, ModelStore
from aoichain.flower.errors import FederationDown, FederationError
from aoichain.flower.messages import content, read
from aoichain.workflow import (
    Enrolled,
    FederatedTask,
    GlobalModel,
    Prepared,
    Rejection,
    Request,
    RoundMetrics,
    Submission,
    Trained,
    Uploaded,
    Worker,
)
from aoichain.workflow.faults import ConfiguredFaults, FaultInjector
from aoichain.workflow.journal import Journal, load_state
from aoichain.workflow.steps import Claimed, Payout
from aoichain.workflow.updates import unseal

if TYPE_CHECKING:
    from flwr.app import Message
    from flwr.serverapp import Grid

    from aoichain.flower.settings import ServerSettings

#: Seconds between two pulls of the replies a step waits for.
POLL_S = 0.2
#: Flower's error codes (``flwr.common.constant.ErrorCode``) that mean no answer came:
#: the message or its reply expired (3, 4), the node went offline (5: it missed its
#: heartbeats), the ClientApp process died (8).
_SILENT = frozenset({3, 4, 5, 8})
#: A worker's reply: its values and the bytes it sent, or why there is none.
Reply = tuple[dict[str, Any], bytes | None]


class NoReply(str):
    """Why a worker did not answer at all (its SuperNode down, or no reply in time), as
    opposed to an answer that is an error: a worker that does not answer a round's
    request missed the round, as a dropout."""


class _AddressOnly(Signer):
    """A worker's address as the publisher knows it: it can read, never sign."""

    def __init__(self, address: str):
        self.address = address
        self.role = "remote worker"

    def sign_digest(self, digest: bytes) -> Any:
        raise PermissionError(f"{self.address}: the publisher holds no worker's key")

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        raise PermissionError(f"{self.address}: the publisher holds no worker's key")


@dataclass
class ServerParties:
    """The parties the ServerApp acts through (a :class:`aoichain.workflow.task.Parties`).

    The publisher and the relayer hold their own keys; each worker is its
    address on its subchain, read through the publisher's own views.
    """

    publisher: Publisher
    relayer: Relayer
    deployment: Deployment
    clients: Mapping[str, ChainClient]
    receipts: list[Receipt]
    workers: dict[str, list[ChainWorker | None]] = field(default_factory=dict)

    def worker(self, space: str, index: int) -> ChainWorker:
        """Worker ``index`` of ``space``, read-only.

        Raises
        ------
        KeyError
            If no SuperNode introduced itself as that worker.
        """
        row = self.workers.get(space, [])
        party = row[index] if index < len(row) else None
        if party is None:
            raise KeyError(f"no SuperNode is worker {space}{index}")
        return party

    def watch(self, space: str, index: int, address: str, subchain: str) -> ChainWorker:
        """Add worker ``index`` of ``space`` (its address on ``subchain``); it is returned."""
        party = ChainWorker(
            _AddressOnly(address),
            subchain,
            self.clients[subchain],
            self.clients["M"],
            self.deployment,
        )
        row = self.workers.setdefault(space, [])
        row.extend([None] * (index + 1 - len(row)))
        row[index] = party
        return party


@dataclass
class Federation:
    """The SuperNodes as the ServerApp reaches them: Flower node ids by worker index.

    Parameters
    ----------
    grid : Grid
        Flower's grid.
    reply_s : float
        Longest wait for the replies of one step, seconds.
    """

    grid: Grid
    reply_s: float
    node_of: dict[int, int] = field(default_factory=dict)

    def wait_for(self, count: int, wait_s: float) -> list[int]:
        """The node ids once ``count`` SuperNodes are connected, or those connected after
        ``wait_s`` seconds (a SuperNode that is down at the start is a dropout: its worker
        is left out, see :func:`introduce`)."""
        deadline = time.monotonic() + wait_s
        while True:
            ids = sorted(self._link(self.grid.get_node_ids))
            if len(ids) >= count or time.monotonic() > deadline:
                return ids
            time.sleep(0.5)

    def ask(
        self,
        step: str,
        questions: Mapping[int, tuple[dict[str, Any], bytes | None]],
        *,
        message_type: str = "query",
        nodes: Mapping[int, int] | None = None,
    ) -> dict[int, Reply | str]:
        """Send each worker (by index) its question; its reply, or why there is none."""
        from flwr.app import Message

        where = dict(nodes if nodes is not None else self.node_of)
        online = set(self._link(self.grid.get_node_ids))
        out: dict[int, Reply | str] = {
            i: NoReply(
                f"no reply within {self.reply_s:g} s"
                if where[i] in online
                else "its SuperNode is not connected"
            )
            for i in questions
        }
        messages = [
            Message(
                content=content(step, values, blob),
                dst_node_id=where[i],
                message_type=message_type,
            )
            for i, (values, blob) in questions.items()
            if where[i] in online
        ]
        by_node = {node: i for i, node in where.items()}
        for reply in self._exchange(messages) if messages else []:
            i = by_node.get(reply.metadata.src_node_id)
            if i is None:
                continue
            if reply.has_error():
                # Flower's own error replies: its node went offline (no heartbeat), or the
                # ClientApp process died; any other is the ClientApp's.
                why = f"the ClientApp failed: {reply.error.reason}"
                out[i] = NoReply(why) if reply.error.code in _SILENT else why
                continue
            _, values, blob = read(reply)
            out[i] = str(values["error"]) if "error" in values else (values, blob)
        return out

    def _link(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the SuperLink; a failure there stops the run, resumable.

        Raises
        ------
        FederationDown
            If the SuperLink does not answer (Flower retries first).
        """
        try:
            return call(*args)
        except Exception as exc:
            raise FederationDown(
                f"the SuperLink stopped answering the ServerApp ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]})"
            ) from exc

    def _exchange(self, messages: list[Message]) -> list[Message]:
        """Push ``messages``; pull their replies every :data:`POLL_S` until all came or
        ``reply_s`` passed (Flower's ``send_and_receive`` pulls every 3 s)."""
        waiting = set(self._link(self.grid.push_messages, messages))
        deadline = time.monotonic() + self.reply_s
        replies: list[Message] = []
        while waiting:
            got = list(self._link(self.grid.pull_messages, waiting))
            replies += got
            waiting -= {m.metadata.reply_to_message_id for m in got}
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        return replies


def check_injector(faults: FaultInjector) -> None:
    """Refuse a fault injector that would act where the flower engine cannot call it.

    ``[faults] byzantine`` passes: on Flower the attackers' own node configs carry
    the attack (:func:`aoichain.flower.settings.worker_settings` writes it there for
    the workers :func:`~aoichain.workflow.byzantine.choose_byzantine` picks), and the
    ServerApp only names them in the run's outputs.

    Raises
    ------
    InvalidInput
        If a plug-in acts at ``attack_cache`` or ``attack_update`` (a worker trains on
        its own machine).
    """
    acting = []
    for point in ("attack_cache", "attack_update"):
        owner = next(c for c in type(faults).__mro__ if point in c.__dict__)
        if owner not in (FaultInjector, ConfiguredFaults):
            acting.append(point)
    if acting:
        raise InvalidInput(
            f"The fault injector {type(faults).__name__} acts at {', '.join(acting)}, which "
            f"the flower engine cannot call: each worker trains on its own machine (give a "
            f"worker its faults in its node config)."
        )


class FlowerTask(FederatedTask):
    """The federated task with its workers on Flower SuperNodes (see the module docstring).

    Parameters
    ----------
    prepared, network, store, on_round, journal
        As :class:`~aoichain.workflow.FederatedTask`; ``prepared.workers`` are
        the workers as the SuperNodes introduced themselves. A journal that
        holds steps is resumed from, as in process.
    federation : Federation
        Which SuperNode each worker is.
    absent : mapping, optional
        The workers no SuperNode introduced itself as (by index), and why: they
        are left out (see :attr:`~aoichain.workflow.FederatedTask.absent`).
    """

    #: Written in the journal's ``started`` line: ``aoichain run --resume`` resumes a run
    #: on the engine it started on.
    engine = "flower"

    def __init__(
        self,
        prepared: Prepared,
        network: ServerParties,
        store: ModelStore,
        on_round: Callable[[RoundMetrics], None] | None = None,
        journal: Journal | None = None,
        *,
        federation: Federation,
        absent: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__(prepared, network, store, on_round, journal)
        check_injector(self.plugins.faults)
        self.parties = network
        self.federation = federation
        self.absent.update(absent or {})
        self._task_id = -1
        self._global: GlobalModel | None = None
        self._global_round = -1
        self._answers: dict[int, Reply] = {}
        self._lost: list[Rejection] = []
        self._unverified: list[str] = []
        #: The last round's message: its wall seconds, and each worker's own timing.
        self.timings: dict[str, Any] = {}

    def _by_index(self) -> dict[int, Worker]:
        return {w.index: w for w in self.workers}

    def _take_receipts(self, values: dict[str, Any]) -> None:
        self.parties.receipts.extend(Receipt(**r) for r in values.get("receipts", []))

    # -- what the loop threads, remembered for the messages ---------------------------

    def initial_model(self) -> GlobalModel:
        """The untrained model; on a resumed run, the model the journal's last round left
        is the one the next request carries."""
        model = super().initial_model()
        self._global = model
        if self.journal is not None:
            state = load_state(self.journal, len(self.workers), self.config.task.rounds)
            if state.model is not None:
                sha = state.model.sha256
                self._global = GlobalModel(self.store.get(sha), sha)
                self._global_round = state.next_round - 1
        return model

    def allocate(self, task_id: int) -> Enrolled:
        self._task_id = task_id  # published now, or read back from the journal
        return super().allocate(task_id)

    def _write(self, event: str, **data: object) -> None:
        if event == "started":
            data["engine"] = self.engine
        super()._write(event, **data)

    def announce(
        self,
        task_id: int,
        round_no: int,
        model: GlobalModel,
        workers: Sequence[Worker],
        *,
        opened_next: bool,
    ) -> None:
        super().announce(task_id, round_no, model, workers, opened_next=opened_next)
        self._global, self._global_round = model, round_no

    # -- steps on the workers' machines -----------------------------------------------

    def enrol(self, task_id: int, tickets: dict[int, Ticket]) -> dict[int, str]:
        """Each admitted worker not yet enrolled enrols itself with its ticket (one message
        each). A worker that does not answer (its SuperNode down, no reply in time, its
        ClientApp failed) is not enrolled: those, by index, and why.

        Raises
        ------
        IntegrityError
            If a subchain refused an enrolment.
        """
        workers = self._by_index()
        missing = {i: t for i, t in tickets.items() if not self.party(workers[i]).enrolled(task_id)}
        replies = self.federation.ask(
            "enrol", {i: ({"ticket": ticket_json(t)}, None) for i, t in missing.items()}
        )
        silent = {}
        for i, reply in replies.items():
            label = workers[i].label
            if isinstance(reply, str):
                silent[i] = f"no answer at enrolment ({reply})"
                continue
            values, _ = reply
            self._take_receipts(values)
            if "rejected" in values:
                raise IntegrityError(f"worker {label} could not enrol: {values['rejected']}")
        return silent

    def serve(self, round_no: int, workers: Sequence[Worker], attempt: int = 0) -> list[Request]:
        """Send every worker the round's request with the global model (a worker the fault
        injector drops out is not asked); each one serves it, trains and records on its
        own machine, unless its answer would come after the round's deadline. Their
        answers' freshness (AoI, latency, data time); the cache stays with the worker."""
        assert self._global is not None
        asked = [w for w in workers if not self.plugins.faults.drops_out(round_no, w, attempt)]
        contract, market, tc = self.prepared.contract, self.market, self.config.train
        data = self.config.data
        common = {
            "task_id": self._task_id,
            "round": round_no,
            "slot": self.slot_of(round_no),
            "t": float(market.t),
            "a": float(market.a),
            "time_scale": self.prepared.time_scale,
            "max_windows": tc.max_windows,
            "spec": self.spec.canonical_json().decode(),
            "seed": self.config.task.seed,
            "menu_c": [float(c) for c in contract.c],
            "deadline_s": self.config.task.deadline_s,
            "cache_slots": data.cache_slots if data.cache == "fixed" else None,
        }
        questions = {
            w.index: (
                {
                    **common,
                    "train": self.train_config(round_no, w).model_dump(),
                    # its ticket's index: a worker whose subchain holds its record of the
                    # round already (a resumed run) does not send it again
                    "index": self._tickets[w.index].index,
                },
                self._global.blob,
            )
            for w in asked
        }
        started = time.perf_counter()
        with self.phases.timing("training"):
            replies = self.federation.ask("train", questions, message_type="train")
        self.timings = {"round_trip_s": time.perf_counter() - started}
        self._answers, self._lost = {}, []
        empty = Dataset.empty(self.spec.window, self.spec.n_sensors)
        requests = []
        for w in asked:
            reply = replies[w.index]
            if isinstance(reply, NoReply):
                # no answer: the loop records it as a missed round (a dropout)
                self.timings[w.label] = {"no_reply": str(reply)}
                continue
            if isinstance(reply, str):
                self._lost.append(Rejection(round_no, w.label, "worker", reply))
                continue
            values, _ = reply
            self._answers[w.index] = reply
            self.timings[w.label] = values.get("timing", {})
            requests.append(
                Request(
                    w,
                    empty,
                    float(values["aoi"]),
                    float(values["latency"]),
                    float(values["data_time"]),
                )
            )
        return requests

    def train(
        self, round_no: int, model: GlobalModel, requests: Sequence[Request]
    ) -> list[Trained]:
        """The updates the workers trained (in :meth:`serve`'s messages)."""
        trained = []
        for req in requests:
            values, blob = self._answers[req.worker.index]
            if int(values["samples"]) == 0:
                continue
            try:
                weights = unseal(blob).model if blob is not None else b""
            except IntegrityError:
                weights = blob or b""
            update = LocalUpdate(
                weights,
                hashlib.sha256(weights).digest(),
                int(values["samples"]),
                float(values.get("loss", math.nan)),
            )
            trained.append(Trained(req, update))
        return trained

    def upload(self, task_id: int, round_no: int, trained: Sequence[Trained]) -> Uploaded:
        """Each worker's sealed bytes go to the store under their own hash (bytes that do
        not hash to the worker's record are then never found by it); each worker's record
        was signed and sent from its own machine, and its receipt joins the run's."""
        recorded, rejections = [], list(self._lost)
        with self.phases.timing("ledger"):
            for item in trained:
                values, blob = self._answers[item.worker.index]
                self._take_receipts(values)
                if "rejected" in values:
                    rejections.append(
                        Rejection(round_no, item.worker.label, "subchain", str(values["rejected"]))
                    )
                    continue
                if blob is not None:
                    sha = self.store.put(blob)
                    self.plugins.faults.after_store(round_no, item.worker, sha, self.store)
                recorded.append(Submission(item, bytes.fromhex(str(values["sha256"]))))
        return Uploaded(recorded, rejections)

    def claim(self, tickets: dict[int, Ticket], owed: Sequence[int]) -> dict[int, Claimed]:
        """Every enrolled worker gets the last global model, checks it against its subchain
        and claims what M says it is owed (one message each). Balances are read by the
        publisher before and after, on its own view of M."""
        assert self._global is not None
        workers = self._by_index()
        parties = {i: self.party(workers[i]) for i in tickets}
        before = {i: p.balance() for i, p in parties.items()}
        values = {
            "task_id": self._task_id,
            "round": self._global_round,
            "until_round": self.config.task.rounds,
        }
        # The ticket goes along (it is public): a worker on a new SuperNode (a resumed
        # run) does not hold the one it enrolled with.
        blob = self._global.blob
        replies = self.federation.ask(
            "finish", {i: ({**values, "ticket": ticket_json(t)}, blob) for i, t in tickets.items()}
        )
        claims: dict[int, Claimed] = {}
        for i, reply in replies.items():
            label = workers[i].label
            if isinstance(reply, str):
                self._unverified.append(f"{label} ({reply})")
                continue
            answer, _ = reply
            self._take_receipts(answer)
            if answer.get("verified") is False:
                self._unverified.append(f"{label} ({answer.get('why', '')})")
            if answer.get("claimed"):
                moved = parties[i].balance() - before[i]
                claims[i] = Claimed(int(answer["amount"]), int(answer["fee"]), moved)
        return claims

    def pay(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> Payout:
        payout = super().pay(task_id, tickets, credited)
        if self._unverified:
            note = (
                f"{len(self._unverified)} workers did not confirm the last global model: "
                + "; ".join(self._unverified)
            )
        else:
            note = f"{len(tickets)} workers checked the last global model against their subchain"
        return dataclasses.replace(payout, checks=[*payout.checks, note])


# ------------------------------------------------------------------------ the ServerApp


def introduce(
    federation: Federation, prepared: Prepared, node_ids: Sequence[int]
) -> tuple[list[tuple[Worker, int, str]], dict[int, str]]:
    """Ask every SuperNode who it is: each worker (as the publisher sees it), its node
    id and its subchain, in the run's worker order (IIoT nodes, then their twins); and
    the workers no SuperNode answered as (by index), and why: they are left out.

    Raises
    ------
    FederationError
        If a SuperNode claims to be a worker the run does not have, or one another
        SuperNode claims too.
    """
    probe = dict(enumerate(node_ids))
    replies = federation.ask("hello", {i: ({}, None) for i in probe}, nodes=probe)
    n = prepared.config.workers.physical
    contract = prepared.contract
    found: dict[int, tuple[Worker, int, str]] = {}
    silent = []
    for i, reply in replies.items():
        if isinstance(reply, str):
            silent.append(f"SuperNode {probe[i]}: {reply}")
            continue
        v, _ = reply
        space, node, item = str(v["space"]), int(v["node"]), int(v["item"])
        if space not in ("P", "V") or not 0 <= node < n or not -1 <= item < len(contract.f):
            raise FederationError(
                f"SuperNode {probe[i]} claims to be worker {space}{node} with item {item}: "
                f"the run has nodes 0 to {n - 1} and {len(contract.f)} items"
            )
        index = node if space == "P" else n + node
        if index in found:
            raise FederationError(f"two SuperNodes claim to be worker {space}{node}")
        worker = Worker(
            index=index,
            space=space,
            space_index=node,
            node=node,
            type_index=int(v["type"]),
            gamma=float(v["gamma"]),
            item=item,
            c=float(contract.c[item]) if item >= 0 else math.nan,
            phase=int(v["phase"]),
            streams=(),
            address=str(v["address"]),
        )
        found[index] = (worker, probe[i], str(v["subchain"]))
    why = f"{len(probe)} SuperNodes connected, {len(found)} said who they are"
    if silent:
        why += f"; not: {'; '.join(silent)}"
    absent = {i: f"no answer at enrolment ({why})" for i in range(2 * n) if i not in found}
    return [found[i] for i in sorted(found)], absent


def run_server(grid: Grid, run_config: Mapping[str, Any]) -> Path:
    """The ServerApp's main: the whole task, then the run folder; its path.

    The run folder's journal is written as the task goes; with the settings'
    ``resume`` the task of that journal is continued (see
    :func:`aoichain.workflow.resume_run`). Before the ServerApp fails it notes in
    ``progress.jsonl`` why, and whether the task waits in the journal
    (``resumable``: a chain or the SuperLink stopped answering) or was settled.

    Raises
    ------
    FederationError, RunAborted, AoichainError
        Flower marks the run failed and keeps the message.
    """
    from aoichain.errors import Outage
    from aoichain.flower.settings import ServerSettings

    settings = ServerSettings.from_run_config(run_config)
    out = Path(settings.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = out / "progress.jsonl"
    started = time.monotonic()

    def note(event: str, **values: Any) -> None:
        line = {"event": event, "seconds": time.monotonic() - started, **values}
        with progress.open("a") as fh:
            fh.write(json.dumps(line) + "\n")

    try:
        return _serve(grid, settings, out, note)
    except Exception as exc:
        note("failed", reason=" ".join(str(exc).split()), resumable=isinstance(exc, Outage))
        raise


def _serve(grid: Grid, settings: ServerSettings, out: Path, note: Callable[..., None]) -> Path:
    """:func:`run_server`'s work, once its settings are read."""
    from aoichain.chain.keys import keystore_password, read_keystore
    from aoichain.chain.remote import read_deployment, read_verifiers, remote_verifiers
    from aoichain.chain.views import http_view
    from aoichain.report.run_report import write_run_report
    from aoichain.workflow import RunResult, config_to_toml, load_run_config, prepare
    from aoichain.workflow.outputs import write_run_folder

    config = load_run_config(settings.config)
    prepared = prepare(config)
    journal = Journal(out)
    if not settings.resume:
        journal.clear()
        (out / "config.toml").write_text(config_to_toml(config.with_absolute_paths()))
    deployment = read_deployment(settings.deployments)
    password = keystore_password(settings.password_file or None)
    publisher_key = read_keystore(settings.publisher_key, password)
    relayer_key = read_keystore(settings.relayer_key, password)
    receipts: list[Receipt] = []

    def clients(label: str) -> dict[str, ChainClient]:
        own = deployment.views.get(label, {})
        out: dict[str, ChainClient] = {}
        for key, chain in deployment.chains.items():
            url = own.get(key) or chain.rpc_url
            if url is None:
                raise FederationError(f"chain {key} has no URL in {settings.deployments}")
            out[key] = ChainClient(http_view(key, url, chain.chain_id), receipts)
        return out

    mine = clients("publisher")
    validators, committee = remote_verifiers(deployment, read_verifiers(settings.verifiers))
    relayer = Relayer(relayer_key, clients("relayer"), deployment, validators, committee)
    parties = ServerParties(
        Publisher(publisher_key, mine["M"], deployment), relayer, deployment, mine, receipts
    )
    federation = Federation(grid, settings.reply_s)
    note("waiting", nodes=settings.nodes)
    node_ids = federation.wait_for(settings.nodes, settings.wait_s)
    introduced, absent = introduce(federation, prepared, node_ids)
    fewest = config.task.min_updates
    if len(introduced) < fewest:
        # Nothing is published yet: a task that cannot have a round is not posted at all.
        raise FederationError(
            f"{len(introduced)} of {len(prepared.workers)} workers answered, fewer than "
            f"[task] min_updates = {fewest}: the task is not published "
            f"({next(iter(absent.values()), '')})"
        )
    workers = {w.index: dataclasses.replace(w, streams=()) for w in prepared.workers}
    for worker, node_id, subchain in introduced:
        federation.node_of[worker.index] = node_id
        parties.watch(worker.space, worker.space_index, worker.address, subchain)
        workers[worker.index] = worker
    # A worker no SuperNode answered as keeps the run config's draw, without an address.
    prepared = dataclasses.replace(prepared, workers=[workers[i] for i in sorted(workers)])
    if absent:
        note("absent", workers={workers[i].label: why for i, why in absent.items()})
    note("publishing")

    def on_round(row: RoundMetrics) -> None:
        note("round", **dataclasses.asdict(row), timings=task.timings)

    task = FlowerTask(
        prepared,
        parties,
        ModelStore(out / "store"),
        on_round,
        journal,
        federation=federation,
        absent=absent,
    )
    try:
        outcome = task.run()
    finally:
        journal.receipts(receipts)
    deployments = deployment.to_json()
    receipt_rows = journal.written_receipts()
    summary = write_run_folder(out, prepared, outcome, deployments, receipt_rows)
    write_run_report(RunResult(prepared, outcome, out, deployments, receipt_rows, summary))
    note("done", global_sha256=outcome.global_sha256)
    return out

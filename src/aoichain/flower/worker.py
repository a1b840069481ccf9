"""A worker on its own machine: what its ClientApp does with each message.

Flower starts a new ClientApp process for every message, so a worker reads
its settings (:mod:`aoichain.flower.settings`), its key and its chain nodes
again each time, keeps its ticket in ``context.state``, and imports the
learning stack (torch) only for a round's ``train`` message. Everything that
matters crosses a chain: the worker checks the global model it receives
against what its subchain announces, records its own update with its own
key, and claims its own pay.

The learning is the in-process engine's, function for function:
:func:`aoichain.workflow.requests.answer_request` (the cache a request is served
from), :func:`aoichain.fl.train_local` (the same bytes as the batched
training), :func:`aoichain.workflow.updates.sealed_sha256` (the update bound
to its author).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aoichain.errors import AoichainError, IntegrityError, InvalidInput
from aoichain.flower.settings import WorkerSettings

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from aoichain.chain import Receipt
    from aoichain.chain import Worker as ChainWorker
    from aoichain.chain.publisher import Ticket
    from aoichain.fl import SensorStream


class WorkerNode:
    """One worker: its settings, its key (in its chain party) and its own chain views.

    Raises
    ------
    InvalidInput
        A bad keystore, password, deployments file or subchain.
    ChainUnavailable
        One of its nodes does not answer.
    """

    def __init__(self, settings: WorkerSettings):
        from aoichain.chain import ChainClient
        from aoichain.chain import Worker as ChainWorker
        from aoichain.chain.keys import keystore_password, read_keystore
        from aoichain.chain.remote import read_deployment
        from aoichain.chain.views import http_view

        self.settings = settings
        deployment = read_deployment(settings.deployments)
        if settings.subchain not in deployment.subchains_of(settings.space):
            raise InvalidInput(
                f"Worker {settings.label}: subchain {settings.subchain!r} is not one of the "
                f"{settings.space} space's ({', '.join(deployment.subchains_of(settings.space))})."
            )
        self.log: list[Receipt] = []

        def client(key: str) -> ChainClient:
            url = settings.chains.get(key) or deployment.chains[key].rpc_url
            if url is None:
                raise InvalidInput(f"Worker {settings.label}: no node URL for chain {key}.")
            return ChainClient(http_view(key, url, deployment.chains[key].chain_id), self.log)

        signer = read_keystore(settings.key, keystore_password(settings.password_file or None))
        self.deployment = deployment
        self.party: ChainWorker = ChainWorker(
            signer, settings.subchain, client(settings.subchain), client("M"), deployment
        )

    @property
    def address(self) -> str:
        """The worker's address."""
        return self.party.address

    def receipts(self) -> list[dict[str, Any]]:
        """The receipts of the transactions this worker sent while answering."""
        return [r.to_dict() for r in self.log]

    # ------------------------------------------------------------------------ the steps

    def hello(self) -> dict[str, Any]:
        """Who the worker is. Its type, gamma and phase go to the run's report only (the
        in-process engine's statistics need them); the loop never uses them."""
        s = self.settings
        return {
            "address": self.address,
            "space": s.space,
            "node": s.node,
            "subchain": s.subchain,
            "item": s.item,
            "type": s.type,
            "gamma": s.gamma,
            "phase": s.phase,
        }

    def enrol(self, ticket: Ticket) -> dict[str, Any]:
        """Enrol with the publisher's ticket on the worker's own subchain."""
        from aoichain.chain import ChainRejected

        try:
            self.party.enrol(ticket)
        except ChainRejected as exc:
            return {"rejected": exc.reason, "receipts": self.receipts()}
        return {"receipts": self.receipts()}

    def train(self, values: dict[str, Any], blob: bytes) -> tuple[dict[str, Any], bytes | None]:
        """Answer a round's request: check the global model, serve the request from the
        cache, train, seal, record the update on the subchain; the answer and the bytes."""
        began = time.perf_counter()
        from aoichain.chain import ChainRejected
        from aoichain.fl import LocalUpdate, ModelSpec, TrainConfig, train_local
        from aoichain.workflow.requests import answer_request
        from aoichain.workflow.updates import sealed_sha256
        from aoichain.workflow.workers import Worker

        timing = {"imports_s": time.perf_counter() - began}
        s = self.settings
        task_id, round_no = int(values["task_id"]), int(values["round"])
        spec = ModelSpec.model_validate_json(values["spec"])
        self.check_global(task_id, round_no, blob, spec=spec, seed=int(values["seed"]))
        n = s.data.nodes
        menu_c = [float(c) for c in values["menu_c"]]
        worker = Worker(
            index=s.node if s.space == "P" else n + s.node,
            space=s.space,
            space_index=s.node,
            node=s.node,
            type_index=s.type,
            gamma=s.gamma,
            item=s.item,
            c=menu_c[s.item] if s.item >= 0 else float("nan"),
            phase=s.phase,
            streams=self.streams,
            address=self.address,
        )
        request = answer_request(
            worker,
            int(values["slot"]),
            t=float(values["t"]),
            a=float(values["a"]),
            time_scale=float(values["time_scale"]),
            window=spec.window,
            max_windows=int(values["max_windows"]),
            cache_slots=values.get("cache_slots"),
        )
        answer: dict[str, Any] = {
            "aoi": request.aoi,
            "latency": request.latency,
            "data_time": request.data_time,
            "samples": 0,
            "timing": timing,
        }
        timing["serve_s"] = time.perf_counter() - began - timing["imports_s"]
        deadline = values.get("deadline_s")
        if not len(request.cache) or (deadline is not None and request.latency > deadline):
            return answer, None  # nothing to train on, or too late for the round
        started = time.perf_counter()
        # A Byzantine worker (its node config's faults) poisons its data or its update as the
        # in-process engine's attacker does, through the same injector; it still signs a
        # valid record of what it sends.
        faults = s.faults.injector(int(values["seed"]), worker.index)
        cache = faults.attack_cache(round_no, worker, request.cache)
        update = train_local(spec, blob, cache, TrainConfig(**values["train"]))
        poisoned = faults.attack_update(round_no, worker, blob, update.blob)
        if poisoned != update.blob:
            update = LocalUpdate(
                poisoned, hashlib.sha256(poisoned).digest(), update.samples, math.nan
            )
        timing["training_s"] = time.perf_counter() - started
        sealed, sha = sealed_sha256(
            update.blob, task_id=task_id, round_no=round_no, author=self.address
        )
        answer.update(samples=update.samples, loss=update.loss, sha256=sha.hex())
        index = values.get("index")
        try:
            # A resumed run asks again for a round whose record this worker sent before the
            # crash: the same training gives the same bytes, so the record stands.
            if index is None or not self.party.has_record(task_id, round_no, int(index)):
                self.party.submit_update(
                    task_id, round_no, sha, update.samples, round(request.data_time)
                )
        except ChainRejected as exc:
            answer.update(rejected=exc.reason, receipts=self.receipts())
            return answer, None
        answer["receipts"] = self.receipts()
        if s.faults.tamper_reply_round == round_no:
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 0xFF])
        return answer, sealed

    def finish(self, values: dict[str, Any], blob: bytes | None, ticket: Ticket) -> dict[str, Any]:
        """Check the last global model against the subchain; claim the pay M says is owed."""
        task_id, last = int(values["task_id"]), int(values["round"])
        answer: dict[str, Any] = {"verified": None, "claimed": False}
        if last >= 0 and blob is not None:
            try:
                self.check_global(task_id, last + 1, blob)
                answer["verified"] = True
            except IntegrityError as exc:
                answer.update(verified=False, why=str(exc))
        if self.party.claimable(ticket) == 0:
            return answer
        before = self.party.balance()
        got, fee = self.party.claim(ticket, int(values["until_round"]))
        answer.update(
            claimed=True,
            amount=got,
            fee=fee,
            moved=self.party.balance() - before,
            receipts=self.receipts(),
        )
        return answer

    # ------------------------------------------------------------------------ its own

    def check_global(
        self, task_id: int, round_no: int, blob: bytes, *, spec: Any = None, seed: int = 0
    ) -> None:
        """Check the global model a round starts from against the worker's own subchain.

        Round 0 starts from the untrained model: its spec must be the one the task
        published (its hash, relayed to the subchain) and the bytes those the spec
        and the task's seed give. A later round starts from the global model M
        recorded for the round before, as the subchain announces it.

        Raises
        ------
        IntegrityError
            If the bytes are not the model the chain names.
        """
        from aoichain.chain.artifacts import load

        party = self.party
        if round_no == 0:
            from aoichain.fl import init_model

            sub = party.sub.contract(
                load("subchain"), self.deployment.chains[party.subchain].contract
            )
            published = bytes(party.sub.call(sub, "tasks", task_id)[1])
            if spec is None or spec.sha256() != published:
                raise IntegrityError(
                    f"worker {self.settings.label}: the model spec sent is not the one task "
                    f"{task_id} published"
                )
            if init_model(spec, seed) != blob:
                raise IntegrityError(
                    f"worker {self.settings.label}: the initial model sent is not the one the "
                    f"published spec and seed give"
                )
            return
        announced = party.announced(task_id, round_no - 1).global_sha256
        if hashlib.sha256(blob).digest() != announced:
            raise IntegrityError(
                f"worker {self.settings.label}: the global model sent hashes to "
                f"{hashlib.sha256(blob).hexdigest()}, but subchain {party.subchain} announces "
                f"{announced.hex()} for round {round_no - 1}"
            )

    @cached_property
    def streams(self) -> tuple[SensorStream, ...]:
        """What this worker holds: its node's stream (P), or its twin's view of it and the
        virtual space's data (V), exactly as the in-process engine builds them.

        With a ``cache`` folder they are built once and read back by later
        messages (each message is a new process: building them again would
        cost the data source's time every round).
        """
        if not self.settings.cache:
            return self._build_streams()
        s = self.settings
        recipe = json.dumps(
            {"space": s.space, "data": s.data.model_dump(), "privacy": s.privacy}, sort_keys=True
        )
        path = Path(s.cache) / f"streams-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.npz"
        if path.exists():
            return _load_streams(path)
        streams = self._build_streams()
        _save_streams(path, streams)
        return streams

    def _build_streams(self) -> tuple[SensorStream, ...]:
        from aoichain.fl import PrivacyPolicy, holdout_split
        from aoichain.workflow.plugins import resolve
        from aoichain.workflow.sources import BUILTIN_SOURCES, SOURCE_KIND, StreamRequest
        from aoichain.workflow.workers import held_streams

        d = self.settings.data
        source = resolve(d.source, SOURCE_KIND, BUILTIN_SOURCES)
        request = StreamRequest(
            nodes=d.nodes,
            seed=d.seed,
            slots=d.slots,
            slot_s=d.slot_s,
            records_per_slot=d.records_per_slot,
            time_scale=d.time_scale or None,
            folder=d.folder or None,
            generator=self.settings.generator(),
        )
        streams = list(source(request))
        if not 0 <= d.stream < len(streams):
            raise InvalidInput(
                f"Worker {self.settings.label}: the data source gives {len(streams)} streams, "
                f"it has no stream {d.stream}."
            )
        # The held-out part of the node's stream is the evaluation's, never trained on: the
        # split the in-process engine makes (aoichain.workflow.prepare), seeded alike.
        kept, _ = holdout_split(
            streams[d.stream],
            fraction=d.holdout,
            block=d.holdout_block,
            seed=d.seed * 1_000_003 + d.stream,
        )
        policy = PrivacyPolicy.model_validate_json(self.settings.privacy)
        seed = None if d.augment_seed < 0 else d.augment_seed
        return held_streams(self.settings.space, kept, policy, augment_seed=seed)


def _save_streams(path: Path, streams: tuple[SensorStream, ...]) -> None:
    """Write streams to one ``.npz`` (arrays, and their names as JSON; no pickle)."""
    arrays: dict[str, Any] = {}
    meta = []
    for i, st in enumerate(streams):
        arrays[f"{i}_times"], arrays[f"{i}_values"] = st.times, st.values
        arrays[f"{i}_labels"], arrays[f"{i}_mask"] = st.labels, st.mask
        meta.append({"name": st.name, "columns": list(st.columns), "origin": st.origin})
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def _load_streams(path: Path) -> tuple[SensorStream, ...]:
    """Streams written by :func:`_save_streams`."""
    from aoichain.fl import SensorStream

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return tuple(
            SensorStream(
                name=m["name"],
                columns=tuple(m["columns"]),
                times=data[f"{i}_times"],
                values=data[f"{i}_values"],
                labels=data[f"{i}_labels"],
                mask=data[f"{i}_mask"],
                origin=float(m["origin"]),
            )
            for i, m in enumerate(meta)
        )


#: Where a worker keeps its ticket between messages (Flower's ``context.state``).
STATE = "aoichain-ticket"


def handle(message: Message, context: Context) -> Message:
    """Answer one message from the ServerApp (any step); an error is a reply, not a crash.

    Every reply carries ``timing``: the CPU seconds this process spent before the
    handler began (the interpreter, Flower, this module: what a process per message
    costs) and the handler's own wall seconds (``benchmarks/bench_flower.py``).
    """
    cpu_before, began = time.process_time(), time.perf_counter()
    from flwr.app import ConfigRecord

    from aoichain.chain.wire import ticket_json, ticket_of
    from aoichain.flower.messages import read, reply_to
    from aoichain.flower.settings import settings_from_node_config

    step, values, blob = read(message)
    answer: dict[str, Any]
    update: bytes | None = None
    try:
        node = WorkerNode(settings_from_node_config(context.node_config))
        if step == "hello":
            answer = node.hello()
        elif step == "enrol":
            ticket = ticket_of(values["ticket"])
            context.state[STATE] = ConfigRecord({"json": json.dumps(ticket_json(ticket))})
            answer = node.enrol(ticket)
        elif step == "train":
            if blob is None:
                raise InvalidInput("a train message carries the global model")
            answer, update = node.train(values, blob)
        elif step == "finish":
            if "ticket" in values:  # sent along: a resumed run's SuperNodes are new
                ticket = ticket_of(values["ticket"])
            elif STATE in context.state:
                ticket = ticket_of(json.loads(str(context.state[STATE]["json"])))
            else:
                raise InvalidInput("this worker holds no ticket (it never enrolled)")
            if ticket.worker.lower() != node.address.lower():
                raise InvalidInput(f"the ticket sent admits {ticket.worker}, not this worker")
            answer = node.finish(values, blob, ticket)
        else:
            raise InvalidInput(f"unknown step {step!r}")
    except (AoichainError, KeyError, ValueError, TypeError) as exc:
        traceback.print_exc(file=sys.stderr)
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer["timing"] = {
        "cpu_before_s": cpu_before,
        "handler_s": time.perf_counter() - began,
        **answer.get("timing", {}),
    }
    return reply_to(message, answer, update)

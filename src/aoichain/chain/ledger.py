"""The ledger: four chains, their contracts, and every party that acts on them.

:class:`Ledger` is the one object the workflow talks to. It holds the keys of
every party of a run (derived from the seed): the deployer, the publisher,
the aggregator, the relayer, the relay committee, each chain's validators
and the workers, and it sends each transaction from the party that would
send it in the paper's Fig. 1:

====================  ======  ============================================
step                  chain   sender
====================  ======  ============================================
publish_task (a)      M       publisher (escrows the budget)
relay_task (b)        R,P,V   relayer (M's validators checkpoint, committee attests)
enrol (b)             P or V  the worker (states its menu item)
open_round            M,R,P,V aggregator on M, then relayed down
submit_update (d)     P or V  the worker
relay_updates (e)     R, M    relayer (P/V validators checkpoint, committee attests)
record_global_model   M       aggregator (credits included workers)
relay_global_model    R,P,V   relayer
close_round           M       aggregator
finish_task/withdraw  M       aggregator / each worker (pull payment)
reclaim               M       publisher (unspent escrow only)
====================  ======  ============================================

Design choices, for whoever extends this:

- Rounds count from 0 and open in order on M; each opening is relayed down
  on its own (:meth:`Ledger.open_round`). A subchain takes updates for a
  round from the moment its opening is delivered until its global model is
  delivered. Updates that reach M after the global model was recorded are
  still accepted and logged (never lost) but can no longer be included or
  paid.
- One message per subchain per round carries every record of the round
  held at the checkpointed block; its nonce is ``(task, round, count)`` and
  M takes only the records beyond those it already has, so a late batch adds
  the late records and a repeated batch is refused. M accepts one update per
  worker per round and each update hash once per round.
- Every account is funded once at start: on embedded chains in the genesis
  state, on nodes from the node's unlocked dev account (1,000 ether each,
  the publisher 1,000,000: larger escrows need a richer publisher).
- The deployer's first transaction on each chain creates that chain's
  contract, so all four contracts share one address; only the chain id in
  every signed digest tells them apart, which the tests check.
"""

from __future__ import annotations

import atexit
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from web3.contract import Contract
from web3.logs import DISCARD

from aoichain.chain import digests
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient, Receipt
from aoichain.chain.config import CHAIN_KEYS, CHAIN_NAMES, SPACES, LedgerConfig, TaskSpec
from aoichain.chain.deployments import CONTRACT_OF, FORMAT, read_rpc_file
from aoichain.chain.digests import UpdateRecord
from aoichain.chain.errors import AttestationRefused, ChainUnavailable
from aoichain.chain.keys import Signer, signer, sort_signatures
from aoichain.chain.nodes import ChainNode, attach_rpc, start_anvils, start_embedded
from aoichain.chain.proofs import StorageProof, parse_get_proof
from aoichain.chain.relay import (
    CommitteeMember,
    Envelope,
    OutboxMessage,
    UpdateBatch,
    Validator,
    collect_signatures,
)
from aoichain.config import build_model
from aoichain.errors import IntegrityError, InvalidInput

ETHER = 10**18
#: What each account is funded with on the chains it acts on.
FUND_WEI = 1_000 * ETHER
PUBLISHER_FUND_WEI = 1_000_000 * ETHER
SPACE_OF = {number: key for key, number in SPACES.items()}


class Withdrawal(NamedTuple):
    """A pull payment on M: what the contract paid and what the worker spent on gas."""

    amount: int
    fee: int


@dataclass(frozen=True)
class AttestedUpdate:
    """An update record accepted on the main chain after attestation.

    Attributes
    ----------
    space
        ``"P"`` or ``"V"``: the subchain it came from.
    worker
        The worker's address.
    round_no
        The round (1-based).
    update_sha256
        sha256 of the update's bytes in the model store.
    samples
        Samples the update was trained on.
    data_timestamp
        When the data used was sensed (the worker's clock, e.g. unix s or slots).
    item
        Index of the menu item the worker chose at enrolment.
    task_id
        The task.
    """

    space: str
    worker: str
    round_no: int
    update_sha256: bytes
    samples: int
    data_timestamp: int
    item: int
    task_id: int


@dataclass
class Parties:
    """Every key of a run, derived from the seed."""

    deployer: Signer
    publisher: Signer
    aggregator: Signer
    relayer: Signer
    committee: list[Signer]
    validators: dict[str, list[Signer]]
    workers: dict[str, list[Signer]]

    @classmethod
    def derive(cls, cfg: LedgerConfig, n_workers: Mapping[str, int]) -> Parties:
        """The parties for ``cfg.key_seed`` with ``n_workers[space]`` workers per subchain."""
        s = cfg.key_seed
        return cls(
            deployer=signer(s, "deployer"),
            publisher=signer(s, "publisher"),
            aggregator=signer(s, "aggregator"),
            relayer=signer(s, "relayer"),
            committee=[signer(s, "committee", i) for i in range(cfg.committee_size)],
            validators={
                k: [signer(s, f"validator-{k}", i) for i in range(cfg.subchain_validators)]
                for k in ("M", "P", "V")
            },
            workers={
                k: [signer(s, f"worker-{k}", i) for i in range(n_workers.get(k, 0))] for k in SPACES
            },
        )

    def funding(self) -> dict[str, dict[str, int]]:
        """Wei each account needs on each chain (by chain key, then address)."""
        ops = {self.deployer.address: FUND_WEI, self.relayer.address: FUND_WEI}
        main = {
            **ops,
            self.publisher.address: PUBLISHER_FUND_WEI,
            self.aggregator.address: FUND_WEI,
        }
        for space in SPACES:
            for w in self.workers[space]:
                main[w.address] = FUND_WEI
        return {
            "M": main,
            "R": dict(ops),
            "P": {**ops, **{w.address: FUND_WEI for w in self.workers["P"]}},
            "V": {**ops, **{w.address: FUND_WEI for w in self.workers["V"]}},
        }

    def by_address(self) -> dict[str, Signer]:
        """Every signer that sends transactions, by lower-case address."""
        everyone = [self.deployer, self.publisher, self.aggregator, self.relayer]
        everyone += [w for ws in self.workers.values() for w in ws]
        return {s.address.lower(): s for s in everyone}


class Ledger:
    """The cross-chain ledger of one run. Build it with :meth:`Ledger.start`."""

    def __init__(
        self,
        cfg: LedgerConfig,
        nodes: dict[str, ChainNode],
        parties: Parties,
        addresses: dict[str, str],
        receipts: list[Receipt],
        clients: dict[str, ChainClient],
    ):
        self.config = cfg
        self._nodes = nodes
        self._parties = parties
        self._receipts = receipts
        self._clients = clients
        self._addresses = addresses
        self._contracts: dict[str, Contract] = {
            k: clients[k].contract(load(CONTRACT_OF[k]), addresses[k]) for k in CHAIN_KEYS
        }
        routes = {nodes[k].chain_id: (k, addresses[k]) for k in CHAIN_KEYS}
        self._members = [
            CommitteeMember(s, clients["R"], self._contracts["R"], routes)
            for s in parties.committee
        ]
        self._validators = {
            k: [Validator(s, nodes[k]) for s in vs] for k, vs in parties.validators.items()
        }
        self._by_address = parties.by_address()
        self._stopped = False
        #: Messages the committee refused to sign (only expected with a lying relayer).
        self.refusals: list[dict[str, Any]] = []
        #: Worker addresses per subchain: ``workers["P"][i]``.
        self.workers: dict[str, list[str]] = {
            k: [w.address for w in ws] for k, ws in parties.workers.items()
        }
        #: The task publisher's address (pays the escrow on M).
        self.publisher: str = parties.publisher.address
        #: The aggregator's address (opens/closes rounds, records global models on M).
        self.aggregator: str = parties.aggregator.address
        #: The relayer's address (sends checkpoints, forwards and deliveries).
        self.relayer: str = parties.relayer.address
        #: The relay committee's addresses.
        self.committee: list[str] = [s.address for s in parties.committee]

    # ------------------------------------------------------------------ set-up

    @classmethod
    def start(
        cls,
        cfg: LedgerConfig | None = None,
        n_workers: Mapping[str, int] | None = None,
        *,
        log_dir: str | Path | None = None,
    ) -> Ledger:
        """Start (or attach to) the four chains, deploy the contracts, fund every account.

        Parameters
        ----------
        cfg
            The ledger's configuration (defaults: embedded backend, 3-of-5
            committee, 2-of-3 validators, seed 0).
        n_workers
            Workers per subchain, e.g. ``{"P": 10, "V": 10}``.
        log_dir
            Where anvil nodes write their logs (a temporary folder if None).

        Raises
        ------
        ChainUnavailable
            If anvil is missing, or for ``rpc``: the file is bad, a node does
            not answer or has a wrong chain id, the deployed contracts do not
            match the configured committee/validators, or there is no funded
            account to pay for gas. Raised before any transaction is sent.
        """
        cfg = cfg or LedgerConfig()
        workers = {"P": 10, "V": 10} if n_workers is None else dict(n_workers)
        if set(workers) - set(SPACES) or any(
            not isinstance(n, int) or n < 0 for n in workers.values()
        ):
            raise InvalidInput(
                "The 'n_workers' parameter of Ledger.start must map 'P' and 'V' to "
                "non-negative ints. "
                f"Got {workers!r} instead."
            )
        parties = Parties.derive(cfg, workers)
        funding = parties.funding()
        nodes: dict[str, ChainNode] = {}
        try:
            addresses: dict[str, str] | None = None
            if cfg.backend == "embedded":
                for k in CHAIN_KEYS:
                    nodes[k] = start_embedded(k, cfg.chain_ids[k], funding[k])
            elif cfg.backend == "anvil":
                wanted = {k: cfg.chain_ids[k] for k in CHAIN_KEYS}
                nodes.update(start_anvils(wanted, Path(log_dir) if log_dir else None))
            else:
                assert cfg.rpc_file is not None
                spec = read_rpc_file(cfg.rpc_file)
                for k in CHAIN_KEYS:
                    nodes[k] = attach_rpc(k, spec.chains[k].rpc_url, spec.chains[k].chain_id)
                addresses = spec.addresses()
            ids = [n.chain_id for n in nodes.values()]
            if len(set(ids)) != len(ids):
                raise ChainUnavailable(f"the four chains must have distinct chain ids; got {ids}")
            if addresses is not None:
                _check_deployment(nodes, addresses, cfg, parties)
            funders = {} if cfg.backend == "embedded" else _funders(nodes, funding)

            receipts: list[Receipt] = []
            clients = {k: ChainClient(nodes[k], receipts) for k in CHAIN_KEYS}
            for node in nodes.values():
                # ``from`` of read-only calls: a funded account (eth-tester charges calls gas).
                node.w3.eth.default_account = node.w3.to_checksum_address(parties.relayer.address)
            for k, funder in funders.items():
                _fund(clients[k], funder, funding[k], receipts)
            if addresses is None:
                addresses = _deploy(clients, cfg, parties)
        except BaseException:
            for node in nodes.values():
                node.stop()
            raise
        ledger = cls(cfg, nodes, parties, addresses, receipts, clients)
        atexit.register(ledger.stop)
        return ledger

    def stop(self) -> None:
        """Stop the nodes this ledger started (anvil); attached nodes keep running."""
        if self._stopped:
            return
        self._stopped = True
        for node in self._nodes.values():
            node.stop()
        atexit.unregister(self.stop)

    def dead_nodes(self) -> list[str]:
        """Chains whose node this ledger started and that no longer runs."""
        return [k for k, n in self._nodes.items() if n.process is not None and not n.process.alive]

    def write_deployments(self, path: str | Path) -> Path:
        """Write :meth:`deployments` as JSON to ``path`` (atomically: readers never see half)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.deployments(), indent=1) + "\n")
        tmp.replace(target)
        return target

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- task (a, b)

    def publish_task(
        self,
        model_spec_hash: bytes,
        rounds: int,
        target_accuracy: float,
        menu_f: Sequence[float],
        menu_reward_wei_per_round: Sequence[int],
        max_workers: int,
    ) -> int:
        """Post a task on M and escrow ``max_workers * max(reward) * rounds`` from the publisher.

        Parameters
        ----------
        model_spec_hash
            sha256 (32 bytes) of the model specification.
        rounds
            Maximum number of rounds.
        target_accuracy
            Accuracy in [0, 1] at which the task may stop.
        menu_f
            Update frequency f_n of each contract item (1/slot or 1/s; kept
            on chain in 1e-6 units).
        menu_reward_wei_per_round
            Reward R_n paid per included update of a worker with item n, wei.
        max_workers
            Most workers paid in one round (sizes the escrow).

        Returns
        -------
        int
            The task id on M.
        """
        spec = build_model(
            TaskSpec,
            {
                "model_spec_hash": model_spec_hash,
                "rounds": rounds,
                "target_accuracy": target_accuracy,
                "menu_f": list(menu_f),
                "menu_reward_wei_per_round": list(menu_reward_wei_per_round),
                "max_workers": max_workers,
            },
            source="Ledger.publish_task",
        )
        rcpt = self._m(
            self._parties.publisher,
            "publish_task",
            spec.model_spec_hash,
            spec.rounds,
            spec.target_accuracy_ppm,
            spec.menu_f_micro,
            spec.menu_reward_wei_per_round,
            spec.max_workers,
            self.aggregator,
            value=spec.escrow_wei,
        )
        (event,) = self._contracts["M"].events.TaskPublished().process_receipt(rcpt, errors=DISCARD)
        return int(event["args"]["task_id"])

    def relay_task(self, task_id: int) -> None:
        """Carry the task M -> R -> P and V (idempotent: already delivered parts are skipped)."""
        self._relay_down(digests.KIND_TASK, task_id, 0)

    def enrol(self, space: str, worker_index: int, task_id: int, item: int) -> Receipt:
        """Enrol worker ``worker_index`` of ``space`` in a task with the menu item it chose."""
        worker = self._worker(space, worker_index)
        self._clients[space].transact(worker, self._contracts[space], "enrol", task_id, item)
        return self._receipts[-1]

    # ------------------------------------------------------------ rounds (c-f)

    def open_round(self, task_id: int, round_no: int) -> None:
        """Open a round on M (aggregator) and relay the opening down to P and V.

        Rounds count from 0 and open in order; the subchains take updates for
        the round once the opening is delivered (see :meth:`relay_round_open`).
        """
        self._m(self._parties.aggregator, "open_round", task_id, round_no)
        self.relay_round_open(task_id, round_no)

    def relay_round_open(self, task_id: int, round_no: int) -> None:
        """Carry a round opening M -> R -> P and V (idempotent; :meth:`open_round` calls it)."""
        self._relay_down(digests.KIND_ROUND_OPEN, task_id, round_no)

    def submit_update(
        self,
        space: str,
        worker_index: int,
        task_id: int,
        round_no: int,
        update_sha256: bytes,
        samples: int,
        data_timestamp: int,
    ) -> Receipt:
        """Record a worker's update (task, round, sha256, samples, data timestamp) on its subchain.

        Raises
        ------
        ChainRejected
            ``subchain: worker not enrolled``, ``subchain: round not open``,
            ``subchain: update already submitted``, ...
        """
        worker = self._worker(space, worker_index)
        _require_hash(update_sha256, "update_sha256", "Ledger.submit_update")
        for name, value in (("samples", samples), ("data_timestamp", data_timestamp)):
            if not isinstance(value, int) or value < 0:
                raise InvalidInput(
                    f"The {name!r} parameter of Ledger.submit_update must be a non-negative int. "
                    f"Got {value!r} instead."
                )
        self._clients[space].transact(
            worker,
            self._contracts[space],
            "submit_update",
            task_id,
            round_no,
            update_sha256,
            samples,
            data_timestamp,
        )
        return self._receipts[-1]

    def relay_updates(
        self, task_id: int, round_no: int, *, lying_relayer: bool | str = False
    ) -> list[AttestedUpdate]:
        """Carry the round's update records P/V -> R -> M, one batch per subchain.

        Each subchain's latest block is checkpointed on R by its validators;
        the committee proves the round's record commitment against it and
        signs; R records the message and M accepts it.

        Parameters
        ----------
        task_id, round_no
            The round whose records to carry.
        lying_relayer
            Fault injection: ``True`` (every subchain) or ``"P"``/``"V"`` makes
            the relayer alter one record of the batch before asking the
            committee. The members' proofs expose it and they refuse; the batch
            is not delivered (it stays on the subchain, and a later honest
            call delivers it) and the refusal is appended to :attr:`refusals`.

        Returns
        -------
        list of AttestedUpdate
            The updates M newly accepted by this call (repeats of a worker or
            of an update hash within the round are skipped by M).

        Raises
        ------
        AttestationRefused
            If the committee refuses an honest batch (the chains disagree
            with themselves: never expected).
        """
        accepted: list[AttestedUpdate] = []
        for space in SPACES:
            count_now = self._call(space, "record_count", task_id, round_no)
            done = self._call("M", "inbound_count", self._nodes[space].chain_id, task_id, round_no)
            if count_now <= done:
                continue
            block = self.checkpoint(space)
            rows = self._call(space, "records", task_id, round_no, block=block)
            batch = UpdateBatch(task_id, round_no, tuple(UpdateRecord.from_row(r) for r in rows))
            lying = lying_relayer is True or lying_relayer == space
            if lying:
                batch = _tampered(batch)
            envelope = self.envelope(space, "M", block, batch)
            try:
                sigs = self._attest_and_forward(envelope)
            except AttestationRefused as exc:
                if not lying:
                    raise
                self.refusals.append(
                    {"task_id": task_id, "round": round_no, "space": space, "reason": str(exc)}
                )
                continue
            rcpt = self._clients["M"].transact(
                self._parties.relayer,
                self._contracts["M"],
                "deliver_updates",
                self._nodes[space].chain_id,
                block,
                task_id,
                round_no,
                [r.as_tuple() for r in batch.records],
                sigs,
                label=f"deliver_updates {space}->M",
            )
            for ev in (
                self._contracts["M"].events.UpdateAccepted().process_receipt(rcpt, errors=DISCARD)
            ):
                a = ev["args"]
                accepted.append(
                    AttestedUpdate(
                        space=SPACE_OF[int(a["space"])],
                        worker=str(a["worker"]),
                        round_no=int(a["round_no"]),
                        update_sha256=bytes(a["update_sha256"]),
                        samples=int(a["samples"]),
                        data_timestamp=int(a["data_timestamp"]),
                        item=int(a["item"]),
                        task_id=int(a["task_id"]),
                    )
                )
        return accepted

    def record_global_model(
        self, task_id: int, round_no: int, global_sha256: bytes, included: Sequence[bytes]
    ) -> Receipt:
        """Record the round's global model on M, which credits each included worker."""
        _require_hash(global_sha256, "global_sha256", "Ledger.record_global_model")
        for h in included:
            _require_hash(h, "included", "Ledger.record_global_model")
        self._m(
            self._parties.aggregator,
            "record_global_model",
            task_id,
            round_no,
            global_sha256,
            list(included),
        )
        return self._receipts[-1]

    def relay_global_model(self, task_id: int, round_no: int) -> dict[str, bytes]:
        """Carry the round's global model M -> R -> P and V.

        Returns
        -------
        dict
            What each subchain now announces for the round, ``{"P": sha256, "V": sha256}``,
            for workers to check the model they download.
        """
        self._relay_down(digests.KIND_GLOBAL_MODEL, task_id, round_no)
        return {k: bytes(self._call(k, "global_models", task_id, round_no)) for k in SPACES}

    def close_round(self, task_id: int, round_no: int) -> None:
        """Close the open round on M (aggregator)."""
        self._m(self._parties.aggregator, "close_round", task_id, round_no)

    # ------------------------------------------------------------------ money

    def finish_task(self, task_id: int) -> None:
        """End the task (aggregator); its unspent escrow becomes reclaimable by the publisher."""
        self._m(self._parties.aggregator, "finish_task", task_id)

    def withdraw(self, worker_address: str) -> Withdrawal:
        """Pull payment on M: pay ``worker_address`` everything credited and not yet withdrawn.

        Returns
        -------
        Withdrawal
            ``(amount, fee)``: wei paid by the contract, wei the worker paid
            for the transaction's gas (so the balance moved by ``amount - fee``).

        Raises
        ------
        ChainRejected
            ``main: nothing to withdraw`` (nothing earned, or already withdrawn).
        """
        who = self._by_address.get(str(worker_address).lower())
        if who is None:
            raise InvalidInput(
                f"The 'worker_address' parameter of Ledger.withdraw must be an account of this "
                f"ledger. Got {worker_address!r} instead."
            )
        rcpt = self._m(who, "withdraw")
        (event,) = self._contracts["M"].events.Withdrawn().process_receipt(rcpt, errors=DISCARD)
        return Withdrawal(int(event["args"]["amount"]), self._receipts[-1].fee_wei)

    def reclaim(self, task_id: int) -> int:
        """Return a finished task's unspent escrow (escrow - credited) to the publisher; wei."""
        rcpt = self._m(self._parties.publisher, "reclaim", task_id)
        (event,) = self._contracts["M"].events.Reclaimed().process_receipt(rcpt, errors=DISCARD)
        return int(event["args"]["amount"])

    def earned(self, address: str) -> int:
        """Wei credited to ``address`` on M over all tasks (withdrawn or not)."""
        return int(self._call("M", "earned", self._cs(address)))

    def withdrawable(self, address: str) -> int:
        """Wei ``address`` can withdraw now (credited minus paid)."""
        return int(self._call("M", "withdrawable", self._cs(address)))

    def balance(self, chain: str, address: str) -> int:
        """Native balance of ``address`` on ``chain`` ("M", "R", "P" or "V"), wei."""
        return self._clients[_chain_key(chain)].balance(address)

    # ------------------------------------------------------------- inspection

    @property
    def receipts(self) -> list[Receipt]:
        """Every transaction sent so far (set-up included), in order."""
        return list(self._receipts)

    @property
    def gas_used_total(self) -> int:
        """Gas used by every transaction so far, all chains."""
        return sum(r.gas_used for r in self._receipts)

    def gas_by_label(self) -> dict[str, int]:
        """Gas used so far per operation label (e.g. ``submit_update``, ``checkpoint P``)."""
        out: dict[str, int] = defaultdict(int)
        for r in self._receipts:
            out[r.label] += r.gas_used
        return dict(out)

    def gas_by_chain(self) -> dict[str, int]:
        """Gas used so far per chain key."""
        out = dict.fromkeys(CHAIN_KEYS, 0)
        for r in self._receipts:
            out[r.chain] += r.gas_used
        return out

    def attested_updates(self, task_id: int, round_no: int) -> list[bytes]:
        """Hashes of every update M accepted for the round, in acceptance order."""
        return [bytes(h) for h in self._call("M", "round_updates", task_id, round_no)]

    def enrolment(self, space: str, task_id: int, worker_index: int) -> int | None:
        """The menu item a worker enrolled with on its subchain, or None."""
        ok, item = self._call(
            space, "enrolment", task_id, self._worker(space, worker_index).address
        )
        return int(item) if ok else None

    def chain_id(self, chain: str) -> int:
        """The chain id of ``chain``."""
        return self._nodes[_chain_key(chain)].chain_id

    def contract(self, chain: str) -> Contract:
        """The web3 contract object on ``chain`` (for reading state in tests and reports)."""
        return self._contracts[_chain_key(chain)]

    def deployments(self) -> dict[str, Any]:
        """The ``deployments.json`` content of this ledger.

        Per chain: name, chain id, RPC URL (None in process), contract name,
        address and ABI, and its validators; plus the committee, the seed and
        the compiler. The ``rpc`` backend attaches to a file of this shape.
        """
        chains: dict[str, Any] = {}
        for k in CHAIN_KEYS:
            art = load(CONTRACT_OF[k])
            chains[k] = {
                "name": CHAIN_NAMES[k],
                "chain_id": self._nodes[k].chain_id,
                "rpc_url": self._nodes[k].rpc_url,
                "contracts": {art.name: {"address": self._addresses[k], "abi": art.abi}},
                "validators": [v.address for v in self._validators.get(k, [])],
                "validator_threshold": self.config.subchain_threshold if k != "R" else None,
            }
        return {
            "format": FORMAT,
            "backend": self.config.backend,
            "seed": self.config.key_seed,
            "compiler": load("main").compiler,
            "committee": {"members": list(self.committee), "threshold": self.config.threshold},
            "chains": chains,
        }

    # ---------------------------------------------------------------- relaying

    def checkpoint(self, key: str) -> int:
        """Checkpoint chain ``key``'s latest block on R; return its number.

        The chain's validators each read the block from their node and sign
        (number, hash, state root) for the relay contract; the relayer submits
        ``subchain_threshold`` signatures. A block already checkpointed is reused.
        """
        block = self._nodes[key].w3.eth.get_block("latest")
        number = int(block["number"])
        chain_id = self._nodes[key].chain_id
        latest = int(self._call("R", "latest_checkpoint", chain_id))
        if latest == number:
            return number
        if latest > number:
            raise IntegrityError(
                f"the relay chain holds a checkpoint of chain {key} at block {latest}, "
                f"beyond its head {number}"
            )
        block_hash, state_root = bytes(block["hash"]), bytes(block["stateRoot"])
        relay_id, relay_addr = self._nodes["R"].chain_id, self._addresses["R"]
        signed = []
        for v in self._validators[key]:
            try:
                signed.append(
                    (
                        v.address,
                        v.sign_checkpoint(relay_id, relay_addr, number, block_hash, state_root),
                    )
                )
            except IntegrityError:
                continue
            if len(signed) == self.config.subchain_threshold:
                break
        self._clients["R"].transact(
            self._parties.relayer,
            self._contracts["R"],
            "submit_checkpoint",
            chain_id,
            number,
            block_hash,
            state_root,
            [s.as_tuple() for s in sort_signatures(signed)],
            label=f"checkpoint {key}",
        )
        return number

    def envelope(
        self, src: str, dst: str, block: int, body: UpdateBatch | OutboxMessage
    ) -> Envelope:
        """A message from ``src``'s contract at ``block`` to ``dst``'s contract."""
        return Envelope(
            src_key=src,
            src_chain_id=self._nodes[src].chain_id,
            src_contract=self._addresses[src],
            src_block=block,
            dst_key=dst,
            dst_chain_id=self._nodes[dst].chain_id,
            dst_contract=self._addresses[dst],
            body=body,
        )

    @property
    def parties(self) -> Parties:
        """Every key of the run (for tools and tests that act as one party)."""
        return self._parties

    @property
    def committee_members(self) -> list[CommitteeMember]:
        """The relay committee as parties that check proofs and sign."""
        return list(self._members)

    def client(self, chain: str) -> ChainClient:
        """The transaction client of ``chain`` (receipts go to :attr:`receipts`)."""
        return self._clients[_chain_key(chain)]

    def proof_for(self, envelope: Envelope) -> StorageProof:
        """The source chain's ``eth_getProof`` answer for the storage ``envelope`` asserts."""
        raw = self._nodes[envelope.src_key].get_proof(
            envelope.src_contract, list(envelope.body.claims()), envelope.src_block
        )
        return parse_get_proof(raw)

    def _attest_and_forward(self, envelope: Envelope) -> list[tuple[int, bytes, bytes]]:
        sigs = collect_signatures(
            self._members, self.config.threshold, envelope, self.proof_for(envelope)
        )
        tuples = [s.as_tuple() for s in sigs]
        self._clients["R"].transact(
            self._parties.relayer,
            self._contracts["R"],
            "forward",
            envelope.src_chain_id,
            envelope.src_contract,
            envelope.src_block,
            envelope.dst_chain_id,
            envelope.dst_contract,
            envelope.body.nonce(),
            envelope.body.payload_hash(),
            tuples,
            label=f"forward {envelope.src_key}->{envelope.dst_key}",
        )
        return tuples

    def outbox_message(self, kind: int, task_id: int, round_no: int, block: int) -> OutboxMessage:
        """The main chain's outbox entry of ``kind`` for (task, round), read at ``block``."""
        nonce = int(self._call("M", "message_nonce", kind, task_id, round_no, block=block))
        if nonce == 0:
            what = {1: "task", 2: "round opening", 3: "global model"}[kind]
            raise InvalidInput(
                f"The main chain has no {what} message for task {task_id}"
                + (f" round {round_no}" if round_no else "")
                + "; publish/open/record it first."
            )
        fields: tuple[Any, ...] = ()
        if kind == digests.KIND_TASK:
            t = self._call("M", "tasks", task_id, block=block)
            menu_f, menu_r = self._call("M", "menu", task_id, block=block)
            fields = (bytes(t[2]), int(t[3]), int(t[4]), int(t[5]), list(menu_f), list(menu_r))
        elif kind == digests.KIND_GLOBAL_MODEL:
            sha = bytes(self._call("M", "global_models", task_id, round_no, block=block))
            included = [
                bytes(h) for h in self._call("M", "global_included", task_id, round_no, block=block)
            ]
            fields = (sha, included)
        return OutboxMessage(nonce, kind, task_id, round_no, fields)

    def _relay_down(self, kind: int, task_id: int, round_no: int) -> None:
        head = int(self._nodes["M"].w3.eth.block_number)
        msg = self.outbox_message(kind, task_id, round_no, head)
        pending = [k for k in SPACES if not self._call(k, "consumed", msg.nonce_value)]
        if not pending:
            return
        block = self.checkpoint("M")
        for dst in pending:
            envelope = self.envelope("M", dst, block, msg)
            sigs = self._attest_and_forward(envelope)
            fn, args = _delivery(msg)
            self._clients[dst].transact(
                self._parties.relayer,
                self._contracts[dst],
                fn,
                block,
                msg.nonce_value,
                *args,
                sigs,
                label=f"{fn} M->{dst}",
            )

    # ----------------------------------------------------------------- helpers

    def _m(self, who: Signer, fn: str, *args: Any, value: int = 0) -> Any:
        return self._clients["M"].transact(who, self._contracts["M"], fn, *args, value=value)

    def _call(self, key: str, fn: str, *args: Any, block: int | str = "latest") -> Any:
        return self._clients[key].call(self._contracts[key], fn, *args, block=block)

    def _worker(self, space: str, index: int) -> Signer:
        if space not in SPACES:
            raise InvalidInput(f"The 'space' parameter must be 'P' or 'V'. Got {space!r} instead.")
        pool = self._parties.workers[space]
        if not isinstance(index, int) or not 0 <= index < len(pool):
            raise InvalidInput(
                f"The 'worker_index' parameter must be an int in [0, {len(pool) - 1}] for space "
                f"{space}. Got {index!r} instead."
            )
        return pool[index]

    def _cs(self, address: str) -> str:
        return str(self._nodes["M"].w3.to_checksum_address(address))


def _delivery(msg: OutboxMessage) -> tuple[str, tuple[Any, ...]]:
    if msg.kind == digests.KIND_TASK:
        return "receive_task", (msg.task_id, *msg.fields)
    if msg.kind == digests.KIND_ROUND_OPEN:
        return "receive_round_open", (msg.task_id, msg.round_no)
    return "receive_global_model", (msg.task_id, msg.round_no, *msg.fields)


def _tampered(batch: UpdateBatch) -> UpdateBatch:
    """The batch a lying relayer presents: the first record claims one more sample."""
    first, *rest = batch.records
    forged = UpdateRecord(**{**first.__dict__, "samples": first.samples + 1})
    return UpdateBatch(batch.task_id, batch.round_no, (forged, *rest))


def _require_hash(value: object, name: str, where: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput(
            f"The {name!r} parameter of {where} must be 32 bytes (a sha256). Got {value!r} instead."
        )


def _chain_key(chain: str) -> str:
    if chain not in CHAIN_KEYS:
        raise InvalidInput(
            f"The 'chain' parameter must be one of M, R, P, V. Got {chain!r} instead."
        )
    return chain


def _funders(nodes: dict[str, ChainNode], funding: dict[str, dict[str, int]]) -> dict[str, str]:
    """The unlocked account paying for set-up on each chain that needs funds (checked first)."""
    funders = {}
    for k, node in nodes.items():
        missing = sum(
            max(0, wei - int(node.w3.eth.get_balance(node.w3.to_checksum_address(a))))
            for a, wei in funding[k].items()
            if int(node.w3.eth.get_balance(node.w3.to_checksum_address(a))) < wei // 2
        )
        if missing == 0:
            continue
        accounts = node.w3.eth.accounts
        if not accounts:
            raise ChainUnavailable(
                f"chain {k} ({node.rpc_url}): the ledger's accounts need funds and the node has "
                f"no unlocked account to pay them (run anvil, or fund them yourself)"
            )
        if int(node.w3.eth.get_balance(accounts[0])) < missing:
            raise ChainUnavailable(
                f"chain {k} ({node.rpc_url}): account {accounts[0]} cannot fund {missing} wei"
            )
        funders[k] = str(accounts[0])
    return funders


def _fund(client: ChainClient, funder: str, targets: dict[str, int], log: list[Receipt]) -> None:
    """Top up each target to its amount from the node's unlocked ``funder`` account."""
    w3 = client.w3
    hashes = []
    for address, wei in targets.items():
        have = int(w3.eth.get_balance(w3.to_checksum_address(address)))
        if have >= wei // 2:
            continue
        tx: Any = {"from": funder, "to": w3.to_checksum_address(address), "value": wei - have}
        hashes.append(w3.eth.send_transaction(tx))
    for h in hashes:
        rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.005)
        log.append(
            Receipt(
                chain=client.key,
                tx_hash=rcpt["transactionHash"].to_0x_hex(),
                block=int(rcpt["blockNumber"]),
                gas_used=int(rcpt["gasUsed"]),
                label="fund",
                sender=funder,
                status=bool(rcpt["status"]),
                fee_wei=int(rcpt["gasUsed"]) * int(rcpt.get("effectiveGasPrice") or 0),
            )
        )


def _deploy(clients: dict[str, ChainClient], cfg: LedgerConfig, parties: Parties) -> dict[str, str]:
    """Deploy the four contracts and wire them: sources on M, chains and validators on R."""
    d = parties.deployer
    committee = [s.address for s in parties.committee]
    k = cfg.threshold
    m_id = clients["M"].chain_id
    addresses = {
        "M": clients["M"].deploy(d, load("main"), committee, k),
        "R": clients["R"].deploy(d, load("relay"), committee, k),
    }
    for space, number in SPACES.items():
        addresses[space] = clients[space].deploy(
            d, load("subchain"), committee, k, m_id, addresses["M"], number
        )
    main = clients["M"].contract(load("main"), addresses["M"])
    relay = clients["R"].contract(load("relay"), addresses["R"])
    for space, number in SPACES.items():
        clients["M"].transact(
            d, main, "register_source", clients[space].chain_id, addresses[space], number
        )
    for key in ("M", "P", "V"):
        clients["R"].transact(
            d,
            relay,
            "register_chain",
            clients[key].chain_id,
            CHAIN_NAMES[key],
            [v.address for v in parties.validators[key]],
            cfg.subchain_threshold,
        )
    return addresses


def _check_deployment(
    nodes: dict[str, ChainNode], addresses: dict[str, str], cfg: LedgerConfig, parties: Parties
) -> None:
    """Check the contracts of an RPC file exist and use this config's committee and validators."""
    committee = [s.address for s in parties.committee]
    for k in CHAIN_KEYS:
        w3 = nodes[k].w3
        try:
            address = w3.to_checksum_address(addresses[k])
        except ValueError:
            raise ChainUnavailable(f"chain {k}: {addresses[k]!r} is not an address") from None
        if not w3.eth.get_code(address):
            raise ChainUnavailable(f"chain {k}: no contract at {address} on {nodes[k].rpc_url}")
        contract = w3.eth.contract(address=address, abi=load(CONTRACT_OF[k]).abi)
        try:
            members = list(contract.functions.members(0).call())
            threshold = int(contract.functions.threshold(0).call())
        except Exception as exc:
            raise ChainUnavailable(
                f"chain {k}: the contract at {address} is not aoichain's ({exc})"
            ) from None
        if members != committee or threshold != cfg.threshold:
            raise ChainUnavailable(
                f"chain {k}: the deployed relay committee ({threshold} of {len(members)}) is not "
                f"the one of seed {cfg.key_seed} with committee_size={cfg.committee_size}, "
                f"threshold={cfg.threshold}; attach with the seed and sizes it was deployed with"
            )
    relay = nodes["R"].w3.eth.contract(
        address=nodes["R"].w3.to_checksum_address(addresses["R"]), abi=load("relay").abi
    )
    for key in ("M", "P", "V"):
        deployed = list(relay.functions.members(nodes[key].chain_id).call())
        wanted = [v.address for v in parties.validators[key]]
        if (
            deployed != wanted
            or int(relay.functions.threshold(nodes[key].chain_id).call()) != cfg.subchain_threshold
        ):
            raise ChainUnavailable(
                f"chain {key}: the validators registered on the relay chain are not those of seed "
                f"{cfg.key_seed} with subchain_validators={cfg.subchain_validators}, "
                f"subchain_threshold={cfg.subchain_threshold}"
            )

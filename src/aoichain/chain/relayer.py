"""The relayer: carries messages between chains. Trusted by nobody; it can delay, not forge.

For each message the relayer

1. asks the source chain's validators to checkpoint a block on R: it
   proposes the block its own node shows and, should too few agree (its own
   node may lie), the blocks the validators' own nodes show;
2. fetches an ``eth_getProof`` answer for the message's storage from its
   own node of the source chain and asks committee members, in turn, to
   attest; it needs ``k`` of them;
3. records the message on R (``forward``) and delivers it to the
   destination contract, which checks the ``k`` signatures again.

It sends from its own key, paying gas, and never needs anyone else's key.
Messages: a task, a round opening and a global model (M -> every
subchain), and a round's update records (each subchain -> M).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from aoichain.chain import digests
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.committee import Attester, collect_signatures
from aoichain.chain.deployment import Deployment, contract_of
from aoichain.chain.digests import UpdateRecord
from aoichain.chain.errors import AttestationRefused, ChainRejected, ChainUnavailable
from aoichain.chain.keys import Signature, Signer, sort_signatures
from aoichain.chain.messages import WHAT, Envelope, OutboxMessage, RoundRecords
from aoichain.chain.proofs import StorageProof, verify_storage
from aoichain.chain.views import BlockHeader, ChainView
from aoichain.errors import IntegrityError, InvalidInput

#: How often the relayer reads a proof that does not verify against its block before giving up.
PROOF_READS = 3
#: Checkpoints the relayer tries for one message when its node cannot prove a block's state.
CHECKPOINT_TRIES = 3


class Checkpointer(Protocol):
    """What a relayer asks of a validator (in process or behind a channel)."""

    @property
    def address(self) -> str: ...

    def header(self, number: int | str = "latest") -> BlockHeader: ...

    def sign_checkpoint(
        self, relay_chain_id: int, relay_contract: str, header: BlockHeader
    ) -> Signature: ...


@dataclass
class Refusal:
    """A message the committee refused to sign (only expected with a lying relayer)."""

    task_id: int
    round_no: int
    chain: str
    reason: str


@dataclass
class Relayer:
    """One relayer: its own key, its own views of every chain, and whom to ask for signatures.

    Parameters
    ----------
    signer : Signer
        The relayer's key (it pays for checkpoints, forwards and deliveries).
    clients : mapping
        A transaction client per chain key, over the relayer's own views.
    deployment : Deployment
        The public record: chains, contracts, committee, validator sets.
    validators : mapping
        Each chain's validators (M and every subchain), as :class:`Checkpointer`.
    committee : sequence
        The relay committee, as :class:`Attester`.
    """

    signer: Signer
    clients: Mapping[str, ChainClient]
    deployment: Deployment
    validators: Mapping[str, Sequence[Checkpointer]]
    committee: Sequence[Attester]
    #: Messages the committee refused (a lying relayer's, in fault-injection runs).
    refusals: list[Refusal] = field(default_factory=list)
    #: Where each round opened on each subchain (block numbers), to read its records from.
    _opened_at: dict[tuple[str, int, int], int] = field(default_factory=dict)
    _contracts: dict[str, Any] = field(default_factory=dict)

    def view(self, key: str) -> ChainView:
        """The relayer's own view of chain ``key``."""
        return self.clients[key].view

    def _contract(self, key: str) -> Any:
        if key not in self._contracts:
            self._contracts[key] = self.clients[key].contract(
                load(contract_of(key)), self.deployment.chains[key].contract
            )
        return self._contracts[key]

    def _call(self, key: str, fn: str, *args: Any, block: int | str = "latest") -> Any:
        return self.clients[key].call(self._contract(key), fn, *args, block=block)

    def _carry(self, key: str, fn: str, *args: Any, label: str, done: Callable[[], bool]) -> Any:
        """Send ``fn(*args)`` on chain ``key``; None if it reverted because ``done()``:
        someone carried the same signed checkpoint or message first (anyone may: a
        second relayer, or a copy of this very transaction mined before it)."""
        try:
            return self.clients[key].transact(
                self.signer, self._contract(key), fn, *args, label=label
            )
        except ChainRejected:
            if done():
                return None
            raise

    def _holds(self, chain_id: int, body: RoundRecords) -> bool:
        """Whether M holds ``body``'s records (or more) of its round from chain ``chain_id``."""
        held = self._call("M", "inbound_count", chain_id, body.task_id, body.round_no)
        return int(held) >= body.count

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, key: str) -> int:
        """Checkpoint chain ``key``'s latest block on R (reusing an identical one); its number.

        Raises
        ------
        AttestationRefused
            If fewer than the chain's validator threshold sign any version of the block.
        """
        chain = self.deployment.chains[key]
        proposal = self.view(key).block("latest")
        held = self._call("R", "checkpoint", chain.chain_id, proposal.number)
        if BlockHeader(proposal.number, bytes(held[0]), bytes(held[1])) == proposal:
            return proposal.number
        relay = self.deployment.chains["R"]
        validators = list(self.validators[key])
        candidates = [proposal]
        signed: list[tuple[str, Signature]] = []
        refusals: list[str] = []
        for header in candidates:
            signed, refusals = [], []
            for v in validators:
                try:
                    signed.append(
                        (v.address, v.sign_checkpoint(relay.chain_id, relay.contract, header))
                    )
                except (IntegrityError, ChainUnavailable) as exc:
                    refusals.append(str(exc))
                    if header is proposal:
                        candidates += self._other_views(v, header, candidates)
                if len(signed) == chain.validator_threshold:
                    self._submit_checkpoint(key, header, signed)
                    return header.number
        raise AttestationRefused(
            f"too few validators of chain {key} sign block {proposal.number}: {'; '.join(refusals)}"
        )

    @staticmethod
    def _other_views(
        validator: Checkpointer, header: BlockHeader, seen: Sequence[BlockHeader]
    ) -> list[BlockHeader]:
        try:
            theirs = validator.header(header.number)
        except ChainUnavailable:
            return []
        return [] if theirs in seen else [theirs]

    def _submit_checkpoint(
        self, key: str, header: BlockHeader, signed: list[tuple[str, Signature]]
    ) -> None:
        chain_id = self.deployment.chains[key].chain_id

        def held() -> bool:
            h, root = self._call("R", "checkpoint", chain_id, header.number)
            return BlockHeader(header.number, bytes(h), bytes(root)) == header

        self._carry(
            "R",
            "submit_checkpoint",
            chain_id,
            header.number,
            header.block_hash,
            header.state_root,
            [s.as_tuple() for s in sort_signatures(signed)],
            label=f"checkpoint {key}",
            done=held,
        )

    # --------------------------------------------------------------------- messages

    def envelope(
        self, src: str, dst: str, block: int, body: RoundRecords | OutboxMessage
    ) -> Envelope:
        """A message from ``src``'s contract at ``block`` to ``dst``'s contract."""
        s, d = self.deployment.chains[src], self.deployment.chains[dst]
        return Envelope(src, s.chain_id, s.contract, block, dst, d.chain_id, d.contract, body)

    def attest(self, envelope: Envelope) -> list[Signature]:
        """Prove ``envelope`` from the relayer's own node; collect ``k`` committee signatures.

        A node may answer a proof at its head block from a state that a block being
        mined at that moment has already changed (anvil does, measured: 5 of 300
        proofs with blocks mined alongside); the relayer checks its proof against the
        block's state root first and asks again, a few times, before the committee
        sees it. The members check it themselves in any case.
        """
        proof = self._proof(envelope)
        if proof is None:  # the members will say why
            proof = self.view(envelope.src_key).get_proof(
                envelope.src_contract, list(envelope.body.claims()), envelope.src_block
            )
        return collect_signatures(self.committee, self.deployment.threshold, envelope, proof)

    def _proof(self, envelope: Envelope) -> StorageProof | None:
        """A proof of the envelope's claims from the relayer's node that verifies against its
        block's state root (read up to ``PROOF_READS`` times), or None."""
        view, slots = self.view(envelope.src_key), list(envelope.body.claims())
        root = view.block(envelope.src_block).state_root
        for _ in range(PROOF_READS):
            proof = view.get_proof(envelope.src_contract, slots, envelope.src_block)
            try:
                verify_storage(root, proof, slots)
                return proof
            except IntegrityError:
                continue
        return None

    def _attested(
        self, key: str, build: Callable[[int], Envelope]
    ) -> tuple[Envelope, list[Signature]]:
        """Checkpoint chain ``key``, build the envelope from that block, attest it.

        A dev node whose head state was edited after its block was sealed (anvil's
        ``anvil_setBalance`` edits the head in place) cannot prove that block's state
        against its root; the relayer then checkpoints the next head, up to
        ``CHECKPOINT_TRIES`` times.
        """
        for _ in range(CHECKPOINT_TRIES - 1):
            envelope = build(self.checkpoint(key))
            proof = self._proof(envelope)
            if proof is not None:
                signatures = collect_signatures(
                    self.committee, self.deployment.threshold, envelope, proof
                )
                return envelope, signatures
        envelope = build(self.checkpoint(key))
        return envelope, self.attest(envelope)

    def forward(self, envelope: Envelope, signatures: Sequence[Signature]) -> None:
        """Record an attested message on the relay chain."""
        self._carry(
            "R",
            "forward",
            envelope.src_chain_id,
            envelope.src_contract,
            envelope.src_block,
            envelope.dst_chain_id,
            envelope.dst_contract,
            envelope.body.nonce(),
            envelope.body.payload_hash(),
            [s.as_tuple() for s in signatures],
            label=f"forward {envelope.src_key}->{envelope.dst_key}",
            done=lambda: bool(self._call("R", "forwarded", envelope.digest())),
        )

    # ------------------------------------------------------------------- M -> subchains

    def outbox_message(self, kind: int, task_id: int, round_no: int, block: int) -> OutboxMessage:
        """The main chain's outbox entry of ``kind`` for (task, round), read at ``block``.

        Raises
        ------
        InvalidInput
            If M holds no such message.
        """
        nonce = int(self._call("M", "message_nonce", kind, task_id, round_no, block=block))
        if nonce == 0:
            raise InvalidInput(
                f"The main chain has no {WHAT[kind]} message for task {task_id}"
                + (f" round {round_no}" if kind != digests.KIND_TASK else "")
                + "; publish/open/record it first."
            )
        fields: tuple[Any, ...] = ()
        if kind == digests.KIND_TASK:
            t = self._call("M", "tasks", task_id, block=block)
            menu_f, menu_r, caps = self._call("M", "menu", task_id, block=block)
            # Task(publisher, spec_hash, rounds, target, max_workers, stride, ...)
            fields = (
                str(t[0]),
                bytes(t[1]),
                int(t[2]),
                int(t[4]),
                int(t[5]),
                list(menu_f),
                list(menu_r),
                list(caps),
            )
        elif kind == digests.KIND_GLOBAL_MODEL:
            sha = self._call("M", "global_models", task_id, round_no, block=block)
            included, pairs, opens_next = self._call(
                "M", "included_hashes", task_id, round_no, block=block
            )
            fields = (bytes(sha), bytes(included), bytes(pairs), bool(opens_next))
        return OutboxMessage(nonce, kind, task_id, round_no, fields)

    def relay_down(self, kind: int, task_id: int, round_no: int = 0) -> list[str]:
        """Carry an outbox message to every subchain that has not consumed it; their keys."""
        msg = self.outbox_message(kind, task_id, round_no, self.view("M").head())
        pending = [
            k for k in self.deployment.subchains if not self._call(k, "consumed", msg.nonce_value)
        ]
        if not pending:
            return []
        fn, args = msg.delivery()
        for dst in pending:
            envelope, signatures = self._attested("M", partial(self.envelope, "M", dst, body=msg))
            block = envelope.src_block
            self.forward(envelope, signatures)
            rcpt = self._carry(
                dst,
                fn,
                block,
                msg.nonce_value,
                *args,
                [s.as_tuple() for s in signatures],
                label=f"{fn} M->{dst}",
                done=partial(self._call, dst, "consumed", msg.nonce_value),
            )
            if rcpt is not None and kind == digests.KIND_ROUND_OPEN:
                self._opened_at[(dst, task_id, round_no)] = int(rcpt["blockNumber"])
            elif rcpt is not None and kind == digests.KIND_GLOBAL_MODEL and msg.fields[-1]:
                self._opened_at[(dst, task_id, round_no + 1)] = int(rcpt["blockNumber"])
        return pending

    def relay_task(self, task_id: int) -> list[str]:
        """Carry a published task to every subchain (idempotent)."""
        return self.relay_down(digests.KIND_TASK, task_id)

    def relay_round_open(self, task_id: int, round_no: int) -> list[str]:
        """Carry a round opening to every subchain (idempotent)."""
        return self.relay_down(digests.KIND_ROUND_OPEN, task_id, round_no)

    def relay_global_model(self, task_id: int, round_no: int) -> list[str]:
        """Carry a recorded global model (and the next round's opening, if it opened
        one) to every subchain (idempotent)."""
        return self.relay_down(digests.KIND_GLOBAL_MODEL, task_id, round_no)

    # ------------------------------------------------------------------- subchains -> M

    def records(self, key: str, task_id: int, round_no: int, block: int) -> list[UpdateRecord]:
        """The update records of (task, round) subchain ``key`` held at ``block``, in order.

        Read from the ``UpdateSubmitted`` logs of the relayer's own node;
        the committee checks them against the subchain's proven hash chain.
        """
        contract = self._contract(key)
        start = self._opened_at.get((key, task_id, round_no), 0)
        logs = self.view(key).logs(
            contract.events.UpdateSubmitted, start, block, task_id=task_id, round_no=round_no
        )
        return [
            UpdateRecord(
                task_id=task_id,
                round_no=round_no,
                worker=str(e["args"]["worker"]),
                index=int(e["args"]["index"]),
                update_sha256=bytes(e["args"]["update_sha256"]),
                samples=int(e["args"]["samples"]),
                data_timestamp=int(e["args"]["data_timestamp"]),
            )
            for e in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))
        ]

    def relay_records(
        self, task_id: int, round_no: int, *, lying: bool | str = False
    ) -> list[tuple[str, RoundRecords]]:
        """Carry each subchain's new records of a round to M; what M newly accepted.

        Parameters
        ----------
        task_id, round_no
            The round.
        lying
            Fault injection: ``True`` (every subchain) or a subchain key makes
            the relayer claim one more sample for the first record. The
            members' proofs expose it and they refuse; the round's records
            stay on the subchain for an honest relayer, and the refusal is
            appended to :attr:`refusals`.

        Returns
        -------
        list of (subchain key, RoundRecords)
            Every subchain's records M accepted by this call (all the round's
            records that subchain held; M counts only those beyond what it had).
        """
        delivered = []
        for key in self.deployment.subchains:
            chain_id = self.deployment.chains[key].chain_id
            held = int(self._call(key, "record_count", task_id, round_no))
            done = int(self._call("M", "inbound_count", chain_id, task_id, round_no))
            if held <= done:
                continue

            def build(block: int, key: str = key) -> Envelope:
                body = RoundRecords(
                    task_id, round_no, tuple(self.records(key, task_id, round_no, block))
                )
                if lying is True or lying == key:
                    first, *rest = body.records
                    body = replace(body, records=(replace(first, samples=first.samples + 1), *rest))
                return self.envelope(key, "M", block, body)

            try:
                envelope, signatures = self._attested(key, build)
            except AttestationRefused as exc:
                if not lying:
                    raise
                self.refusals.append(Refusal(task_id, round_no, key, str(exc)))
                continue
            self.forward(envelope, signatures)
            block, body = envelope.src_block, envelope.body
            assert isinstance(body, RoundRecords)
            indices, words = body.word_lists()
            self._carry(
                "M",
                "deliver_records",
                chain_id,
                block,
                task_id,
                round_no,
                body.count,
                body.acc,
                indices,
                words,
                [s.as_tuple() for s in signatures],
                label=f"deliver_records {key}->M",
                done=partial(self._holds, chain_id, body),
            )
            delivered.append((key, body))
        return delivered

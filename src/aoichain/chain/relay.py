"""The cross-chain protocol's parties: validators, committee members, the relayer.

A message travels from a source contract to a destination contract through
the relay chain R in four steps:

1. **Checkpoint**: the source chain's validators each read block ``B`` from
   their own node and sign ``(chain id, B, hash, stateRoot)``; R accepts the
   checkpoint with ``subchain_threshold`` of their signatures.
2. **Attest**: each relay committee member reads the checkpointed state root
   from R, verifies the relayer's ``eth_getProof`` answer against it, reads
   the proven storage slots, recomputes the payload from the message body
   and signs the message digest only if the two agree. A relayer that lies
   about the payload (or hands over a proof of anything else) gets no
   signature: :class:`~aoichain.chain.errors.AttestationRefused`.
3. **Forward**: R records the message (source block must be checkpointed,
   ``k`` committee signatures, each message once).
4. **Deliver**: the destination contract checks ``k`` committee signatures
   over the digest bound to its own chain id and address, and the nonce.

Messages are batched: one per subchain per round for update records
(P/V -> M), one per destination for each main-chain outbox entry (M -> P, V).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web3.contract import Contract

from aoichain.chain import digests
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.digests import UpdateRecord
from aoichain.chain.errors import AttestationRefused
from aoichain.chain.keys import Signature, Signer, sort_signatures
from aoichain.chain.nodes import ChainNode
from aoichain.chain.proofs import StorageProof, verify_storage
from aoichain.errors import IntegrityError


@dataclass(frozen=True)
class UpdateBatch:
    """Body of a P/V -> M message: every record of (task, round) at the source block."""

    task_id: int
    round_no: int
    records: tuple[UpdateRecord, ...]

    def payload_hash(self) -> bytes:
        """The records' hash chain (what the subchain keeps in ``acc``)."""
        return digests.records_hash(self.records)

    def nonce(self) -> int:
        """The batch's nonce: channel (task, round) and record count."""
        return digests.batch_nonce(self.task_id, self.round_no, len(self.records))

    def claims(self) -> dict[int, bytes]:
        """Storage of the subchain contract this body asserts: ``acc`` and ``record_count``."""
        art = load("subchain")
        return {
            digests.mapping_slot(art.slot("acc"), self.task_id, self.round_no): self.payload_hash(),
            digests.mapping_slot(art.slot("record_count"), self.task_id, self.round_no): len(
                self.records
            ).to_bytes(32, "big"),
        }


@dataclass(frozen=True)
class OutboxMessage:
    """Body of an M -> P, V message: one entry of the main chain's outbox.

    ``fields`` holds the message's content by kind: the task's parameters and
    menu (``KIND_TASK``), nothing more (``KIND_ROUND_OPEN``), or the global
    model hash and included updates (``KIND_GLOBAL_MODEL``).
    """

    nonce_value: int
    kind: int
    task_id: int
    round_no: int
    fields: tuple[Any, ...] = ()

    def payload_hash(self) -> bytes:
        """The payload hash, recomputed from the content (never taken on trust)."""
        if self.kind == digests.KIND_TASK:
            return digests.task_payload(self.task_id, *self.fields)
        if self.kind == digests.KIND_ROUND_OPEN:
            return digests.round_open_payload(self.task_id, self.round_no)
        if self.kind == digests.KIND_GLOBAL_MODEL:
            return digests.global_model_payload(self.task_id, self.round_no, *self.fields)
        raise ValueError(f"unknown message kind {self.kind}")

    def nonce(self) -> int:
        """The outbox nonce."""
        return self.nonce_value

    def claims(self) -> dict[int, bytes]:
        """Storage of the main contract this body asserts: ``outbox[nonce]``."""
        return {
            digests.mapping_slot(load("main").slot("outbox"), self.nonce_value): self.payload_hash()
        }


Body = UpdateBatch | OutboxMessage
SUBCHAINS = ("P", "V")


@dataclass(frozen=True)
class Envelope:
    """A message from a checkpointed source block to one destination contract."""

    src_key: str
    src_chain_id: int
    src_contract: str
    src_block: int
    dst_key: str
    dst_chain_id: int
    dst_contract: str
    body: Body

    def digest(self) -> bytes:
        """The digest the committee signs (see :func:`aoichain.chain.digests.message_digest`)."""
        return digests.message_digest(
            self.src_chain_id,
            self.src_contract,
            self.src_block,
            self.dst_chain_id,
            self.dst_contract,
            self.body.nonce(),
            self.body.payload_hash(),
        )


class Validator:
    """A validator of one chain: signs a checkpoint only of a block its node shows."""

    def __init__(self, signer: Signer, node: ChainNode):
        self.signer = signer
        self.node = node

    @property
    def address(self) -> str:
        """The validator's address."""
        return self.signer.address

    def sign_checkpoint(
        self,
        relay_chain_id: int,
        relay_contract: str,
        number: int,
        block_hash: bytes,
        state_root: bytes,
    ) -> Signature:
        """Sign a checkpoint of this validator's chain for the relay contract.

        Raises
        ------
        IntegrityError
            If the block this validator sees differs from the one proposed.
        """
        block = self.node.w3.eth.get_block(number)
        if bytes(block["hash"]) != block_hash or bytes(block["stateRoot"]) != state_root:
            raise IntegrityError(
                f"validator {self.address}: block {number} of chain {self.node.key} is not "
                f"0x{block_hash.hex()} with state root 0x{state_root.hex()}"
            )
        return self.signer.sign_digest(
            digests.checkpoint_digest(
                relay_chain_id, relay_contract, self.node.chain_id, number, block_hash, state_root
            )
        )


class CommitteeMember:
    """A relay committee member: signs a message only after proving it against R's checkpoint."""

    def __init__(
        self,
        signer: Signer,
        relay: ChainClient,
        relay_contract: Contract,
        contracts: Mapping[int, tuple[str, str]],
    ):
        """``contracts`` maps each chain id to its key and aoichain contract address."""
        self.signer = signer
        self._relay = relay
        self._relay_contract = relay_contract
        self._contracts = {cid: (key, addr.lower()) for cid, (key, addr) in contracts.items()}

    def _check_route(self, envelope: Envelope) -> None:
        src = self._contracts.get(envelope.src_chain_id)
        dst = self._contracts.get(envelope.dst_chain_id)
        if src is None or src[1] != envelope.src_contract.lower():
            raise IntegrityError(f"member {self.address}: the source is not aoichain's contract")
        if dst is None or dst[1] != envelope.dst_contract.lower():
            raise IntegrityError(
                f"member {self.address}: the destination is not aoichain's contract"
            )
        if isinstance(envelope.body, UpdateBatch):
            allowed = src[0] in SUBCHAINS and dst[0] == "M"
        else:
            allowed = src[0] == "M" and dst[0] in SUBCHAINS
        if not allowed:
            raise IntegrityError(
                f"member {self.address}: no {type(envelope.body).__name__} goes "
                f"{src[0]} -> {dst[0]}"
            )

    @property
    def address(self) -> str:
        """The member's address."""
        return self.signer.address

    def attest(self, envelope: Envelope, proof: StorageProof) -> Signature:
        """Check ``envelope``'s body against the checkpointed source state; sign its digest.

        Raises
        ------
        IntegrityError
            If the route is not one of aoichain's (P, V -> M for update
            batches, M -> P, V for outbox messages, between the deployed
            contracts), the source block is not checkpointed on R, the proof does not
            verify against its state root, the proof is of another contract,
            or the proven storage differs from what the body asserts.
        """
        self._check_route(envelope)
        _block_hash, state_root = self._relay.call(
            self._relay_contract, "checkpoint", envelope.src_chain_id, envelope.src_block
        )
        if bytes(state_root) == bytes(32):
            raise IntegrityError(
                f"member {self.address}: block {envelope.src_block} of chain "
                f"{envelope.src_key} is not checkpointed on the relay chain"
            )
        if proof.address.lower() != envelope.src_contract.lower():
            raise IntegrityError(f"member {self.address}: the proof is of another contract")
        claims = envelope.body.claims()
        proven = verify_storage(bytes(state_root), proof, list(claims))
        for slot, value in claims.items():
            if proven[slot] != value:
                raise IntegrityError(
                    f"member {self.address}: the payload differs from chain {envelope.src_key}'s "
                    f"state at block {envelope.src_block} (slot {slot:#x} holds "
                    f"0x{proven[slot].hex()}, the message says 0x{value.hex()})"
                )
        return self.signer.sign_digest(envelope.digest())


def collect_signatures(
    members: Sequence[CommitteeMember], threshold: int, envelope: Envelope, proof: StorageProof
) -> list[Signature]:
    """Ask members in turn until ``threshold`` signed; signatures sorted by signer.

    Raises
    ------
    AttestationRefused
        If fewer than ``threshold`` members accept to sign.
    """
    signed: list[tuple[str, Signature]] = []
    refusals: list[str] = []
    for member in members:
        try:
            signed.append((member.address, member.attest(envelope, proof)))
        except IntegrityError as exc:
            refusals.append(str(exc))
        if len(signed) == threshold:
            return sort_signatures(signed)
    raise AttestationRefused(
        f"only {len(signed)} of the {threshold} committee signatures needed for the message "
        f"{envelope.src_key}->{envelope.dst_key} (nonce {envelope.body.nonce():#x}); "
        f"refusals: {'; '.join(refusals)}"
    )

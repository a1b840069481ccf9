"""A relay committee member: attests a message only after proving it on its own view.

Before signing a message from a source chain's block ``B`` a member

1. checks the route: round records go from a subchain to M, outbox messages
   from M to a subchain, between the deployment's contracts only;
2. reads R's checkpoint of ``B`` through its own relay-chain node;
3. reads block ``B`` through its own node of the source chain and requires
   the same hash and state root (so a checkpoint that validators signed on
   a lying endpoint does not fool it);
4. verifies the relayer's ``eth_getProof`` answer against that state root
   and compares the proven storage with what the message says (for round
   records: the records' hash chain and count, from which the bitmap of
   submitted indices follows).

A message is accepted only with ``k`` of ``n`` members' signatures, so a
lying endpoint behind fewer than ``k`` members changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from aoichain.chain.artifacts import load
from aoichain.chain.deployment import Deployment
from aoichain.chain.errors import AttestationRefused, ChainUnavailable
from aoichain.chain.keys import Signature, Signer, sort_signatures
from aoichain.chain.messages import Envelope, RoundRecords
from aoichain.chain.proofs import StorageProof, verify_storage
from aoichain.chain.views import BlockHeader, ChainView
from aoichain.errors import IntegrityError


class Attester(Protocol):
    """What a relayer asks of a committee member (in process or behind a channel)."""

    @property
    def address(self) -> str: ...

    def attest(self, envelope: Envelope, proof: StorageProof) -> Signature: ...


class CommitteeMember:
    """One member of the relay committee: its own key and its own view of every chain.

    Parameters
    ----------
    signer : Signer
        The member's key.
    views : mapping
        Its own view of each chain, by key (R and every chain it attests from).
    deployment : Deployment
        The deployment's public record: which contracts are aoichain's.
    """

    def __init__(self, signer: Signer, views: Mapping[str, ChainView], deployment: Deployment):
        self.signer = signer
        self.views = dict(views)
        self.deployment = deployment
        self._routes = {c.chain_id: (k, c.contract.lower()) for k, c in deployment.chains.items()}
        # Checkpoints this member found equal on R and on its own node (immutable blocks).
        self._checked: dict[tuple[int, int], BlockHeader] = {}
        relay = self.views["R"]
        self._relay = relay.contract(load("relay"), deployment.chains["R"].contract)

    def __repr__(self) -> str:
        return f"CommitteeMember({self.address})"

    @property
    def address(self) -> str:
        """The member's address."""
        return self.signer.address

    def _refuse(self, why: str) -> IntegrityError:
        return IntegrityError(f"member {self.address}: {why}")

    def _check_route(self, envelope: Envelope) -> None:
        src = self._routes.get(envelope.src_chain_id)
        dst = self._routes.get(envelope.dst_chain_id)
        if src is None or src[1] != envelope.src_contract.lower():
            raise self._refuse("the source is not aoichain's contract")
        if dst is None or dst[1] != envelope.dst_contract.lower():
            raise self._refuse("the destination is not aoichain's contract")
        subchains = self.deployment.subchains
        if isinstance(envelope.body, RoundRecords):
            allowed = src[0] in subchains and dst[0] == "M"
        else:
            allowed = src[0] == "M" and dst[0] in subchains
        if not allowed:
            raise self._refuse(f"no {type(envelope.body).__name__} goes {src[0]} -> {dst[0]}")

    def checkpointed(self, envelope: Envelope) -> BlockHeader:
        """The source block as R's checkpoint and this member's own node agree on it.

        Raises
        ------
        IntegrityError
            If R has no checkpoint of the block, or the member's node shows another one.
        """
        key = (envelope.src_chain_id, envelope.src_block)
        block_hash, state_root = self.views["R"].call(
            self._relay, "checkpoint", envelope.src_chain_id, envelope.src_block
        )
        seen = self._checked.get(key)
        if seen is not None and seen == BlockHeader(key[1], bytes(block_hash), bytes(state_root)):
            return seen
        if bytes(state_root) == bytes(32):
            raise self._refuse(
                f"block {envelope.src_block} of chain {envelope.src_key} is not checkpointed on "
                f"the relay chain"
            )
        checkpoint = BlockHeader(envelope.src_block, bytes(block_hash), bytes(state_root))
        own = self.views[envelope.src_key].block(envelope.src_block)
        if own != checkpoint:
            raise self._refuse(
                f"its own node of chain {envelope.src_key} shows another block "
                f"{envelope.src_block} than the relay chain's checkpoint"
            )
        self._checked[key] = checkpoint
        return checkpoint

    def attest(self, envelope: Envelope, proof: StorageProof) -> Signature:
        """Check ``envelope``'s body against the checkpointed source state; sign its digest.

        Raises
        ------
        IntegrityError
            If any check of the module docstring fails.
        ChainUnavailable
            If one of its own nodes does not answer.
        """
        self._check_route(envelope)
        checkpoint = self.checkpointed(envelope)
        if proof.address.lower() != envelope.src_contract.lower():
            raise self._refuse("the proof is of another contract")
        claims = envelope.body.claims()
        proven = verify_storage(checkpoint.state_root, proof, list(claims))
        for slot, value in claims.items():
            if proven[slot] != value:
                raise self._refuse(
                    f"the payload differs from chain {envelope.src_key}'s state at block "
                    f"{envelope.src_block} (slot {slot:#x} holds 0x{proven[slot].hex()}, the "
                    f"message says 0x{value.hex()})"
                )
        return self.signer.sign_digest(envelope.digest())


def collect_signatures(
    members: Sequence[Attester], threshold: int, envelope: Envelope, proof: StorageProof
) -> list[Signature]:
    """Ask members in turn until ``threshold`` signed; signatures sorted by signer.

    A member that refuses, or whose own node is unavailable, is skipped.

    Raises
    ------
    AttestationRefused
        If fewer than ``threshold`` members sign, with every refusal's reason.
    """
    signed: list[tuple[str, Signature]] = []
    refusals: list[str] = []
    for member in members:
        try:
            signed.append((member.address, member.attest(envelope, proof)))
        except (IntegrityError, ChainUnavailable) as exc:
            refusals.append(str(exc))
        if len(signed) == threshold:
            return sort_signatures(signed)
    raise AttestationRefused(
        f"only {len(signed)} of the {threshold} committee signatures needed for the message "
        f"{envelope.src_key}->{envelope.dst_key} (nonce {envelope.body.nonce():#x}); "
        f"refusals: {'; '.join(refusals)}"
    )

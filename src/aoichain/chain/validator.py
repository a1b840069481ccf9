"""A validator of one chain: signs checkpoints of blocks its own node holds.

Each chain registered on the relay chain (M and every subchain) has a set of
validators; the relay chain accepts a checkpoint ``(chain, block, hash,
stateRoot)`` with ``subchain_threshold`` of their signatures. A validator
reads the block from its own node and signs only what that node shows, so
an endpoint that lies to some validators cannot make the others sign, and a
block no honest node holds (a far-future number, say) is never signed.
"""

from __future__ import annotations

from aoichain.chain import digests
from aoichain.chain.keys import Signature, Signer
from aoichain.chain.views import BlockHeader, ChainView
from aoichain.errors import IntegrityError


class Validator:
    """One validator: its own key and its own view of its chain.

    Parameters
    ----------
    signer : Signer
        The validator's key.
    view : ChainView
        Its own node of the chain it validates.
    """

    def __init__(self, signer: Signer, view: ChainView):
        self.signer = signer
        self.view = view

    def __repr__(self) -> str:
        return f"Validator({self.view.key} {self.address})"

    @property
    def address(self) -> str:
        """The validator's address."""
        return self.signer.address

    @property
    def chain(self) -> str:
        """The key of the chain it validates."""
        return self.view.key

    def header(self, number: int | str = "latest") -> BlockHeader:
        """What its own node shows for a block."""
        return self.view.block(number)

    def sign_checkpoint(
        self, relay_chain_id: int, relay_contract: str, header: BlockHeader
    ) -> Signature:
        """Sign a checkpoint of ``header`` for the relay contract, if its own node agrees.

        Raises
        ------
        IntegrityError
            If its node shows another hash or state root for that block.
        ChainUnavailable
            If its node does not answer or does not have the block.
        """
        own = self.view.block(header.number)
        if own != header:
            raise IntegrityError(
                f"validator {self.address}: block {header.number} of chain {self.chain} is not "
                f"0x{header.block_hash.hex()} with state root 0x{header.state_root.hex()} on its "
                f"own node"
            )
        return self.signer.sign_digest(
            digests.checkpoint_digest(
                relay_chain_id,
                relay_contract,
                self.view.chain_id,
                header.number,
                header.block_hash,
                header.state_root,
            )
        )

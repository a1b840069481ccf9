# pragma version 0.4.3
"""
@title relay
@notice The relay chain R: the registry of chains and their validator
        sets, checkpoints of those chains (block number, hash, state root)
        accepted only with enough validator signatures, and the record of
        every message the relay committee forwarded between chains.
@dev A forwarded message must name a checkpointed source block: that is
     the state root the committee proved the payload against. Checkpoints
     are kept by block number, in any order: a checkpoint of a far-future
     block cannot freeze a chain's bridge, and a validator quorum may
     replace a checkpoint it finds wrong (committee members also compare
     every checkpoint with their own node before they attest). Every
     revert reason starts with "relay: " (or "quorum: ").
"""

import quorum
import messages

initializes: quorum

exports: (quorum.members, quorum.threshold)


struct Checkpoint:
    block_hash: bytes32
    state_root: bytes32


event ChainRegistered:
    chain_id: indexed(uint256)
    name: String[16]
    threshold: uint256


event CheckpointAccepted:
    chain_id: indexed(uint256)
    block_number: indexed(uint256)
    block_hash: bytes32
    state_root: bytes32


event CheckpointReplaced:
    chain_id: indexed(uint256)
    block_number: indexed(uint256)
    block_hash: bytes32
    state_root: bytes32


event MessageForwarded:
    digest: indexed(bytes32)
    src_chain_id: uint256
    src_block: uint256
    dst_chain_id: uint256
    nonce: uint256
    payload_hash: bytes32


owner: public(address)
chain_names: public(HashMap[uint256, String[16]])
latest_checkpoint: public(HashMap[uint256, uint256])
_checkpoints: HashMap[uint256, HashMap[uint256, Checkpoint]]
forwarded: public(HashMap[bytes32, bool])
forwarded_count: public(uint256)


@deploy
def __init__(committee: DynArray[address, quorum.MAX_MEMBERS], threshold: uint256):
    """
    @notice Deploy the relay chain contract with its relay committee.
    @param committee The relay committee members (n).
    @param threshold How many committee signatures a message needs (k).
    """
    self.owner = msg.sender
    quorum._define(quorum.COMMITTEE, committee, threshold)


@external
def register_chain(
    chain_id: uint256,
    name: String[16],
    validators: DynArray[address, quorum.MAX_MEMBERS],
    threshold: uint256,
):
    """
    @notice Register a chain and the validator set that signs its checkpoints.
    @param chain_id The chain's id (not 0, not the relay chain's own).
    @param name A short name, e.g. "main", "physical", "virtual".
    @param validators The chain's validators.
    @param threshold How many validator signatures a checkpoint needs.
    """
    assert msg.sender == self.owner, "relay: caller is not the owner"
    assert chain_id != quorum.COMMITTEE and chain_id != chain.id, "relay: invalid chain id"
    assert len(self.chain_names[chain_id]) == 0, "relay: chain already registered"
    assert len(name) > 0, "relay: empty chain name"
    self.chain_names[chain_id] = name
    quorum._define(chain_id, validators, threshold)
    log ChainRegistered(chain_id=chain_id, name=name, threshold=threshold)


@external
def submit_checkpoint(
    chain_id: uint256,
    block_number: uint256,
    block_hash: bytes32,
    state_root: bytes32,
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Record a block of a registered chain, signed by its validators.
    @dev A block already checkpointed with other values is replaced (the
         same quorum rule applies); the same values twice are refused.
    @param chain_id The chain.
    @param block_number The block's number.
    @param block_hash The block's hash.
    @param state_root The block's state root.
    @param signatures Validator signatures, sorted by signer address.
    """
    assert len(self.chain_names[chain_id]) > 0, "relay: unknown chain"
    assert state_root != empty(bytes32), "relay: zero state root"
    old: Checkpoint = self._checkpoints[chain_id][block_number]
    assert old.block_hash != block_hash or old.state_root != state_root, "relay: checkpoint already recorded"
    digest: bytes32 = messages._checkpoint_digest(
        chain.id, self, chain_id, block_number, block_hash, state_root
    )
    quorum._require(chain_id, digest, signatures)
    self._checkpoints[chain_id][block_number] = Checkpoint(block_hash=block_hash, state_root=state_root)
    if block_number > self.latest_checkpoint[chain_id]:
        self.latest_checkpoint[chain_id] = block_number
    if old.state_root != empty(bytes32):
        log CheckpointReplaced(
            chain_id=chain_id, block_number=block_number, block_hash=block_hash, state_root=state_root
        )
    else:
        log CheckpointAccepted(
            chain_id=chain_id, block_number=block_number, block_hash=block_hash, state_root=state_root
        )


@external
def forward(
    src_chain_id: uint256,
    src_contract: address,
    src_block: uint256,
    dst_chain_id: uint256,
    dst_contract: address,
    nonce: uint256,
    payload_hash: bytes32,
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Record a message the relay committee attested, on its way from
            a checkpointed source block to its destination.
    @param src_chain_id Source chain id.
    @param src_contract Source contract.
    @param src_block The checkpointed source block.
    @param dst_chain_id Destination chain id (a registered chain).
    @param dst_contract Destination contract.
    @param nonce Message nonce.
    @param payload_hash Hash of the payload.
    @param signatures Committee signatures, sorted by signer address.
    """
    assert self._checkpoints[src_chain_id][src_block].state_root != empty(bytes32), "relay: source block not checkpointed"
    assert len(self.chain_names[dst_chain_id]) > 0, "relay: unknown destination chain"
    digest: bytes32 = messages._message_digest(
        src_chain_id, src_contract, src_block, dst_chain_id, dst_contract, nonce, payload_hash
    )
    assert not self.forwarded[digest], "relay: message already forwarded"
    quorum._require(quorum.COMMITTEE, digest, signatures)
    self.forwarded[digest] = True
    self.forwarded_count += 1
    log MessageForwarded(
        digest=digest,
        src_chain_id=src_chain_id,
        src_block=src_block,
        dst_chain_id=dst_chain_id,
        nonce=nonce,
        payload_hash=payload_hash,
    )


@external
@view
def checkpoint(chain_id: uint256, block_number: uint256) -> Checkpoint:
    """
    @notice A checkpointed block (zero hashes if none).
    @param chain_id The chain.
    @param block_number The block number.
    @return The block hash and state root.
    """
    return self._checkpoints[chain_id][block_number]


@external
@view
def checkpoint_digest(
    chain_id: uint256, block_number: uint256, block_hash: bytes32, state_root: bytes32
) -> bytes32:
    """
    @notice The digest a chain's validators sign for a checkpoint here.
    @param chain_id The chain.
    @param block_number The block number.
    @param block_hash The block hash.
    @param state_root The state root.
    @return The digest.
    """
    return messages._checkpoint_digest(chain.id, self, chain_id, block_number, block_hash, state_root)

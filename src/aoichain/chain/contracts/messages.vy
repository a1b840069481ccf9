# pragma version 0.4.3
"""
@title messages
@notice The digests signed by the relay committee and by chain validators,
        and the hash chain that commits a round's update records.
@dev Pure functions only; aoichain.chain.digests computes the same values in
     Python (a property test checks they agree). Every digest starts with a
     domain tag and binds the chain id and contract that will verify it, so
     a signature for one chain or contract never verifies on another,
     whatever chain id the transaction carried.
"""

MESSAGE_TAG: constant(bytes32) = keccak256("aoichain.message.v1")
CHECKPOINT_TAG: constant(bytes32) = keccak256("aoichain.checkpoint.v1")
RECORD_TAG: constant(bytes32) = keccak256("aoichain.record.v1")

# Kinds of main-chain outbox messages (M -> R -> P and V).
KIND_TASK: constant(uint256) = 1
KIND_ROUND_OPEN: constant(uint256) = 2
KIND_GLOBAL_MODEL: constant(uint256) = 3

MAX_MENU: constant(uint256) = 16
# Bounded so that the largest batch stays well under a 30M-gas block on M.
MAX_BATCH: constant(uint256) = 128
MAX_INCLUDED: constant(uint256) = 256


struct UpdateRecord:
    task_id: uint256
    round_no: uint256
    worker: address
    update_sha256: bytes32
    samples: uint256
    data_timestamp: uint256
    item: uint256


@internal
@pure
def _message_digest(
    src_chain_id: uint256,
    src_contract: address,
    src_block: uint256,
    dst_chain_id: uint256,
    dst_contract: address,
    nonce: uint256,
    payload_hash: bytes32,
) -> bytes32:
    return keccak256(
        abi_encode(
            MESSAGE_TAG,
            src_chain_id,
            src_contract,
            src_block,
            dst_chain_id,
            dst_contract,
            nonce,
            payload_hash,
        )
    )


@internal
@pure
def _checkpoint_digest(
    relay_chain_id: uint256,
    relay_contract: address,
    chain_id: uint256,
    block_number: uint256,
    block_hash: bytes32,
    state_root: bytes32,
) -> bytes32:
    return keccak256(
        abi_encode(
            CHECKPOINT_TAG,
            relay_chain_id,
            relay_contract,
            chain_id,
            block_number,
            block_hash,
            state_root,
        )
    )


@internal
@pure
def _chain_record(acc: bytes32, rec: UpdateRecord) -> bytes32:
    return keccak256(
        abi_encode(
            RECORD_TAG,
            acc,
            rec.task_id,
            rec.round_no,
            rec.worker,
            rec.update_sha256,
            rec.samples,
            rec.data_timestamp,
            rec.item,
        )
    )


@internal
@pure
def _batch_nonce(task_id: uint256, round_no: uint256, count: uint256) -> uint256:
    # An update batch is named by its channel (task, round) and how many
    # records of that channel it covers; each part is far below 2**64.
    return (task_id << 128) | (round_no << 64) | count


@internal
@pure
def _task_payload(
    task_id: uint256,
    spec_hash: bytes32,
    rounds: uint256,
    target_accuracy_ppm: uint256,
    max_workers: uint256,
    menu_f_micro: DynArray[uint256, MAX_MENU],
    menu_reward_wei: DynArray[uint256, MAX_MENU],
) -> bytes32:
    return keccak256(
        abi_encode(
            KIND_TASK,
            task_id,
            spec_hash,
            rounds,
            target_accuracy_ppm,
            max_workers,
            menu_f_micro,
            menu_reward_wei,
        )
    )


@internal
@pure
def _round_open_payload(task_id: uint256, round_no: uint256) -> bytes32:
    return keccak256(abi_encode(KIND_ROUND_OPEN, task_id, round_no))


@internal
@pure
def _global_model_payload(
    task_id: uint256,
    round_no: uint256,
    global_sha256: bytes32,
    included: DynArray[bytes32, MAX_INCLUDED],
) -> bytes32:
    return keccak256(abi_encode(KIND_GLOBAL_MODEL, task_id, round_no, global_sha256, included))

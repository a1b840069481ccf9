# pragma version 0.4.3
"""
@title messages
@notice The digests signed by the relay committee, by chain validators and
        by task publishers (admission tickets), the hash chain that commits
        a round's update records, and the bitmaps over worker indices.
@dev Pure functions only; aoichain.chain.digests computes the same values in
     Python (a property test checks they agree). Every digest starts with a
     domain tag and binds the chain id and contract that will verify it, so
     a signature for one chain or contract never verifies on another,
     whatever chain id the transaction carried.

     Worker indices: a task's publisher admits each worker with an index
     whose item is index // stride, where stride (a multiple of 256) is
     fixed by the task. A 256-bit word of a bitmap over indices therefore
     holds workers of one menu item only: word w is item (w * 256) // stride.
"""

MESSAGE_TAG: constant(bytes32) = keccak256("aoichain.message.v2")
CHECKPOINT_TAG: constant(bytes32) = keccak256("aoichain.checkpoint.v2")
RECORD_TAG: constant(bytes32) = keccak256("aoichain.record.v2")
TICKET_TAG: constant(bytes32) = keccak256("aoichain.ticket.v1")
ROUND_TAG: constant(bytes32) = keccak256("aoichain.round.v1")

# Kinds of cross-chain messages.
KIND_TASK: constant(uint256) = 1  # M -> subchains
KIND_ROUND_OPEN: constant(uint256) = 2  # M -> subchains
KIND_GLOBAL_MODEL: constant(uint256) = 3  # M -> subchains
KIND_ROUND_RECORDS: constant(uint256) = 4  # subchain -> M

MAX_MENU: constant(uint256) = 16
# Bitmap words one message or global-model record may carry: 256 words hold
# every worker of a 20,000-worker task (indices of at most 16 items).
MAX_WORDS: constant(uint256) = 256
# Rounds one claim may scan (a worker claims again for later rounds).
MAX_CLAIM_ROUNDS: constant(uint256) = 1024
WORD_BITS: constant(uint256) = 256


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
def _ticket_digest(
    subchain_id: uint256,
    subchain: address,
    task_id: uint256,
    worker: address,
    item: uint256,
    index: uint256,
) -> bytes32:
    # What a publisher signs to admit `worker` to a task on one subchain,
    # with one menu item and one worker index.
    return keccak256(abi_encode(TICKET_TAG, subchain_id, subchain, task_id, worker, item, index))


@internal
@pure
def _chain_record(
    acc: bytes32,
    task_id: uint256,
    round_no: uint256,
    worker: address,
    index: uint256,
    update_sha256: bytes32,
    samples: uint256,
    data_timestamp: uint256,
) -> bytes32:
    return keccak256(
        abi_encode(
            RECORD_TAG, acc, task_id, round_no, worker, index, update_sha256, samples, data_timestamp
        )
    )


@internal
@pure
def _round_seed(task_id: uint256, round_no: uint256) -> bytes32:
    # The start of a round's record hash chain (non-zero, so the first
    # record's write is a cheap update, not a new storage slot).
    return keccak256(abi_encode(ROUND_TAG, task_id, round_no))


@internal
@pure
def _records_nonce(task_id: uint256, round_no: uint256, count: uint256) -> uint256:
    # A round's records are named by their channel (task, round) and how
    # many records they cover; each part is far below 2**64.
    return (task_id << 128) | (round_no << 64) | count


@internal
@pure
def _words_hash(
    word_indices: DynArray[uint256, MAX_WORDS], words: DynArray[uint256, MAX_WORDS]
) -> bytes32:
    return keccak256(abi_encode(word_indices, words))


@internal
@pure
def _round_records_payload(
    task_id: uint256,
    round_no: uint256,
    count: uint256,
    acc: bytes32,
    word_indices: DynArray[uint256, MAX_WORDS],
    words: DynArray[uint256, MAX_WORDS],
) -> bytes32:
    return keccak256(
        abi_encode(KIND_ROUND_RECORDS, task_id, round_no, count, acc, self._words_hash(word_indices, words))
    )


@internal
@pure
def _task_payload(
    task_id: uint256,
    publisher: address,
    spec_hash: bytes32,
    rounds: uint256,
    max_workers: uint256,
    stride: uint256,
    menu_f_micro: DynArray[uint256, MAX_MENU],
    menu_reward_wei: DynArray[uint256, MAX_MENU],
    menu_max_samples: DynArray[uint256, MAX_MENU],
) -> bytes32:
    return keccak256(
        abi_encode(
            KIND_TASK,
            task_id,
            publisher,
            spec_hash,
            rounds,
            max_workers,
            stride,
            menu_f_micro,
            menu_reward_wei,
            menu_max_samples,
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
    included_hash: bytes32,
    pairs_hash: bytes32,
    opens_next: bool,
) -> bytes32:
    # `opens_next`: the same message opens round `round_no + 1` (one message a round, not two).
    return keccak256(
        abi_encode(KIND_GLOBAL_MODEL, task_id, round_no, global_sha256, included_hash, pairs_hash, opens_next)
    )


@internal
@pure
def _popcount(x: uint256) -> uint256:
    # Bits set in a 256-bit word: SWAR sums in 2-, 4-, 8-, then 16-bit lanes (a
    # byte cannot hold 256), added up by one multiplication. unsafe_ ops: no lane
    # overflows and the product's high bits are discarded on purpose.
    m1: uint256 = 38597363079105398474523661669562635951089994888546854679819194669304376546645  # 0x5555...55
    m2: uint256 = 23158417847463239084714197001737581570653996933128112807891516801582625927987  # 0x3333...33
    m4: uint256 = 6811299366900952671974763824040465167839410862684739061144563765171360567055  # 0x0f0f...0f
    m8: uint256 = 450552876409790643671482431940419874915447411150352389258589821042463539455  # 0x00ff...00ff
    h: uint256 = 1766874025136433896750911497805568136923323180981774075523881651146915841  # 0x0001...0001
    v: uint256 = unsafe_sub(x, (x >> 1) & m1)
    v = unsafe_add(v & m2, (v >> 2) & m2)
    v = unsafe_add(v, v >> 4) & m4
    v = unsafe_add(v & m8, (v >> 8) & m8)
    return unsafe_mul(v, h) >> 240


@internal
@pure
def _stride(max_workers: uint256) -> uint256:
    # Indices of one item: max_workers rounded up to whole 256-bit words.
    return (max_workers + WORD_BITS - 1) // WORD_BITS * WORD_BITS

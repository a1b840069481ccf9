"""The contracts' hashes, computed in Python (mirror of ``contracts/messages.vy``).

Committee members, validators and publishers sign these digests; the
contracts recompute them on chain and ``ecrecover`` the signers. A property
test checks that every function here returns what the Vyper code returns.

Message digest (what the relay committee signs)::

    keccak256(abi.encode(keccak256("aoichain.message.v2"),
                         src_chain_id, src_contract, src_block,
                         dst_chain_id, dst_contract, nonce, payload_hash))

It binds the destination chain id and contract, so a signature made for one
chain or contract never verifies on another, whatever chain id the carrying
transaction used (py-evm does not check it). Checkpoint digests bind the
relay chain's id and contract, admission tickets the subchain's, the same way.

Worker indices: the publisher admits each worker with an index whose menu
item is ``index // stride`` (``stride``: ``max_workers`` rounded up to 256),
so each 256-bit word of a bitmap over indices belongs to one item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak, to_canonical_address

MESSAGE_TAG = keccak(b"aoichain.message.v2")
CHECKPOINT_TAG = keccak(b"aoichain.checkpoint.v2")
RECORD_TAG = keccak(b"aoichain.record.v2")
TICKET_TAG = keccak(b"aoichain.ticket.v1")
ROUND_TAG = keccak(b"aoichain.round.v1")

KIND_TASK = 1
KIND_ROUND_OPEN = 2
KIND_GLOBAL_MODEL = 3
KIND_ROUND_RECORDS = 4

MAX_MENU = 16
MAX_WORDS = 256
MAX_CLAIM_ROUNDS = 1024
WORD_BITS = 256

#: Scale of fixed-point values on chain: frequencies and accuracies are integers in 1e-6 units.
MICRO = 1_000_000


@dataclass(frozen=True)
class UpdateRecord:
    """One worker's update for one round, as the subchain commits it (and logs it)."""

    task_id: int
    round_no: int
    worker: str
    index: int
    update_sha256: bytes
    samples: int
    data_timestamp: int


def message_digest(
    src_chain_id: int,
    src_contract: str,
    src_block: int,
    dst_chain_id: int,
    dst_contract: str,
    nonce: int,
    payload_hash: bytes,
) -> bytes:
    """The digest the relay committee signs for one message to one destination."""
    return keccak(
        encode(
            [
                "bytes32",
                "uint256",
                "address",
                "uint256",
                "uint256",
                "address",
                "uint256",
                "bytes32",
            ],
            [
                MESSAGE_TAG,
                src_chain_id,
                src_contract,
                src_block,
                dst_chain_id,
                dst_contract,
                nonce,
                payload_hash,
            ],
        )
    )


def checkpoint_digest(
    relay_chain_id: int,
    relay_contract: str,
    chain_id: int,
    block_number: int,
    block_hash: bytes,
    state_root: bytes,
) -> bytes:
    """The digest a chain's validators sign to checkpoint a block on the relay chain."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "uint256", "bytes32", "bytes32"],
            [
                CHECKPOINT_TAG,
                relay_chain_id,
                relay_contract,
                chain_id,
                block_number,
                block_hash,
                state_root,
            ],
        )
    )


def ticket_digest(
    subchain_id: int, subchain: str, task_id: int, worker: str, item: int, index: int
) -> bytes:
    """What a publisher signs to admit ``worker`` to a task on one subchain (item, index)."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "address", "uint256", "uint256"],
            [TICKET_TAG, subchain_id, subchain, task_id, worker, item, index],
        )
    )


def chain_record(acc: bytes, rec: UpdateRecord) -> bytes:
    """One step of a round's hash chain: ``acc' = H(tag, acc, record)``."""
    return keccak(
        encode(
            [
                "bytes32",
                "bytes32",
                "uint256",
                "uint256",
                "address",
                "uint256",
                "bytes32",
                "uint256",
                "uint256",
            ],
            [
                RECORD_TAG,
                acc,
                rec.task_id,
                rec.round_no,
                rec.worker,
                rec.index,
                rec.update_sha256,
                rec.samples,
                rec.data_timestamp,
            ],
        )
    )


def round_seed(task_id: int, round_no: int) -> bytes:
    """Where a round's hash chain starts (the subchain seeds it when the round opens)."""
    return keccak(encode(["bytes32", "uint256", "uint256"], [ROUND_TAG, task_id, round_no]))


def records_hash(task_id: int, round_no: int, records: Iterable[UpdateRecord]) -> bytes:
    """The hash chain over a round's records, from the round's seed."""
    acc = round_seed(task_id, round_no)
    for rec in records:
        acc = chain_record(acc, rec)
    return acc


def records_nonce(task_id: int, round_no: int, count: int) -> int:
    """The nonce of a round's records message: its channel (task, round) and record count."""
    return (task_id << 128) | (round_no << 64) | count


def words_hash(word_indices: Sequence[int], words: Sequence[int]) -> bytes:
    """Hash of a sparse bitmap (its non-zero words and their indices)."""
    return keccak(encode(["uint256[]", "uint256[]"], [list(word_indices), list(words)]))


def round_records_payload(
    task_id: int,
    round_no: int,
    count: int,
    acc: bytes,
    word_indices: Sequence[int],
    words: Sequence[int],
) -> bytes:
    """Payload hash of a subchain's round records (subchain -> M)."""
    return keccak(
        encode(
            ["uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
            [KIND_ROUND_RECORDS, task_id, round_no, count, acc, words_hash(word_indices, words)],
        )
    )


def task_payload(
    task_id: int,
    publisher: str,
    spec_hash: bytes,
    rounds: int,
    max_workers: int,
    stride: int,
    menu_f_micro: Sequence[int],
    menu_reward_wei: Sequence[int],
    menu_max_samples: Sequence[int],
) -> bytes:
    """Payload hash of a task message (M -> subchains)."""
    return keccak(
        encode(
            [
                "uint256",
                "uint256",
                "address",
                "bytes32",
                "uint256",
                "uint256",
                "uint256",
                "uint256[]",
                "uint256[]",
                "uint256[]",
            ],
            [
                KIND_TASK,
                task_id,
                publisher,
                spec_hash,
                rounds,
                max_workers,
                stride,
                list(menu_f_micro),
                list(menu_reward_wei),
                list(menu_max_samples),
            ],
        )
    )


def round_open_payload(task_id: int, round_no: int) -> bytes:
    """Payload hash of a round-opening message (M -> subchains)."""
    return keccak(encode(["uint256", "uint256", "uint256"], [KIND_ROUND_OPEN, task_id, round_no]))


def global_model_payload(
    task_id: int,
    round_no: int,
    global_sha256: bytes,
    included_hash: bytes,
    pairs_hash: bytes,
    opens_next: bool,
) -> bytes:
    """Payload hash of a global-model announcement (M -> subchains); with ``opens_next`` it
    also opens round ``round_no + 1``."""
    return keccak(
        encode(
            ["uint256", "uint256", "uint256", "bytes32", "bytes32", "bytes32", "bool"],
            [
                KIND_GLOBAL_MODEL,
                task_id,
                round_no,
                global_sha256,
                included_hash,
                pairs_hash,
                opens_next,
            ],
        )
    )


def pairs_hash(pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """The aggregator's commitment to the included (worker, update hash) pairs, in index order."""
    items = list(pairs)
    return keccak(
        encode(["address[]", "bytes32[]"], [[w for w, _ in items], [h for _, h in items]])
    )


def stride_of(max_workers: int) -> int:
    """Worker indices per menu item: ``max_workers`` rounded up to whole 256-bit words."""
    return -(-max_workers // WORD_BITS) * WORD_BITS


def bitmap(indices: Iterable[int]) -> dict[int, int]:
    """A sparse bitmap ``{word index: word}`` of the given worker indices."""
    words: dict[int, int] = {}
    for i in indices:
        words[i // WORD_BITS] = words.get(i // WORD_BITS, 0) | (1 << (i % WORD_BITS))
    return words


def bitmap_lists(words: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """A sparse bitmap as the contracts take it: ascending word indices and their non-zero words."""
    keys = sorted(k for k, w in words.items() if w)
    return keys, [words[k] for k in keys]


def indices_of(words: Mapping[int, int]) -> list[int]:
    """The worker indices a sparse bitmap holds, ascending."""
    return [k * WORD_BITS + b for k in sorted(words) for b in range(WORD_BITS) if words[k] >> b & 1]


def mapping_slot(slot: int, *keys: int | bytes | str) -> int:
    """Storage slot of ``m[k1][k2]...`` for a Vyper HashMap at ``slot``.

    Vyper 0.4 puts ``m[k]`` at ``keccak256(slot ++ k)`` (slot first, unlike
    Solidity); each key is ABI-encoded to 32 bytes.
    """
    for key in keys:
        if isinstance(key, str):
            word = to_canonical_address(key).rjust(32, b"\0")
        elif isinstance(key, bytes):
            word = key.rjust(32, b"\0")
        else:
            word = key.to_bytes(32, "big")
        slot = int.from_bytes(keccak(slot.to_bytes(32, "big") + word), "big")
    return slot

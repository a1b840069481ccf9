"""The contracts' hashes, computed in Python (mirror of ``contracts/messages.vy``).

Committee members and validators sign these digests; the contracts recompute
them on chain and ``ecrecover`` the signers. A property test checks that
every function here returns what the Vyper code returns.

Message digest (what the relay committee signs)::

    keccak256(abi.encode(keccak256("aoichain.message.v1"),
                         src_chain_id, src_contract, src_block,
                         dst_chain_id, dst_contract, nonce, payload_hash))

It binds the destination chain id and contract, so a signature made for one
chain or contract never verifies on another, whatever chain id the carrying
transaction used (py-evm does not check it). Checkpoint digests bind the
relay chain's id and contract the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_canonical_address

MESSAGE_TAG = keccak(b"aoichain.message.v1")
CHECKPOINT_TAG = keccak(b"aoichain.checkpoint.v1")
RECORD_TAG = keccak(b"aoichain.record.v1")

KIND_TASK = 1
KIND_ROUND_OPEN = 2
KIND_GLOBAL_MODEL = 3

MAX_MENU = 16
MAX_BATCH = 128
MAX_INCLUDED = 256

#: Scale of fixed-point values on chain: frequencies and accuracies are integers in 1e-6 units.
MICRO = 1_000_000


@dataclass(frozen=True)
class UpdateRecord:
    """One worker's update for one round, as the subchain stores it."""

    task_id: int
    round_no: int
    worker: str
    update_sha256: bytes
    samples: int
    data_timestamp: int
    item: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UpdateRecord:
        """From the tuple web3 returns for ``messages.UpdateRecord``."""
        return cls(
            task_id=int(row[0]),
            round_no=int(row[1]),
            worker=str(row[2]),
            update_sha256=bytes(row[3]),
            samples=int(row[4]),
            data_timestamp=int(row[5]),
            item=int(row[6]),
        )

    def as_tuple(self) -> tuple[int, int, str, bytes, int, int, int]:
        """The ABI tuple for ``messages.UpdateRecord``."""
        return (
            self.task_id,
            self.round_no,
            self.worker,
            self.update_sha256,
            self.samples,
            self.data_timestamp,
            self.item,
        )


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
                "bytes32",
                "uint256",
                "uint256",
                "uint256",
            ],
            [RECORD_TAG, acc, *rec.as_tuple()],
        )
    )


def records_hash(records: Iterable[UpdateRecord]) -> bytes:
    """The hash chain over a round's records (``bytes(32)`` for none): an update batch's payload."""
    acc = bytes(32)
    for rec in records:
        acc = chain_record(acc, rec)
    return acc


def batch_nonce(task_id: int, round_no: int, count: int) -> int:
    """The nonce of an update batch: its channel (task, round) and how many records it covers."""
    return (task_id << 128) | (round_no << 64) | count


def task_payload(
    task_id: int,
    spec_hash: bytes,
    rounds: int,
    target_accuracy_ppm: int,
    max_workers: int,
    menu_f_micro: Sequence[int],
    menu_reward_wei: Sequence[int],
) -> bytes:
    """Payload hash of a task allocation message (M -> P, V)."""
    return keccak(
        encode(
            [
                "uint256",
                "uint256",
                "bytes32",
                "uint256",
                "uint256",
                "uint256",
                "uint256[]",
                "uint256[]",
            ],
            [
                KIND_TASK,
                task_id,
                spec_hash,
                rounds,
                target_accuracy_ppm,
                max_workers,
                list(menu_f_micro),
                list(menu_reward_wei),
            ],
        )
    )


def round_open_payload(task_id: int, round_no: int) -> bytes:
    """Payload hash of a round-opening message (M -> P, V)."""
    return keccak(encode(["uint256", "uint256", "uint256"], [KIND_ROUND_OPEN, task_id, round_no]))


def global_model_payload(
    task_id: int, round_no: int, global_sha256: bytes, included: Sequence[bytes]
) -> bytes:
    """Payload hash of a global-model announcement (M -> P, V)."""
    return keccak(
        encode(
            ["uint256", "uint256", "uint256", "bytes32", "bytes32[]"],
            [KIND_GLOBAL_MODEL, task_id, round_no, global_sha256, list(included)],
        )
    )


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

"""Merkle-Patricia proofs of contract storage against a block's state root.

A relay committee member never trusts the relayer's word for what a source
chain holds: it takes an ``eth_getProof`` answer (account proof + storage
proofs), checks it against the ``stateRoot`` of a block that the source
chain's validators checkpointed on the relay chain, and only then reads the
proven storage values. Anvil serves ``eth_getProof`` natively;
:func:`pyevm_get_proof` builds the same answer from py-evm's state database
for the embedded backend (eth-tester has no such endpoint), so one verifier
serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp
import rlp.exceptions
from eth_utils import keccak, to_canonical_address, to_checksum_address
from trie import HexaryTrie
from trie.exceptions import BadTrieProof, InvalidNode
from trie.exceptions import ValidationError as TrieValidationError

from aoichain.errors import IntegrityError

BLANK_ROOT = keccak(rlp.encode(b""))


@dataclass(frozen=True)
class StorageProof:
    """An ``eth_getProof`` answer in bytes: one account and some of its slots."""

    address: str
    account_proof: tuple[bytes, ...]
    storage_proofs: dict[int, tuple[bytes, ...]]


def _unhex(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value[2:] if value.startswith("0x") else value
    return bytes.fromhex(text if len(text) % 2 == 0 else "0" + text)


def parse_get_proof(raw: dict[str, Any]) -> StorageProof:
    """Turn a JSON-RPC ``eth_getProof`` result into a :class:`StorageProof`."""
    storage = {}
    for entry in raw["storageProof"]:
        key = entry["key"]
        slot = int(key, 16) if isinstance(key, str) else int.from_bytes(key, "big")
        storage[slot] = tuple(_unhex(node) for node in entry["proof"])
    return StorageProof(
        address=to_checksum_address(raw["address"]),
        account_proof=tuple(_unhex(node) for node in raw["accountProof"]),
        storage_proofs=storage,
    )


#: Everything a malformed proof can raise while it is decoded and walked.
_MALFORMED = (
    BadTrieProof,
    TrieValidationError,
    InvalidNode,
    rlp.exceptions.RLPException,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
)


def _prove(root: bytes, key: bytes, nodes: Sequence[bytes], what: str) -> bytes:
    try:
        return bytes(HexaryTrie.get_from_proof(root, key, [rlp.decode(n) for n in nodes]))
    except _MALFORMED as exc:
        raise IntegrityError(
            f"{what}: the proof does not verify against root 0x{root.hex()}: {exc}"
        ) from None


def verify_storage(
    state_root: bytes, proof: StorageProof, slots: Sequence[int]
) -> dict[int, bytes]:
    """Check ``proof`` against ``state_root`` and return the proven value of each slot.

    Values are 32-byte big-endian words (zero for an empty slot).

    Raises
    ------
    IntegrityError
        If a node does not hash into its parent, the account is absent, or a
        requested slot has no proof.
    """
    account_rlp = _prove(
        state_root,
        keccak(to_canonical_address(proof.address)),
        proof.account_proof,
        f"account {proof.address}",
    )
    if not account_rlp:
        raise IntegrityError(
            f"account {proof.address} does not exist at state root 0x{state_root.hex()}"
        )
    try:
        _nonce, _balance, storage_root, _code_hash = rlp.decode(account_rlp)
    except (*_MALFORMED,) as exc:  # proven bytes that are not an account
        raise IntegrityError(f"account {proof.address}: not an account record: {exc}") from None
    values = {}
    for slot in slots:
        if slot not in proof.storage_proofs:
            raise IntegrityError(f"no storage proof for slot {slot:#x} of {proof.address}")
        if storage_root == BLANK_ROOT:
            values[slot] = bytes(32)
            continue
        raw = _prove(
            storage_root,
            keccak(slot.to_bytes(32, "big")),
            proof.storage_proofs[slot],
            f"slot {slot:#x}",
        )
        try:
            word = rlp.decode(raw) if raw else b""
        except _MALFORMED as exc:
            raise IntegrityError(f"slot {slot:#x}: not a storage value: {exc}") from None
        if not isinstance(word, bytes) or len(word) > 32:
            raise IntegrityError(f"slot {slot:#x}: not a storage value")
        values[slot] = word.rjust(32, b"\0")
    return values


def pyevm_get_proof(
    chain: Any, address: str, slots: Sequence[int], block_number: int
) -> dict[str, Any]:
    """Build an ``eth_getProof`` answer from a py-evm chain's state database.

    py-evm keeps every trie node it ever wrote (writes are committed without
    deletes), so the state of any past block can be proven.
    """
    db = chain.chaindb.db
    header = chain.get_canonical_block_header_by_number(block_number)
    state = HexaryTrie(db, header.state_root)
    account_key = keccak(to_canonical_address(address))
    account_rlp = state.get(account_key)
    account_proof = [rlp.encode(node) for node in state.get_proof(account_key)]
    if account_rlp:
        nonce, balance, storage_root, code_hash = rlp.decode(account_rlp)
    else:
        nonce, balance, storage_root, code_hash = b"", b"", BLANK_ROOT, keccak(b"")
    storage = HexaryTrie(db, storage_root)
    entries = []
    for slot in slots:
        key = keccak(slot.to_bytes(32, "big"))
        raw = storage.get(key) if storage_root != BLANK_ROOT else b""
        nodes = storage.get_proof(key) if storage_root != BLANK_ROOT else ()
        entries.append(
            {
                "key": "0x" + slot.to_bytes(32, "big").hex(),
                "value": hex(int.from_bytes(rlp.decode(raw), "big")) if raw else "0x0",
                "proof": ["0x" + rlp.encode(node).hex() for node in nodes],
            }
        )
    return {
        "address": to_checksum_address(address),
        "accountProof": ["0x" + node.hex() for node in account_proof],
        "balance": hex(int.from_bytes(balance, "big")),
        "codeHash": "0x" + bytes(code_hash).hex(),
        "nonce": hex(int.from_bytes(nonce, "big")),
        "storageHash": "0x" + bytes(storage_root).hex(),
        "storageProof": entries,
    }

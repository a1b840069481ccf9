"""Deterministic accounts and signing.

Every party of a run holds a secp256k1 key derived from the run's seed and
its role (``keccak256("aoichain/v1/<seed>/<role>/<index>")``), so a seed
names one reproducible set of accounts and a worker has the same address on
every chain. Digests are signed raw (no EIP-191 prefix) with coincurve; the
contracts recover the signer with ``ecrecover``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey
from eth_account import Account
from eth_utils import keccak, to_checksum_address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Signature:
    """A recoverable ECDSA signature in the contracts' ``(v, r, s)`` form."""

    v: int
    r: bytes
    s: bytes

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        """The ABI tuple for ``quorum.Signature``."""
        return (self.v, self.r, self.s)


class Signer:
    """One account: signs transactions and 32-byte digests."""

    def __init__(self, private_key: bytes, role: str = ""):
        self._key = private_key
        self._cc = PrivateKey(private_key)
        self._account = Account.from_key(private_key)
        self.address: str = self._account.address
        self.role = role

    def __repr__(self) -> str:
        return f"Signer({self.role or '?'} {self.address})"

    @property
    def private_key(self) -> bytes:
        """The raw 32-byte key (for handing to a node-side tool; never logged)."""
        return self._key

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest as-is; low-s, ``v`` in {27, 28}."""
        sig = self._cc.sign_recoverable(digest, hasher=None)
        return Signature(v=sig[64] + 27, r=sig[0:32], s=sig[32:64])

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        """Sign a transaction dict into raw bytes ready for ``eth_sendRawTransaction``."""
        return bytes(self._account.sign_transaction(tx).raw_transaction)


def derive_key(seed: int, role: str, index: int = 0) -> bytes:
    """The private key of ``role``/``index`` under ``seed``."""
    counter = 0
    while True:
        key = keccak(f"aoichain/v1/{seed}/{role}/{index}/{counter}".encode())
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
        counter += 1  # pragma: no cover - probability ~2**-128


def signer(seed: int, role: str, index: int = 0) -> Signer:
    """A :class:`Signer` for ``role``/``index`` under ``seed``."""
    return Signer(derive_key(seed, role, index), role=f"{role}{index}")


def recover(digest: bytes, sig: Signature) -> str:
    """The checksummed address that signed ``digest`` (what ``ecrecover`` returns)."""
    from coincurve import PublicKey

    raw = sig.r + sig.s + bytes([sig.v - 27])
    pub = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[-20:])


def sort_signatures(pairs: list[tuple[str, Signature]]) -> list[Signature]:
    """Signatures ordered by signer address, strictly ascending, as quorum.vy requires."""
    return [sig for _, sig in sorted(pairs, key=lambda p: int(p[0], 16))]

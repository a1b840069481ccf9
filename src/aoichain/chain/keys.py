"""Accounts: each party's own key, kept in its own keystore file.

On node backends (anvil, rpc) every party has a fresh random key, stored as
a Web3 Secret Storage keystore (:func:`eth_account.Account.encrypt`), one file
per party, mode 0600, in ``DIR/keys/`` beside ``DIR/deployments.json``. The
password comes from an environment variable (``AOICHAIN_KEY_PASSWORD`` by
default) or a password file; an empty password is allowed for loopback
demos, with a warning. Nothing public (``deployments.json``, receipts, logs)
holds or derives a secret.

:func:`insecure_signer` derives a key from a small seed and a role name. It
exists for the embedded backend and for tests only: anyone who knows the seed
knows every key. Never use it on a chain that holds value.

Digests are signed raw (no EIP-191 prefix) with coincurve, low-s, ``v`` in
{27, 28}; the contracts recover the signer with ``ecrecover``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from coincurve import PrivateKey, PublicKey
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from aoichain.errors import InvalidInput

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: The environment variable a keystore password is read from by default.
PASSWORD_ENV = "AOICHAIN_KEY_PASSWORD"
#: Key derivation work factor of the keystores aoichain writes (scrypt n).
KDF_ITERATIONS = 2**14


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
    """One party's account: signs transactions and 32-byte digests with its own key."""

    def __init__(self, private_key: bytes, role: str = ""):
        self._key = private_key
        self._cc = PrivateKey(private_key)
        self._account = Account.from_key(private_key)
        self.address: str = self._account.address
        self.role = role

    def __repr__(self) -> str:
        return f"Signer({self.role or '?'} {self.address})"

    @classmethod
    def random(cls, role: str = "") -> Signer:
        """A fresh key from the operating system's randomness."""
        while True:
            key = secrets.token_bytes(32)
            if 0 < int.from_bytes(key, "big") < SECP256K1_N:
                return cls(key, role)

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest as-is; low-s, ``v`` in {27, 28}."""
        sig = self._cc.sign_recoverable(digest, hasher=None)
        return Signature(v=sig[64] + 27, r=sig[0:32], s=sig[32:64])

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        """Sign a transaction dict into raw bytes ready for ``eth_sendRawTransaction``.

        EIP-1559 transactions (``type`` 2, no access list) are encoded and
        signed here with rlp and coincurve, byte for byte what eth-account
        gives (a test compares them) at a tenth of its cost; any other goes
        through eth-account.
        """
        if tx.get("type") != 2 or tx.get("accessList"):
            return bytes(self._account.sign_transaction(tx).raw_transaction)
        to = tx.get("to")
        fields: list[Any] = [
            tx["chainId"],
            tx["nonce"],
            tx["maxPriorityFeePerGas"],
            tx["maxFeePerGas"],
            tx["gas"],
            bytes.fromhex(to[2:]) if to else b"",
            tx.get("value", 0),
            bytes(tx.get("data", b"")),
            [],
        ]
        digest = keccak(b"\x02" + rlp.encode(fields))
        sig = self._cc.sign_recoverable(digest, hasher=None)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        return b"\x02" + rlp.encode([*fields, sig[64], r, s])

    def keystore(self, password: str) -> dict[str, Any]:
        """This key as a Web3 Secret Storage (v3) keystore, encrypted with ``password``."""
        return dict(Account.encrypt(self._key, password, iterations=KDF_ITERATIONS))


def insecure_signer(seed: int, role: str, index: int = 0) -> Signer:
    """A key derived from ``seed`` and the role: **insecure**, for embedded chains and tests.

    ``keccak256("aoichain/v1/<seed>/<role>/<index>/<counter>")``: anyone who
    knows the seed knows the key.
    """
    counter = 0
    while True:
        key = keccak(f"aoichain/v1/{seed}/{role}/{index}/{counter}".encode())
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return Signer(key, role=f"{role}{index}")
        counter += 1  # pragma: no cover - probability ~2**-128


def recover(digest: bytes, sig: Signature) -> str:
    """The checksummed address that signed ``digest`` (what ``ecrecover`` returns)."""
    raw = sig.r + sig.s + bytes([sig.v - 27])
    pub = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[-20:])


def sort_signatures(pairs: list[tuple[str, Signature]]) -> list[Signature]:
    """Signatures ordered by signer address, strictly ascending, as quorum.vy requires."""
    return [sig for _, sig in sorted(pairs, key=lambda p: int(p[0], 16))]


# ----------------------------------------------------------------------------- keystores


def keystore_password(password_file: str | Path | None = None, env: str = PASSWORD_ENV) -> str:
    """The keystore password: from ``password_file`` if given, else ``$env`` (may be empty).

    An empty password protects nothing: it is allowed (for loopback demos)
    with a warning.

    Raises
    ------
    InvalidInput
        If the password file cannot be read.
    """
    if password_file is not None:
        try:
            password = Path(password_file).read_text().rstrip("\n")
        except OSError as exc:
            raise InvalidInput(
                f"Password file {str(password_file)!r} cannot be read: {exc}"
            ) from None
    else:
        password = os.environ.get(env, "")
    if not password:
        warnings.warn(
            f"keystores are encrypted with an empty password (set ${env} or give a password "
            "file): acceptable for a loopback demo only",
            stacklevel=2,
        )
    return password


def write_keystore(path: str | Path, signer: Signer, password: str) -> Path:
    """Write ``signer``'s key as a keystore file readable by its owner only (mode 0600).

    The file is created with mode 0600 from the start (never world-readable,
    not even briefly) and never overwritten.

    Raises
    ------
    InvalidInput
        If the file already exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({**signer.keystore(password), "aoichain_role": signer.role}).encode()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        raise InvalidInput(f"Key file {str(target)!r} already exists; not overwritten.") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return target


def read_keystore(path: str | Path, password: str) -> Signer:
    """The signer kept in a keystore file.

    Raises
    ------
    InvalidInput
        If the file is missing, not a keystore, readable by others than its
        owner, or the password is wrong.
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"Key file {str(file)!r} does not exist.") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"Key file {str(file)!r} is not a keystore: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"Key file {str(file)!r} is readable by others (mode {oct(mode & 0o777)}); "
            f"`chmod 600` it first."
        )
    try:
        key = Account.decrypt(data, password)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"Key file {str(file)!r} cannot be decrypted: {exc}") from None
    return Signer(bytes(key), role=str(data.get("aoichain_role", file.stem)))

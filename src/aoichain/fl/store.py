"""A content-addressed model store: sha256 -> bytes, in a folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from aoichain.errors import IntegrityError, InvalidInput
from aoichain.fl.errors import BlobNotFound


def _hex(sha: bytes | str) -> str:
    if isinstance(sha, bytes):
        if len(sha) != 32:
            raise InvalidInput(f"A sha256 must be 32 bytes. Got {len(sha)} bytes instead.")
        return sha.hex()
    text = sha.lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(f"A sha256 must be 64 hex digits. Got {sha!r} instead.")
    return text


class ModelStore:
    """Blobs kept in ``folder/<sha256 hex>``, each checked against its name when read.

    Writes are atomic (a temporary file renamed into place), so a reader
    never sees half a blob. Hashes may be given as 32 raw bytes or 64 hex
    digits (with or without ``0x``).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidInput(f"Model store {str(self.folder)!r} exists and is not a folder.")
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha: bytes | str) -> Path:
        """Where the blob with hash ``sha`` lives (whether or not it exists)."""
        return self.folder / _hex(sha)

    def put(self, blob: bytes, expected: bytes | str | None = None) -> bytes:
        """Store ``blob``; return its 32-byte sha256.

        Raises
        ------
        IntegrityError
            If ``expected`` is given and is not the blob's hash (nothing is written).
        """
        digest = hashlib.sha256(blob).digest()
        if expected is not None and _hex(expected) != digest.hex():
            raise IntegrityError(
                f"blob hashes to {digest.hex()}, not the expected {_hex(expected)}"
            )
        target = self.path(digest)
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return digest

    def has(self, sha: bytes | str) -> bool:
        """Whether a blob is stored under ``sha`` (its content is not checked)."""
        return self.path(sha).is_file()

    def get(self, sha: bytes | str) -> bytes:
        """The blob stored under ``sha``, after checking that it hashes to ``sha``.

        Raises
        ------
        BlobNotFound
            If nothing is stored under ``sha``.
        IntegrityError
            If the stored bytes do not hash to ``sha`` (tampered or corrupted).
        """
        target = self.path(sha)
        try:
            blob = target.read_bytes()
        except FileNotFoundError:
            where = str(self.folder)
            raise BlobNotFound(f"model store {where!r} has no blob {_hex(sha)}") from None
        actual = hashlib.sha256(blob).hexdigest()
        if actual != _hex(sha):
            raise IntegrityError(
                f"blob {_hex(sha)} in {str(self.folder)!r} hashes to {actual}: refused"
            )
        return blob

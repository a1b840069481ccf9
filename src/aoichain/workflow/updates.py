"""Update blobs bound to their author: a sealed header before the model bytes.

A worker's update record on its subchain names the sha256 of its blob. If the
blob were the model bytes alone, anyone who saw a pending record could
submit the same hash as their own (front-running) and claim the work. So a
worker seals its model bytes with a header naming the task, the round and
its own address; the hash covers the header, and the aggregator includes a
record only if the blob it names says the record's worker wrote it. A copy
of someone's hash names a blob whose author is someone else: it is rejected,
and it never displaces the author's own record (the main chain keys records
by worker).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from eth_utils import to_canonical_address, to_checksum_address

from aoichain.errors import IntegrityError

MAGIC = b"AOIU"
VERSION = 1
_HEADER = struct.Struct(">4sHQQ20s")


@dataclass(frozen=True)
class SealedUpdate:
    """An update blob's header and its model bytes."""

    task_id: int
    round_no: int
    author: str
    model: bytes


def seal(model: bytes, *, task_id: int, round_no: int, author: str) -> bytes:
    """The blob a worker stores and records: header ``(task, round, author)`` + model bytes."""
    header = _HEADER.pack(MAGIC, VERSION, task_id, round_no, to_canonical_address(author))
    return header + model


def unseal(blob: bytes) -> SealedUpdate:
    """Read a sealed blob's header.

    Raises
    ------
    IntegrityError
        If the blob is not a sealed update.
    """
    if len(blob) < _HEADER.size:
        raise IntegrityError("the blob is not a sealed update (too short)")
    magic, version, task_id, round_no, author = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise IntegrityError("the blob is not a sealed update (no AOIU header)")
    return SealedUpdate(task_id, round_no, to_checksum_address(author), blob[_HEADER.size :])


def check_author(blob: bytes, *, task_id: int, round_no: int, worker: str) -> bytes:
    """The model bytes of a blob sealed by ``worker`` for (task, round).

    Raises
    ------
    IntegrityError
        If the blob was sealed by someone else or for another task or round
        (e.g. a copied hash).
    """
    sealed = unseal(blob)
    if sealed.author.lower() != worker.lower():
        raise IntegrityError(
            f"the blob's author is {sealed.author}, not the record's worker {worker} "
            f"(a copied update hash)"
        )
    if (sealed.task_id, sealed.round_no) != (task_id, round_no):
        raise IntegrityError(
            f"the blob was sealed for task {sealed.task_id} round {sealed.round_no}, "
            f"not task {task_id} round {round_no}"
        )
    return sealed.model


def sealed_sha256(model: bytes, *, task_id: int, round_no: int, author: str) -> tuple[bytes, bytes]:
    """The sealed blob and its sha256."""
    blob = seal(model, task_id=task_id, round_no=round_no, author=author)
    return blob, hashlib.sha256(blob).digest()

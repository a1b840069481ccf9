"""The content-addressed model store refuses what does not hash to its name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aoichain.errors import IntegrityError, InvalidInput
from aoichain.fl import BlobNotFound, ModelStore


def test_put_get_has_by_raw_or_hex_hash(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    blob = b"weights of worker_p3"
    sha = store.put(blob)
    assert sha == hashlib.sha256(blob).digest()
    assert store.has(sha) and store.has(sha.hex()) and store.has("0x" + sha.hex())
    assert store.get(sha) == blob == store.get(sha.hex().upper())
    assert store.put(blob) == sha  # idempotent
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [sha.hex()]


def test_tampered_blob_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    sha = store.put(b"honest update")
    store.path(sha).write_bytes(b"poisoned update")
    with pytest.raises(IntegrityError, match="refused"):
        store.get(sha)
    store.path(sha).write_bytes(b"honest update"[:-1])  # truncated is tampered too
    with pytest.raises(IntegrityError):
        store.get(sha)


def test_blob_renamed_under_another_hash_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    good, evil = store.put(b"global model"), store.put(b"other model")
    store.path(evil).replace(store.path(good))
    with pytest.raises(IntegrityError):
        store.get(good)


def test_put_with_a_wrong_expected_hash_writes_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    claimed = hashlib.sha256(b"what the worker recorded").digest()
    with pytest.raises(IntegrityError, match="not the expected"):
        store.put(b"what the worker uploaded", expected=claimed)
    assert list(tmp_path.iterdir()) == []
    assert store.put(b"ok", expected=hashlib.sha256(b"ok").hexdigest())


def test_missing_blob_and_malformed_hashes(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(BlobNotFound, match="has no blob"):
        store.get(b"\x00" * 32)
    assert not store.has(b"\x00" * 32)
    for bad in (b"short", "abc", "zz" * 32):
        with pytest.raises(InvalidInput, match="sha256 must be"):
            store.get(bad)
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="not a folder"):
        ModelStore(tmp_path / "file")

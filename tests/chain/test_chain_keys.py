"""Keys: each party's own, random, in its own keystore file; nothing public derives one.

The issue's attack: from ``deployments.json`` alone (it held the seed) the
committee's and validators' keys were rebuilt, a forged record was accepted
on M and a far-future checkpoint froze P's bridge. Now node backends give
every party a fresh random key in a keystore of mode 0600, and the
deployments file holds public data only.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from chain_helpers import chains_up, wait_for
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner
from web3 import Web3

from aoichain.chain.keys import Signer, insecure_signer, read_keystore, write_keystore
from aoichain.cli import app
from aoichain.errors import InvalidInput

PASSWORD = "correct horse battery staple"  # the keystores' of `chains up` too
HEX64 = re.compile(r"(?<![0-9a-fA-F])(?:0x)?([0-9a-fA-F]{64})(?![0-9a-fA-F])")


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


def test_a_keystore_round_trip_keeps_the_key_and_mode_0600(tmp_path: Path) -> None:
    publisher = Signer.random("publisher")
    path = write_keystore(tmp_path / "keys" / "publisher.json", publisher, PASSWORD)
    assert mode(path) == 0o600
    again = read_keystore(path, PASSWORD)
    assert (again.address, again.role) == (publisher.address, "publisher")
    digest = bytes(range(32))
    assert again.sign_digest(digest) == publisher.sign_digest(digest)
    assert publisher._key.hex() not in path.read_text()


def test_a_keystore_is_never_overwritten(tmp_path: Path) -> None:
    path = write_keystore(tmp_path / "worker.json", Signer.random("worker"), PASSWORD)
    before = path.read_bytes()
    with pytest.raises(InvalidInput, match="already exists; not overwritten"):
        write_keystore(path, Signer.random("worker"), PASSWORD)
    assert path.read_bytes() == before


def test_a_wrong_password_or_a_readable_file_is_refused(tmp_path: Path) -> None:
    path = write_keystore(tmp_path / "relayer.json", Signer.random("relayer"), PASSWORD)
    with pytest.raises(InvalidInput, match="cannot be decrypted"):
        read_keystore(path, "wrong")
    for loose in (0o640, 0o604, 0o644):
        path.chmod(loose)
        with pytest.raises(InvalidInput, match=rf"readable by others \(mode {oct(loose)}\)"):
            read_keystore(path, PASSWORD)
    with pytest.raises(InvalidInput, match="does not exist"):
        read_keystore(tmp_path / "missing.json", PASSWORD)


def test_keys_new_writes_a_0600_keystore_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOICHAIN_KEY_PASSWORD", PASSWORD)
    out = tmp_path / "validator-P-0.json"
    runner = CliRunner()
    first = runner.invoke(app, ["keys", "new", "validator-P-0", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert mode(out) == 0o600
    signer = read_keystore(out, PASSWORD)
    assert signer.address in first.output and signer.role == "validator-P-0"
    before = out.read_bytes()
    second = runner.invoke(app, ["keys", "new", "validator-P-0", "--out", str(out)])
    assert second.exit_code == 2
    assert "already exists" in second.output
    assert out.read_bytes() == before


# ------------------------------------------------------------------ chains up


def field_names(data: Any) -> Iterator[str]:
    """Every key of every object in a JSON document."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from field_names(value)
    elif isinstance(data, list):
        for value in data:
            yield from field_names(value)


def parties(deployments: dict[str, Any]) -> set[str]:
    """Every party address a deployments file names (lowercase)."""
    chains = deployments["chains"].values()
    named = [deployments["owner"], *deployments["committee"]["members"]]
    named += [v for c in chains for v in c["validators"]]
    return {a.lower() for a in named}


@pytest.mark.anvil
def test_chains_up_publishes_no_key_and_keeps_each_in_a_0600_keystore(tmp_path: Path) -> None:
    with ExitStack() as stack:
        env = {"AOICHAIN_KEY_PASSWORD": PASSWORD}
        runs = ("first", "second")
        procs = {run: stack.enter_context(chains_up(tmp_path / run, env)) for run in runs}
        files = {run: tmp_path / run / "deployments.json" for run in procs}
        deployments = {run: wait_for(files[run], proc) for run, proc in procs.items()}

    keys_dir = tmp_path / "first" / "keys"
    keystores = sorted(keys_dir.glob("*.json"))
    assert keystores and all(mode(k) == 0o600 for k in keystores)
    signers = [read_keystore(k, PASSWORD) for k in keystores]
    published = deployments["first"]
    assert parties(published) <= {s.address.lower() for s in signers}

    text = files["first"].read_text()
    assert not [f for f in field_names(published) if "seed" in f.lower() or f.lower() == "key"]
    secrets = {s._key.hex() for s in signers}
    assert not [h for h in HEX64.findall(text) if h.lower() in secrets]
    assert not [k for k in secrets if k in text.lower()]
    # The attack: the committee rebuilt from a seed. Keys are random now.
    rebuilt = {
        insecure_signer(seed, role, i).address.lower()
        for seed in range(4)
        for role in ("committee", "deployer", "validator-M", "validator-P")
        for i in range(5)
    }
    assert not parties(published) & rebuilt
    # Two deployments share no party: nothing is derived from anything they share.
    assert not parties(published) & parties(deployments["second"])


@given(
    nonce=st.integers(0, 2**32),
    gas=st.integers(21_000, 2**24),
    value=st.integers(0, 2**128),
    data=st.binary(max_size=300),
    to=st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
    chain_id=st.integers(1, 2**32),
)
def test_fast_signing_gives_eth_accounts_bytes(
    nonce: int, gas: int, value: int, data: bytes, to: bytes | None, chain_id: int
) -> None:
    signer = Signer.random("worker")
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "gas": gas,
        "maxFeePerGas": 50 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = Web3.to_checksum_address(to)
    expected = bytes(Account.from_key(signer._key).sign_transaction(tx).raw_transaction)
    assert signer.sign_transaction(tx) == expected

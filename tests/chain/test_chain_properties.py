"""Where the contracts and Python compute the same thing: fuzz the two against each other.

These checks do not depend on the backend, so they run on the embedded chains.
"""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import new_task, sha
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from aoichain.chain import Ledger
from aoichain.chain.digests import (
    UpdateRecord,
    checkpoint_digest,
    message_digest,
    records_hash,
)
from aoichain.chain.keys import recover, signer
from aoichain.chain.proofs import StorageProof
from aoichain.chain.relay import Envelope, UpdateBatch
from aoichain.errors import IntegrityError

uint = st.integers(min_value=0, max_value=2**256 - 1)
small = st.integers(min_value=0, max_value=2**64 - 1)
bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b))


@given(uint, address, uint, uint, address, uint, bytes32)
def test_message_digest_matches_vyper(
    embedded: Ledger,
    src_chain: int,
    src: str,
    block: int,
    dst_chain: int,
    dst: str,
    nonce: int,
    payload: bytes,
) -> None:
    args = (src_chain, src, block, dst_chain, dst, nonce, payload)
    assert embedded.contract("M").functions.message_digest(*args).call() == message_digest(*args)


@given(st.integers(1, 2**200), small, bytes32, bytes32)
def test_checkpoint_digest_matches_vyper_and_binds_the_relay_chain_id(
    embedded: Ledger, chain_id: int, number: int, block_hash: bytes, root: bytes
) -> None:
    relay = embedded.contract("R")
    on_chain = relay.functions.checkpoint_digest(chain_id, number, block_hash, root).call()
    # CHAINID inside the embedded relay chain is the configured id, not eth-tester's default.
    expected = checkpoint_digest(
        embedded.chain_id("R"), relay.address, chain_id, number, block_hash, root
    )
    assert on_chain == expected


records = st.lists(
    st.builds(
        UpdateRecord,
        task_id=small,
        round_no=small,
        worker=address.map(lambda a: __import__("web3").Web3.to_checksum_address(a)),
        update_sha256=bytes32,
        samples=uint,
        data_timestamp=uint,
        item=st.integers(0, 15),
    ),
    max_size=6,
)


@given(records)
def test_records_hash_chain_matches_vyper(embedded: Ledger, recs: list[UpdateRecord]) -> None:
    rows = [r.as_tuple() for r in recs]
    assert embedded.contract("M").functions.records_hash(rows).call() == records_hash(recs)


@given(bytes32, st.integers(0, 50))
def test_signatures_recover_to_the_signer(digest: bytes, index: int) -> None:
    who = signer(7, "committee", index)
    assert recover(digest, who.sign_digest(digest)) == who.address


# ---------------------------------------------------------------- payments

workers = st.sampled_from([("P", i) for i in range(4)] + [("V", i) for i in range(4)])


@pytest.mark.slow
@settings(max_examples=12)
@given(
    rewards=st.lists(st.integers(0, 10**18), min_size=1, max_size=3),
    enrolled=st.lists(workers, min_size=1, max_size=4, unique=True),
    picks=st.data(),
    rounds=st.integers(1, 2),
)
def test_payments_match_a_pure_python_reference(
    embedded: Ledger, rewards: list[int], enrolled: list[tuple[str, int]], picks: Any, rounds: int
) -> None:
    led = embedded
    everyone = [(s, i) for s in "PV" for i in range(4)]
    for s, i in everyone:  # start from zero owed, so payouts below are this example's only
        if led.withdrawable(led.workers[s][i]):
            led.withdraw(led.workers[s][i])
    items = {w: picks.draw(st.integers(0, len(rewards) - 1)) for w in enrolled}
    max_workers = picks.draw(st.integers(1, len(enrolled)))
    m_address = led.contract("M").address
    m_balance = led.balance("M", m_address)

    task = new_task(
        led,
        enrol={},
        rewards=tuple(rewards),
        rounds=rounds,
        max_workers=max_workers,
        open_round=False,
    )
    for (s, i), item in items.items():
        led.enrol(s, i, task.task_id, item)
    expected = {w: 0 for w in enrolled}
    for r in range(rounds):
        led.open_round(task.task_id, r)
        submitted = picks.draw(st.lists(st.sampled_from(enrolled), unique=True))
        by_hash = {task.submit(s, i, r): (s, i) for s, i in submitted}
        led.relay_updates(task.task_id, r)
        chosen = []
        if by_hash:
            pool = st.sampled_from(sorted(by_hash))
            chosen = picks.draw(st.lists(pool, unique=True, max_size=max_workers))
        led.record_global_model(task.task_id, r, sha("global", r), chosen)
        led.close_round(task.task_id, r)
        for h in chosen:
            expected[by_hash[h]] += rewards[items[by_hash[h]]]
    led.finish_task(task.task_id)

    escrow = max_workers * max(rewards) * rounds
    paid = 0
    for w, owed in expected.items():
        address = led.workers[w[0]][w[1]]
        assert led.withdrawable(address) == owed
        if owed:
            paid += led.withdraw(address).amount
    reclaimed = led.reclaim(task.task_id) if escrow - paid else 0
    assert paid == sum(expected.values())
    assert paid + reclaimed == escrow
    assert led.balance("M", m_address) == m_balance


# ------------------------------------------------------------------- proofs


@pytest.fixture(scope="module")
def proven_batch(embedded: Ledger) -> tuple[Envelope, StorageProof]:
    """A checkpointed P -> M batch of two records and its honest proof."""
    task = new_task(embedded, enrol={"P": [0, 1]})
    task.submit("P", 0, 0)
    task.submit("P", 1, 0)
    block = embedded.checkpoint("P")
    rows = embedded.contract("P").functions.records(task.task_id, 0).call(block_identifier=block)
    batch = UpdateBatch(task.task_id, 0, tuple(UpdateRecord.from_row(r) for r in rows))
    env = embedded.envelope("P", "M", block, batch)
    return env, embedded.proof_for(env)


@pytest.mark.slow
@settings(max_examples=40)
@given(st.data())
def test_any_altered_proof_byte_is_refused(
    embedded: Ledger, proven_batch: tuple[Envelope, StorageProof], data: Any
) -> None:
    env, proof = proven_batch
    member = embedded.committee_members[0]
    nodes = [("account", k) for k in range(len(proof.account_proof))]
    for slot, p in proof.storage_proofs.items():
        nodes += [(slot, k) for k in range(len(p))]
    where, k = data.draw(st.sampled_from(nodes))
    original = proof.account_proof[k] if where == "account" else proof.storage_proofs[where][k]
    pos = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    forged = original[:pos] + bytes([original[pos] ^ flip]) + original[pos + 1 :]
    if where == "account":
        account = tuple(forged if j == k else n for j, n in enumerate(proof.account_proof))
        bad = StorageProof(proof.address, account, proof.storage_proofs)
    else:
        storage = dict(proof.storage_proofs)
        storage[where] = tuple(forged if j == k else n for j, n in enumerate(storage[where]))
        bad = StorageProof(proof.address, proof.account_proof, storage)
    member.attest(env, proof)
    try:
        member.attest(env, bad)
    except IntegrityError:
        return
    raise AssertionError(f"a proof with byte {pos} of node {k} ({where}) altered was signed")

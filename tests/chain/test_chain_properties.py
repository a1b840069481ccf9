"""Where the contracts and Python compute the same thing: fuzz the two against each other.

These checks do not depend on the backend, so they run on the embedded chains.
"""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import Task, call, new_task, sha
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from aoichain.chain import Included, Network
from aoichain.chain.digests import (
    bitmap,
    bitmap_lists,
    checkpoint_digest,
    indices_of,
    message_digest,
    ticket_digest,
    words_hash,
)
from aoichain.chain.keys import insecure_signer, recover
from aoichain.chain.messages import Envelope
from aoichain.chain.proofs import StorageProof
from aoichain.errors import IntegrityError

uint = st.integers(min_value=0, max_value=2**256 - 1)
small = st.integers(min_value=0, max_value=2**64 - 1)
bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b))


@given(uint, address, uint, uint, address, uint, bytes32)
def test_message_digest_matches_vyper(
    embedded: Network,
    src_chain: int,
    src: str,
    block: int,
    dst_chain: int,
    dst: str,
    nonce: int,
    payload: bytes,
) -> None:
    args = (src_chain, src, block, dst_chain, dst, nonce, payload)
    assert call(embedded, "M", "message_digest", *args) == message_digest(*args)


@given(st.integers(1, 2**200), small, bytes32, bytes32)
def test_checkpoint_digest_matches_vyper_and_binds_the_relay_chain(
    embedded: Network, chain_id: int, number: int, block_hash: bytes, root: bytes
) -> None:
    relay = embedded.deployment.chains["R"]
    on_chain = call(embedded, "R", "checkpoint_digest", chain_id, number, block_hash, root)
    # CHAINID inside the embedded relay chain is the configured id, not eth-tester's default.
    assert on_chain == checkpoint_digest(
        relay.chain_id, relay.contract, chain_id, number, block_hash, root
    )


@given(small, address, st.integers(0, 15), small)
def test_ticket_digest_matches_vyper_and_binds_the_subchain(
    embedded: Network, task: int, worker: str, item: int, index: int
) -> None:
    for key in embedded.deployment.subchains:
        chain = embedded.deployment.chains[key]
        on_chain = call(embedded, key, "ticket_digest", task, worker, item, index)
        assert on_chain == ticket_digest(chain.chain_id, chain.contract, task, worker, item, index)


@given(uint)
def test_popcount_matches_python(embedded: Network, word: int) -> None:
    assert call(embedded, "M", "popcount", word) == bin(word).count("1")


@given(st.lists(st.integers(0, 50_000), max_size=40))
def test_bitmaps_round_trip(indices: list[int]) -> None:
    words = bitmap(indices)
    keys, values = bitmap_lists(words)
    assert keys == sorted(keys) and all(values)
    assert indices_of(dict(zip(keys, values, strict=True))) == sorted(set(indices))


@given(bytes32, st.integers(0, 50))
def test_signatures_recover_to_the_signer(digest: bytes, index: int) -> None:
    who = insecure_signer(7, "committee", index)
    signature = who.sign_digest(digest)
    assert recover(digest, signature) == who.address
    assert int.from_bytes(signature.s, "big") <= 2**255  # low-s, as quorum.vy demands


def test_records_hash_chain_and_bitmaps_match_the_subchain(embedded: Network) -> None:
    task = new_task(embedded, enrol={"P0": 0, "P1": 1, "P2": 1})
    for label, samples in (("P2", 7), ("P0", 3), ("P1", 99)):
        task.submit(label, 0, samples)
    carried = task.relay_records(0)
    body = carried["P"]
    assert [r.worker for r in body.records] == [task.worker(x).address for x in ("P2", "P0", "P1")]
    assert bytes(call(embedded, "P", "acc", task.task_id, 0)) == body.acc
    assert call(embedded, "P", "record_count", task.task_id, 0) == 3
    for word, bits in body.words.items():
        assert call(embedded, "P", "submitted", task.task_id, 0, word) == bits
        assert call(embedded, "M", "submitted", task.task_id, 0, word) == bits
    chain_id = embedded.deployment.chains["P"].chain_id
    assert bytes(call(embedded, "M", "record_accs", chain_id, task.task_id, 0)) == body.acc
    included = [Included(r.index, r.worker, r.update_sha256) for r in body.records[:2]]
    embedded.publisher.record_global_model(task.task_id, 0, sha("g"), included)
    keys, words = bitmap_lists(bitmap(x.index for x in included))
    hashed, _pairs, opened_next = call(embedded, "M", "included_hashes", task.task_id, 0)
    assert opened_next is False
    assert bytes(hashed) == words_hash(keys, words)


# ---------------------------------------------------------------- payments

LABELS = [f"{s}{i}" for s in "PV" for i in range(4)]


@pytest.mark.slow
@settings(max_examples=12)
@given(
    rewards=st.lists(st.integers(0, 10**18), min_size=1, max_size=3),
    enrolled=st.lists(st.sampled_from(LABELS), min_size=1, max_size=5, unique=True),
    picks=st.data(),
    rounds=st.integers(1, 3),
)
def test_payments_match_a_pure_python_reference(
    embedded: Network, rewards: list[int], enrolled: list[str], picks: Any, rounds: int
) -> None:
    """Random menus, enrolments and inclusion patterns: claims pay what a Python
    reference says, the sum paid never exceeds the escrow, the publisher reclaims the rest."""
    net = embedded
    items = {w: picks.draw(st.integers(0, len(rewards) - 1)) for w in enrolled}
    main = net.deployment.chains["M"].contract
    held_before = net.view("M").balance(main)
    task = new_task(
        net, enrol=items, rewards=tuple(rewards), rounds=rounds, max_workers=len(enrolled),
        open_round=False,
    )  # fmt: skip
    expected = dict.fromkeys(enrolled, 0)
    for r in range(rounds):
        task.open(r)
        submitted = picks.draw(st.lists(st.sampled_from(enrolled), unique=True))
        for label in submitted:
            task.submit(label, r)
        chosen = picks.draw(st.lists(st.sampled_from(submitted), unique=True)) if submitted else []
        task.finish_round(r, chosen)
        for label in chosen:
            expected[label] += rewards[items[label]]
    net.publisher.finish(task.task_id)
    assert call(net, "M", "tasks", task.task_id)[7] == sum(expected.values())  # credited
    paid = _claim_all(task, rounds)
    escrow = task.spec.escrow_wei
    reclaimed = net.publisher.reclaim(task.task_id) if escrow > sum(expected.values()) else 0
    assert paid == expected
    assert sum(paid.values()) + reclaimed == escrow
    assert net.view("M").balance(main) == held_before


def _claim_all(task: Task, rounds: int) -> dict[str, int]:
    paid = {}
    for label, ticket in task.tickets.items():
        worker = task.worker(label)
        owed = worker.claimable(ticket)
        paid[label] = worker.claim(ticket, rounds).amount if owed else 0
        assert paid[label] == owed
    return paid


# ------------------------------------------------------------------- proofs


@pytest.fixture(scope="module")
def proven_records(embedded: Network) -> tuple[Envelope, StorageProof]:
    """A checkpointed P -> M message of two records and its honest proof."""
    task = new_task(embedded, enrol={"P0": 0, "P1": 1})
    task.submit("P0", 0)
    task.submit("P1", 0)
    env = task.envelope("P", 0)
    proof = embedded.relayer.view("P").get_proof(
        env.src_contract, list(env.body.claims()), env.src_block
    )
    return env, proof


@pytest.mark.slow
@settings(max_examples=40)
@given(st.data())
def test_any_altered_proof_byte_is_refused(
    embedded: Network, proven_records: tuple[Envelope, StorageProof], data: Any
) -> None:
    env, proof = proven_records
    member = embedded.committee[0]
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

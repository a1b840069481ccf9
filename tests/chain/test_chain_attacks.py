"""The issue's attacks on the chains, each a regression test, on embedded py-evm and on anvil.

Every attack worked before the parties stopped trusting each other. Each is
played here as an outsider would: a fresh key (``outsider``), plain contract
calls (``send``), and, where the attack needs a corrupted party, the keys
or the lying endpoint of exactly the parties the test corrupts. Refusals are
asserted by their revert reason, so a test fails if the right rule stops
being the one that refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from chain_helpers import (
    Task,
    call,
    committee_sigs,
    contract,
    new_task,
    outsider,
    rejected,
    send,
    sha,
    signed_by,
)
from lying import Lie, lying_node

from aoichain.chain import (
    AttestationRefused,
    ChainConfig,
    ChainUnavailable,
    CommitteeMember,
    Included,
    Network,
    Relayer,
    RoundRecords,
    TaskSpec,
    UpdateRecord,
    Validator,
    Worker,
)
from aoichain.chain.client import TX_GAS, ChainClient
from aoichain.chain.digests import (
    KIND_ROUND_OPEN,
    MAX_WORDS,
    WORD_BITS,
    bitmap,
    bitmap_lists,
    checkpoint_digest,
    message_digest,
    records_nonce,
    round_records_payload,
)
from aoichain.chain.keys import SECP256K1_N, Signature, Signer, recover
from aoichain.chain.messages import Envelope
from aoichain.chain.nodes import ChainNode, start_anvils, start_embedded
from aoichain.chain.views import ChainView

SigTuple = tuple[int, bytes, bytes]
#: Most workers a task admits (main.vy's MAX_WORKERS): ``--workers`` 25,000 nodes and twins.
MAX_WORKERS = 50_000


def refused(reason: str) -> Any:
    """``rejected`` for a revert reason taken literally (reasons hold parentheses)."""
    return rejected(re.escape(reason))


def tuples(signatures: list[Signature]) -> list[SigTuple]:
    """Signatures in the contracts' ABI form."""
    return [s.as_tuple() for s in signatures]


def twin(sig: SigTuple) -> SigTuple:
    """The malleable twin of a signature: ``s -> n - s`` and ``v`` flipped; same signer."""
    v, r, s = sig
    return (55 - v, r, (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big"))


def bit(net: Network, key: str, fn: str, task_id: int, round_no: int, index: int) -> bool:
    """Whether ``index``'s bit is set in the bitmap ``fn`` (``submitted``, ``included``)."""
    word = int(call(net, key, fn, task_id, round_no, index // WORD_BITS))
    return bool(word >> (index % WORD_BITS) & 1)


def as_worker(net: Network, w: Worker, key: str, fn: str, *args: Any) -> Any:
    """Worker ``w`` calls ``fn`` on chain ``key`` through its own client (which keeps its nonce)."""
    own = w.main if key == "M" else w.sub
    return own.transact(w.signer, contract(net, key), fn, *args)


def deliver(net: Network, courier: Signer, env: Envelope, sigs: list[SigTuple]) -> Any:
    """Anyone may deliver an attested round-records message to M: ``courier`` does."""
    body = env.body
    assert isinstance(body, RoundRecords)
    indices, words = body.word_lists()
    return send(
        net,
        courier,
        "M",
        "deliver_records",
        env.src_chain_id,
        env.src_block,
        body.task_id,
        body.round_no,
        body.count,
        body.acc,
        indices,
        words,
        sigs,
    )


def held_opening(
    net: Network, task_id: int, round_no: int, dst: str
) -> tuple[Envelope, list[SigTuple]]:
    """A round opening for ``dst``, honestly checkpointed and attested, but not delivered."""
    relayer = net.relayer
    msg = relayer.outbox_message(KIND_ROUND_OPEN, task_id, round_no, relayer.view("M").head())
    env = relayer.envelope("M", dst, relayer.checkpoint("M"), msg)
    return env, tuples(relayer.attest(env))


def deliver_opening(net: Network, courier: Signer, env: Envelope, sigs: list[SigTuple]) -> Any:
    """``courier`` delivers a held round opening to its subchain."""
    fn, args = env.body.delivery()  # type: ignore[union-attr]
    return send(net, courier, env.dst_key, fn, env.src_block, env.body.nonce(), *args, sigs)


def submit_checkpoint(
    net: Network, courier: Signer, key: str, number: int, block_hash: bytes, root: bytes, sigs: Any
) -> Any:
    """``courier`` submits a checkpoint of chain ``key`` to R with the given signatures."""
    chain_id = net.deployment.chains[key].chain_id
    return send(net, courier, "R", "submit_checkpoint", chain_id, number, block_hash, root, sigs)


def validator_sigs(
    net: Network, key: str, who: list[int], number: int, h: bytes, root: bytes
) -> list[SigTuple]:
    """Checkpoint signatures of chain ``key``'s validators ``who`` (the test holds their keys)."""
    r = net.deployment.chains["R"]
    digest = checkpoint_digest(
        r.chain_id, r.contract, net.deployment.chains[key].chain_id, number, h, root
    )
    return signed_by([net.keys.validators[key][i] for i in who], digest)


def held_checkpoint(net: Network, key: str, number: int) -> tuple[bytes, bytes]:
    """R's checkpoint of block ``number`` of chain ``key``: (block hash, state root)."""
    h, root = call(net, "R", "checkpoint", net.deployment.chains[key].chain_id, number)
    return bytes(h), bytes(root)


def records_body(task: Task, round_no: int, *records: UpdateRecord) -> RoundRecords:
    """A round-records body naming exactly ``records``."""
    return RoundRecords(task.task_id, round_no, tuple(records))


@pytest.fixture
def own_network(network: Network) -> Iterator[Network]:
    """A network of the same backend for a test that leaves R's state changed for good."""
    with Network.start(ChainConfig(backend=network.config.backend), workers={"P": 2}) as net:
        yield net


# ------------------------------------------------------------------- admission


def test_an_outsider_cannot_enrol_without_its_own_ticket(network: Network) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0})
    intruder = outsider(net, "P", "V")
    stride, held = task.stride, task.tickets["P0"]
    own_sig = intruder.sign_digest(
        call(net, "P", "ticket_digest", task.task_id, intruder.address, 0, 1)
    )
    no_ticket = (27, bytes(32), bytes(32))
    for item, index, sig, reason in [
        (0, 1, no_ticket, "quorum: invalid signature"),
        (0, 1, own_sig.as_tuple(), "subchain: not admitted by the publisher"),
        (0, held.index, held.signature.as_tuple(), "subchain: not admitted by the publisher"),
        (1, stride, own_sig.as_tuple(), "subchain: not admitted by the publisher"),
    ]:
        with refused(reason):
            send(net, intruder, "P", "enrol", task.task_id, item, index, sig)
    # A ticket of P does not open V, and one of this task no other task.
    mine = net.publisher.admit(task.task_id, intruder.address, "P", 0, 1)
    with refused("subchain: not admitted by the publisher"):
        send(net, intruder, "V", "enrol", task.task_id, 0, 1, mine.signature.as_tuple())
    other = new_task(net, enrol={}, open_round=False)
    with refused("subchain: not admitted by the publisher"):
        send(net, intruder, "P", "enrol", other.task_id, 0, 1, mine.signature.as_tuple())
    assert list(call(net, "P", "enrolment", task.task_id, intruder.address)) == [False, 0, 0]
    assert call(net, "P", "tasks", task.task_id)[5] == 1  # enrolled: P0 alone


def test_an_outsider_cannot_record_an_update_nor_claim(network: Network) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0})
    task.submit("P0", 0)
    acc = bytes(call(net, "P", "acc", task.task_id, 0))
    intruder = outsider(net, "P", "M")
    with refused("subchain: worker not enrolled"):
        send(net, intruder, "P", "submit_update", task.task_id, 0, sha("x"), 10, 1)
    assert call(net, "P", "record_count", task.task_id, 0) == 1
    assert bytes(call(net, "P", "acc", task.task_id, 0)) == acc
    held = task.tickets["P0"]
    args = (task.task_id, held.subchain_id, held.item, held.index, held.signature.as_tuple(), 3)
    with refused("main: not admitted by the publisher"):
        send(net, intruder, "M", "claim", *args)


def test_sybil_enrolments_are_refused_at_admission(network: Network) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0, "P1": 1}, max_workers=4)
    for n in range(3 * task.spec.max_workers):
        sybil, item = outsider(net, "P"), n % 2
        index = item * task.stride + 2 + n
        digest = call(net, "P", "ticket_digest", task.task_id, sybil.address, item, index)
        ticket = sybil.sign_digest(digest).as_tuple()  # its own: no publisher signed it
        with refused("subchain: not admitted by the publisher"):
            send(net, sybil, "P", "enrol", task.task_id, item, index, ticket)
    assert call(net, "P", "tasks", task.task_id)[5] == 2
    # Honest workers still record: the round holds their records only.
    task.enrol("P2", 1)
    task.submit("P0", 0)
    task.submit("P2", 0)
    assert call(net, "P", "record_count", task.task_id, 0) == 2


def test_enrolment_holds_the_item_the_ticket_names(network: Network) -> None:
    """Under CC each type gets its own item: a worker cannot name a better one."""
    net = network
    task = new_task(net, enrol={"P0": 0})
    w, stride = net.worker("P", 2), task.stride
    ticket = task.admit("P2", 0)  # the lower item (reward 10 < 25)
    sig = ticket.signature.as_tuple()
    with refused("subchain: not admitted by the publisher"):  # item 1 with item 0's ticket
        as_worker(net, w, "P", "enrol", task.task_id, 1, stride + ticket.index, sig)
    w.enrol(ticket)
    assert list(call(net, "P", "enrolment", task.task_id, w.address)) == [True, 0, ticket.index]
    # M pays the ticket's item, and only it.
    for item, index, reason in [
        (1, stride + ticket.index, "main: not admitted by the publisher"),
        (1, ticket.index, "main: index outside the item's range"),
        (0, ticket.index, "main: nothing to claim"),
    ]:
        with refused(reason):
            as_worker(net, w, "M", "claim", task.task_id, ticket.subchain_id, item, index, sig, 3)


def test_samples_over_the_items_cap_are_refused(network: Network) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0, "P1": 1}, caps=(50, 100))
    low, high = net.worker("P", 0), net.worker("P", 1)
    for samples, reason in [
        (51, "subchain: more samples than the item's cap"),
        (10**30, "subchain: more samples than the item's cap"),
        (0, "subchain: no samples"),
    ]:
        with refused(reason):
            low.submit_update(task.task_id, 0, sha("low", samples), samples, 1)
    high.submit_update(task.task_id, 0, sha("high"), 60, 1)  # item 1's cap is 100
    low.submit_update(task.task_id, 0, sha("low"), 50, 1)
    carried = task.relay_records(0)["P"]
    assert [(r.worker, r.samples) for r in carried.records] == [
        (high.address, 60),
        (low.address, 50),
    ]


# -------------------------------------------------------------------- rounds


def test_a_stale_round_opening_is_refused(network: Network) -> None:
    """An opening delivered late, with valid signatures, never reopens a round."""
    net = network
    task = new_task(net, enrol={"V0": 0, "P0": 0}, open_round=False)
    courier = outsider(net, "P", "V")
    net.publisher.open_round(task.task_id, 0)
    late = held_opening(net, task.task_id, 0, "P")
    deliver_opening(net, courier, *held_opening(net, task.task_id, 0, "V"))
    task.submit("V0", 0)
    task.finish_round(0, ["V0"])  # the global model reaches P before P's opening
    with refused("subchain: stale round opening (its global model is known)"):
        deliver_opening(net, courier, *late)
    assert list(call(net, "P", "round_state", task.task_id)) == [0, False]
    with refused("subchain: round not open"):
        task.submit("P0", 0)

    # Round 1's opening is held back from P; round 1 closes without a model, 2 opens.
    net.publisher.open_round(task.task_id, 1)
    late = held_opening(net, task.task_id, 1, "P")
    deliver_opening(net, courier, *held_opening(net, task.task_id, 1, "V"))
    net.publisher.close_round(task.task_id, 1)
    task.open(2)
    with refused("subchain: stale round opening (a later round is open)"):
        deliver_opening(net, courier, *late)
    assert list(call(net, "P", "round_state", task.task_id)) == [2, True]
    task.submit("P0", 2)


def test_records_of_rounds_outside_the_task_are_refused_on_main(network: Network) -> None:
    """Signed by a committee quorum, so the round is the only thing wrong."""
    net = network
    task = new_task(net, enrol={"P0": 0}, rounds=2)
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    courier = outsider(net, "M")
    (record,) = env.body.records  # type: ignore[union-attr]

    def message(round_no: int) -> tuple[Envelope, list[SigTuple]]:
        moved = replace(record, round_no=round_no)
        e = net.relayer.envelope("P", "M", env.src_block, records_body(task, round_no, moved))
        return e, committee_sigs(net, e.digest(), [0, 1, 2])

    for round_no, reason in [
        (2, "main: round out of range"),  # rounds = 2
        (2**64, "main: round out of range"),  # would alias the next task's nonce space
        (1, "main: round never opened"),
    ]:
        with refused(reason):
            deliver(net, courier, *message(round_no))
    deliver(net, courier, *message(0))  # the same signatures, a round in range: accepted
    assert call(net, "M", "inbound_count", env.src_chain_id, task.task_id, 0) == 1


# ---------------------------------------------------------------- signatures


def test_high_s_signatures_are_refused(network: Network) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0})
    task.submit("P0", 0)
    courier = outsider(net, "M", "R")

    env = task.envelope("P", 0)
    sigs = tuples(net.relayer.attest(env))
    malleable = [twin(sigs[0]), *sigs[1:]]
    assert recover(env.digest(), Signature(*malleable[0])) == recover(
        env.digest(), Signature(*sigs[0])
    )
    with refused("quorum: high-s signature"):
        deliver(net, courier, env, malleable)
    deliver(net, courier, env, sigs)

    ticket = task.admit("P2", 1)
    w = net.worker("P", 2)
    args = (task.task_id, ticket.item, ticket.index)
    with refused("quorum: high-s signature"):
        as_worker(net, w, "P", "enrol", *args, twin(ticket.signature.as_tuple()))
    as_worker(net, w, "P", "enrol", *args, ticket.signature.as_tuple())

    head = net.view("P").block("latest")
    sigs = validator_sigs(net, "P", [0, 1], head.number, head.block_hash, head.state_root)
    with refused("quorum: high-s signature"):
        submit_checkpoint(
            net, courier, "P", head.number, head.block_hash, head.state_root,
            [twin(sigs[0]), sigs[1]],
        )  # fmt: skip


# ----------------------------------------------------------------- front-run


def test_a_front_run_copy_never_displaces_its_author(network: Network) -> None:
    """The copier, admitted on the top item, records the author's pending hash first."""
    net = network
    task = new_task(net, enrol={"P0": 0})
    copier_ticket = task.enrol("P2", 1)  # reward 25, the top item
    author, copier = net.worker("P", 0), net.worker("P", 2)
    pending = sha("the author's sealed update")
    copier.submit_update(task.task_id, 0, pending, 100, 1)
    author.submit_update(task.task_id, 0, pending, 10, 1)  # not refused as a repeat
    carried = task.relay_records(0)
    records = carried["P"].records
    assert [(r.worker, r.index, r.update_sha256) for r in records] == [
        (copier.address, copier_ticket.index, pending),
        (author.address, task.tickets["P0"].index, pending),
    ]
    for ticket in (copier_ticket, task.tickets["P0"]):
        assert bit(net, "M", "submitted", task.task_id, 0, ticket.index)
    # The aggregator includes the author (the workflow checks whose blob it is).
    mine = [r for r in records if r.worker == author.address]
    net.publisher.record_global_model(
        task.task_id,
        0,
        sha("global"),
        [Included(r.index, r.worker, r.update_sha256) for r in mine],
    )
    net.relayer.relay_global_model(task.task_id, 0)
    net.publisher.close_round(task.task_id, 0)
    assert author.claim(task.tickets["P0"], 3).amount == 10
    with refused("main: nothing to claim"):
        copier.claim(copier_ticket, 3)


# --------------------------------------------------------------- checkpoints


def test_a_far_future_checkpoint_does_not_freeze_the_bridge(own_network: Network) -> None:
    """Validators' keys (a corrupted quorum) sign P at block 2**63 and a wrong root."""
    net = own_network
    task = new_task(net, enrol={"P0": 0})
    courier = outsider(net, "R", "M")
    far, fake = 2**63, (sha("far block"), sha("far root"))
    submit_checkpoint(net, courier, "P", far, *fake, validator_sigs(net, "P", [0, 1], far, *fake))
    chain_p = net.deployment.chains["P"].chain_id
    assert call(net, "R", "latest_checkpoint", chain_p) == far

    task.submit("P0", 0)
    head = net.view("P").block("latest")
    wrong = sha("wrong root")
    sigs = validator_sigs(net, "P", [0, 1], head.number, head.block_hash, wrong)
    submit_checkpoint(net, courier, "P", head.number, head.block_hash, wrong, sigs)
    records = net.relayer.records("P", task.task_id, 0, head.number)
    env = net.relayer.envelope("P", "M", head.number, records_body(task, 0, *records))
    with pytest.raises(AttestationRefused, match="shows another block"):
        net.relayer.attest(env)  # every member compares R's checkpoint with its own node
    # An honest quorum replaces the wrong checkpoint; the bridge carries the round on.
    assert net.relayer.checkpoint("P") == head.number
    assert held_checkpoint(net, "P", head.number) == (head.block_hash, head.state_root)
    model = task.finish_round(0, ["P0"])  # records up to M, the global model down to P
    assert call(net, "M", "inbound_count", chain_p, task.task_id, 0) == 1
    assert bytes(call(net, "P", "global_models", task.task_id, 0)) == model
    assert call(net, "R", "latest_checkpoint", chain_p) == far


@contextmanager
def lagging_node(net: Network, key: str) -> Iterator[ChainNode]:
    """A node of chain ``key``'s id that lacks its recent blocks (a fresh chain)."""
    chain_id = net.deployment.chains[key].chain_id
    if net.config.backend == "embedded":
        node = start_embedded(key, chain_id, {})
    else:
        node = start_anvils({key: chain_id})[key]
    try:
        yield node
    finally:
        node.stop()


def test_a_node_lacking_a_block_makes_one_verifier_unavailable_not_the_relayer(
    network: Network,
) -> None:
    net = network
    task = new_task(net, enrol={"P0": 0})
    task.submit("P0", 0)
    head = net.view("P").block("latest")
    relay = net.deployment.chains["R"]
    with lagging_node(net, "P") as lagging:
        behind = Validator(net.keys.validators["P"][0], lagging.view())
        with pytest.raises(ChainUnavailable, match=rf"chain P .*block {head.number}"):
            behind.sign_checkpoint(relay.chain_id, relay.contract, head)
        member = CommitteeMember(
            net.keys.committee[0], {**net.committee[0].views, "P": lagging.view()}, net.deployment
        )
        relayer = Relayer(
            net.keys.relayer,
            net.relayer.clients,
            net.deployment,
            {**net.relayer.validators, "P": [behind, *net.validators["P"][1:]]},
            [member, *net.committee[1:]],
        )
        assert relayer.checkpoint("P") == head.number  # with the two others
        records = net.relayer.records("P", task.task_id, 0, head.number)
        env = relayer.envelope("P", "M", head.number, records_body(task, 0, *records))
        sigs = relayer.attest(env)  # three of the four others
    assert held_checkpoint(net, "P", head.number) == (head.block_hash, head.state_root)
    deliver(net, outsider(net, "M"), env, tuples(sigs))
    assert call(net, "M", "inbound_count", env.src_chain_id, task.task_id, 0) == 1


# ------------------------------------------------------------ lying endpoint


@contextmanager
def lying_about(net: Network, body: RoundRecords, block: int) -> Iterator[tuple[Lie, ChainView]]:
    """A view of P whose endpoint holds ``body``'s records at ``block`` (root and proofs forged)."""
    p = net.deployment.chains["P"]
    real = net.nodes["P"].get_proof(p.contract, [], block)
    lie = Lie(p.contract, body.claims(), blocks={block}, like=real)
    with lying_node(net.nodes["P"], lie) as node:
        yield lie, node.view()


def misled_parties(net: Network, liar: ChainView, validators: int, members: int) -> Relayer:
    """A relayer reading P through ``liar``, as do the first ``validators`` of P's
    validators and the first ``members`` committee members; the others read honestly."""
    checkpointers = [
        Validator(net.keys.validators["P"][i], liar) if i < validators else v
        for i, v in enumerate(net.validators["P"])
    ]
    committee = [
        CommitteeMember(net.keys.committee[i], {**m.views, "P": liar}, net.deployment)
        if i < members
        else m
        for i, m in enumerate(net.committee)
    ]
    return Relayer(
        net.keys.relayer,
        {**net.relayer.clients, "P": ChainClient(liar, net.receipts)},
        net.deployment,
        {**net.relayer.validators, "P": checkpointers},
        committee,
    )


def forged_round(net: Network) -> tuple[Task, RoundRecords, int, Signer]:
    """A round where P0 recorded an update, and a body claiming instead a record of
    an address that never enrolled on P, at P's head block."""
    task = new_task(net, enrol={"P0": 0})
    task.submit("P0", 0)
    never = Signer.random("never-enrolled")
    record = UpdateRecord(task.task_id, 0, never.address, task.stride + 7, sha("forged"), 99, 1)
    return task, records_body(task, 0, record), net.view("P").head(), never


def test_a_lying_endpoint_behind_one_validator_and_one_member_is_refused(
    network: Network,
) -> None:
    net = network
    task, body, block, _ = forged_round(net)
    honest = net.view("P").block(block)
    courier = outsider(net, "M", "R")
    with lying_about(net, body, block) as (lie, liar):
        assert liar.block(block).state_root == lie.state_root != honest.state_root
        relayer = misled_parties(net, liar, validators=1, members=1)
        assert relayer.checkpoint("P") == block  # the honest two outvote the misled one
        assert held_checkpoint(net, "P", block) == (honest.block_hash, honest.state_root)
        env = relayer.envelope("P", "M", block, body)
        with pytest.raises(AttestationRefused) as refusal:
            relayer.attest(env)
        assert "its own node of chain P shows another block" in str(refusal.value)
        assert "does not verify against root" in str(refusal.value)
        # On chain, one misled validator's or member's signature is not enough.
        sigs = validator_sigs(net, "P", [0], block, honest.block_hash, lie.state_root)
        with refused("quorum: not enough signatures"):
            submit_checkpoint(net, courier, "P", block, honest.block_hash, lie.state_root, sigs)
        with refused("quorum: not enough signatures"):
            deliver(net, courier, env, committee_sigs(net, env.digest(), [0]))
    assert call(net, "M", "inbound_count", env.src_chain_id, task.task_id, 0) == 0


def test_a_lying_endpoint_behind_k_members_and_k_validators_is_believed(
    network: Network,
) -> None:
    """The honest-threshold assumption, shown: it is what the refusals rest on."""
    net = network
    task, body, block, never = forged_round(net)
    (forged,) = body.records
    honest = net.view("P").block(block)
    courier = outsider(net, "M")
    k, k_validators = net.deployment.threshold, net.deployment.chains["P"].validator_threshold
    assert k_validators is not None
    try:
        with lying_about(net, body, block) as (lie, liar):
            relayer = misled_parties(net, liar, validators=k_validators, members=k)
            assert relayer.checkpoint("P") == block
            assert held_checkpoint(net, "P", block) == (honest.block_hash, lie.state_root)
            env = relayer.envelope("P", "M", block, body)
            sigs = relayer.attest(env)
            relayer.forward(env, sigs)
            deliver(net, courier, env, tuples(sigs))
        chain_p = env.src_chain_id
        assert call(net, "M", "inbound_count", chain_p, task.task_id, 0) == 1
        assert bytes(call(net, "M", "record_accs", chain_p, task.task_id, 0)) == body.acc
        assert bit(net, "M", "submitted", task.task_id, 0, forged.index)
        assert list(call(net, "P", "enrolment", task.task_id, never.address)) == [False, 0, 0]
    finally:
        # Honest validators replace the forged checkpoint (later tests read P honestly).
        assert net.relayer.checkpoint("P") == block
    assert held_checkpoint(net, "P", block) == (honest.block_hash, honest.state_root)


# ---------------------------------------------------------------- the limit


def test_a_task_at_the_worker_limit_fits_its_fullest_round_and_credits_everyone(
    network: Network,
) -> None:
    """50,000 workers (``--workers`` 25,000 nodes and their twins) on a 16-item menu.

    Their fullest round spreads over the most bitmap words any split can
    take (each item one bit past whole words: 211 words in one message), and
    every included worker is credited, those of full 256-bit words too. The
    worker of the last index enrols and records on P for real; the committee
    keys attest the other 49,999 records from V (sending them would take
    100,000 transactions).
    """
    net = network
    items = 16
    spec = TaskSpec(
        model_spec_hash=sha("limit"),
        rounds=1,
        target_accuracy=0.9,
        menu_f=[0.05 * (i + 1) for i in range(items)],
        menu_reward_wei_per_round=[i + 1 for i in range(items)],
        menu_max_samples=[100] * items,
        max_workers=MAX_WORKERS,
    )
    courier = outsider(net, "M")
    with refused("main: max_workers out of range"):
        send(net, courier, "M", "publish_task", sha("x"), 1, 0, [1], [1], [1], MAX_WORKERS + 1,
             value=MAX_WORKERS + 1)  # fmt: skip
    task = Task(net, net.publisher.publish(spec), spec)
    net.relayer.relay_task(task.task_id)
    per_item = [256 * 12 + 1] * items
    per_item[-1] += 1  # P3's, the last index
    per_item[0] += MAX_WORKERS - sum(per_item)
    indices = [i * task.stride + j for i, n in enumerate(per_item) for j in range(n)]
    last = indices.pop()
    task.enrol("P3", items - 1, last)
    task.open(0)
    task.submit("P3", 0)
    (carried,) = task.relay_records(0).values()

    v = net.deployment.chains["V"]
    acc = sha("the acc of V's 49,999 records")
    word_indices, words = bitmap_lists(bitmap(indices))
    assert len(word_indices) == 211 <= MAX_WORDS
    digest = message_digest(
        v.chain_id, v.contract, 1, net.deployment.chains["M"].chain_id,
        net.deployment.chains["M"].contract, records_nonce(task.task_id, 0, len(indices)),
        round_records_payload(task.task_id, 0, len(indices), acc, word_indices, words),
    )  # fmt: skip
    delivered = send(
        net, courier, "M", "deliver_records", v.chain_id, 1, task.task_id, 0, len(indices), acc,
        word_indices, words, committee_sigs(net, digest, [0, 1, 2]),
    )  # fmt: skip
    assert delivered["gasUsed"] < TX_GAS

    everyone = [Included(i, courier.address, sha(i)) for i in indices]
    (mine,) = carried.records
    everyone.append(Included(mine.index, mine.worker, mine.update_sha256))
    recorded = net.publisher.record_global_model(task.task_id, 0, sha("global"), everyone)
    assert recorded["gasUsed"] < TX_GAS
    state = net.publisher.task(task.task_id)
    assert state["credited"] == sum(n * (i + 1) for i, n in enumerate(per_item))
    net.relayer.relay_global_model(task.task_id, 0)
    net.publisher.close_round(task.task_id, 0)
    assert net.worker("P", 3).claim(task.tickets["P3"], 1).amount == items


# ------------------------------------------------------------- carried twice


class CopiedFirst(ChainClient):
    """A relayer's client whose every transaction an outsider copies and gets mined first
    (the same call and signatures, e.g. from a public mempool with a higher tip)."""

    def __init__(self, inner: ChainClient, copier: Signer):
        super().__init__(inner.view, [])
        self.copier, self.copies = copier, ChainClient(inner.view, [])

    def send(self, signer: Signer, to: str | None, data: bytes, **kw: Any) -> Any:
        if to is not None:
            label = kw.get("label", "")
            self.copies.send(self.copier, to, data, **{**kw, "label": f"copy of {label}"})
        return super().send(signer, to, data, **kw)


def test_a_message_carried_first_by_someone_else_does_not_stop_the_relayer(
    own_network: Network,
) -> None:
    """Anyone may carry a signed checkpoint or message (an outsider, a second relayer):
    when a copy lands first, the relayer's own transaction reverts, and it carries on."""
    net = own_network
    task = new_task(net, enrol={"P0": 0})
    task.submit("P0", 0)
    copier = outsider(net, "M", "R", "P", "V")
    clients = {k: CopiedFirst(c, copier) for k, c in net.relayer.clients.items()}
    relayer = replace(net.relayer, clients=clients)
    (carried,) = dict(relayer.relay_records(task.task_id, 0)).values()
    net.publisher.record_global_model(
        task.task_id, 0, sha("global"), [Included(r.index, r.worker, r.update_sha256)
                                         for r in carried.records]
    )  # fmt: skip
    assert relayer.relay_global_model(task.task_id, 0) == ["P", "V"]
    net.publisher.close_round(task.task_id, 0)
    assert bytes(call(net, "P", "global_models", task.task_id, 0)) == sha("global")
    assert net.worker("P", 0).claim(task.tickets["P0"], 1).amount == 10
    copied = [r.label for c in clients.values() for r in c.copies._log]
    assert {"copy of checkpoint P", "copy of forward P->M", "copy of deliver_records P->M"} <= set(
        copied
    )

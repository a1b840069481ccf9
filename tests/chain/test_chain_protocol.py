"""The protocol suite: one behaviour per test, run on every backend (embedded and anvil).

Actors: the ``publisher``, the ``relayer``, the committee, each chain's
validators, workers ``P0..P3`` and ``V0..V3``, and outsiders (fresh keys
acting with plain web3 calls). Each test publishes its own task. The attacks
of the parties issue have their own module (``test_chain_attacks.py``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from chain_helpers import (
    call,
    client,
    committee_sigs,
    contract,
    new_task,
    outsider,
    rejected,
    send,
    sha,
    signed_by,
)

from aoichain.chain import (
    AttestationRefused,
    ChainRejected,
    ChainUnavailable,
    Included,
    Network,
    RoundRecords,
)
from aoichain.chain.committee import collect_signatures
from aoichain.chain.digests import KIND_TASK, checkpoint_digest
from aoichain.chain.keys import sort_signatures
from aoichain.chain.views import BlockHeader
from aoichain.errors import IntegrityError

# ------------------------------------------------------------ the happy path


def test_one_round_from_publication_to_payment(network: Network) -> None:
    task = new_task(network)
    for x in ("P0", "P1", "V0", "V1"):
        task.submit(x, 0)
    global_sha = task.finish_round(0, ["P0", "P1", "V1"])
    for x in ("P0", "V1"):
        assert task.worker(x).announced(task.task_id, 0).global_sha256 == global_sha
    network.publisher.finish(task.task_id)
    rewards = task.spec.menu_reward_wei_per_round
    for x in ("P0", "P1", "V1"):
        ticket, worker = task.tickets[x], task.worker(x)
        before = worker.balance()
        got, fee = worker.claim(ticket, task.spec.rounds)
        assert got == rewards[ticket.item]
        assert worker.balance() - before == got - fee
    with rejected("main: nothing to claim"):
        task.worker("V0").claim(task.tickets["V0"], task.spec.rounds)
    credited = sum(rewards[task.tickets[x].item] for x in ("P0", "P1", "V1"))
    assert network.publisher.reclaim(task.task_id) == task.spec.escrow_wei - credited


def test_every_transaction_is_in_the_receipt_log(network: Network) -> None:
    before = len(network.receipts)
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    task.finish_round(0, ["P0"])
    labels = [r.label for r in network.receipts[before:]]
    for expected in (
        "publish_task",
        "checkpoint M",
        "forward M->P",
        "receive_task M->P",
        "enrol",
        "open_round",
        "receive_round_open M->V",
        "submit_update",
        "checkpoint P",
        "deliver_records P->M",
        "record_global_model",
        "receive_global_model M->P",
        "close_round",
    ):
        assert expected in labels, expected
    assert all(r.gas_used > 0 and r.status for r in network.receipts[before:])


def test_deployments_describe_every_chain_and_hold_no_secret(network: Network) -> None:
    record = network.deployment.to_json()
    assert set(record["chains"]) == {"M", "R", "P", "V"}
    ids = [c["chain_id"] for c in record["chains"].values()]
    assert len(set(ids)) == 4
    assert record["committee"]["members"] == [s.address for s in network.keys.committee]
    for key in ("M", "P", "V"):
        assert record["chains"][key]["validators"] == [
            s.address for s in network.keys.validators[key]
        ]
    assert "seed" not in str(record).lower()


# ------------------------------------------------------------ subchain rules


def test_update_from_a_worker_not_enrolled_is_rejected(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    with rejected("subchain: worker not enrolled"):
        task.submit("P1", 0)


def test_second_update_in_a_round_is_rejected(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    with rejected("subchain: update already submitted"):
        task.submit("P0", 0, tag="again")


def test_update_for_a_round_that_is_not_open_is_rejected(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0}, open_round=False)
    with rejected("subchain: round not open"):
        task.submit("P0", 0)
    task.open(0)
    with rejected("subchain: round not open"):
        task.submit("P0", 1)
    task.submit("P0", 0)
    task.finish_round(0, ["P0"])
    with rejected("subchain: round not open"):
        task.submit("P0", 0, tag="late")


def test_enrolment_rules(network: Network) -> None:
    task = new_task(network, enrol={"P0": 1}, max_workers=2)
    with rejected("subchain: already enrolled"):
        task.worker("P0").enrol(task.tickets["P0"])
    with rejected("subchain: index already taken"):  # P1's ticket reuses P0's index
        task.worker("P1").enrol(task.admit("P1", 1, task.tickets["P0"].index))
    wrong_range = task.admit("P1", 0, 0)
    bad = replace(wrong_range, item=1)
    with rejected("subchain: index outside the item's range"):
        task.worker("P1").enrol(bad)
    no_item = task.stride * 5
    with rejected("subchain: no such menu item"):
        task.worker("P1").enrol(replace(wrong_range, item=5, index=no_item))
    task.enrol("P1", 0)
    with rejected("subchain: task is full"):
        task.worker("P2").enrol(task.admit("P2", 0))


def test_samples_must_be_positive_and_a_hash_is_32_bytes(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    with rejected("subchain: no samples"):
        task.worker("P0").submit_update(task.task_id, 0, sha("x"), 0, 1)
    with rejected("subchain: zero update hash"):
        task.worker("P0").submit_update(task.task_id, 0, bytes(32), 1, 1)


# ------------------------------------------------------------ committee and relay rules


def _deliver(network: Network, env, sigs):  # type: ignore[no-untyped-def]
    body = env.body
    indices, words = body.word_lists()
    return send(
        network, network.keys.relayer, "M", "deliver_records", env.src_chain_id, env.src_block,
        body.task_id, body.round_no, body.count, body.acc, indices, words, sigs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([0, 1], "quorum: not enough signatures"),
        ([0, 0, 1], "quorum: same signer twice"),
        ([], "quorum: not enough signatures"),
    ],
)
def test_records_need_k_distinct_committee_signatures(
    network: Network, members: list[int], reason: str
) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    pairs = [
        (network.keys.committee[i].address, network.keys.committee[i].sign_digest(env.digest()))
        for i in members
    ]
    sigs = [s.as_tuple() for _, s in sorted(pairs, key=lambda p: int(p[0], 16))]
    with rejected(reason):
        _deliver(network, env, sigs)


def test_signatures_of_outsiders_unsorted_or_invalid_are_rejected(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    digest = env.digest()
    stranger = outsider(network)
    with rejected("quorum: signer not a member"):
        _deliver(network, env, signed_by([*network.keys.committee[:2], stranger], digest))
    good = committee_sigs(network, digest, [0, 1, 2])
    with rejected("quorum: signers not sorted"):
        _deliver(network, env, list(reversed(good)))
    broken = [(good[0][0], bytes(32), good[0][2]), *good[1:]]
    with pytest.raises(ChainRejected, match="quorum: invalid signature"):
        _deliver(network, env, broken)
    _deliver(network, env, good)
    with rejected("main: message already delivered"):
        _deliver(network, env, good)


def test_a_message_signed_for_another_chain_or_contract_is_rejected(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    other_chain = replace(env, dst_chain_id=env.dst_chain_id + 1000)
    other_contract = replace(env, dst_contract=network.keys.relayer.address)
    for forged in (other_chain, other_contract):
        with rejected("quorum: signer not a member"):
            _deliver(network, env, committee_sigs(network, forged.digest(), [0, 1, 2]))


def test_each_main_chain_message_is_accepted_once_and_only_where_it_was_sent(
    network: Network,
) -> None:
    task = new_task(network, enrol={}, open_round=False)
    relayer = network.relayer
    msg = relayer.outbox_message(KIND_TASK, task.task_id, 0, network.view("M").head())
    block = relayer.checkpoint("M")
    fn, args = msg.delivery()
    to_p = relayer.envelope("M", "P", block, msg)
    sigs = [s.as_tuple() for s in relayer.attest(to_p)]
    with rejected("subchain: message already delivered"):  # relay_task delivered it already
        send(network, network.keys.relayer, "P", fn, block, msg.nonce_value, *args, sigs)
    # A fresh outbox message signed for P is refused on V.
    network.publisher.open_round(task.task_id, 0)
    msg = relayer.outbox_message(2, task.task_id, 0, network.view("M").head())
    block = relayer.checkpoint("M")
    to_p = relayer.envelope("M", "P", block, msg)
    sigs = [s.as_tuple() for s in relayer.attest(to_p)]
    fn, args = msg.delivery()
    with rejected("quorum: signer not a member"):
        send(network, network.keys.relayer, "V", fn, block, msg.nonce_value, *args, sigs)


def test_relay_chain_checkpoints_need_the_chains_validators(network: Network) -> None:
    relay = network.deployment.chains["R"]
    p = network.deployment.chains["P"]
    header = network.view("P").block("latest")
    forged = BlockHeader(header.number, header.block_hash, sha("root"))
    digest_args = (relay.chain_id, relay.contract, p.chain_id, header.number)
    digest = checkpoint_digest(*digest_args, forged.block_hash, forged.state_root)
    args = (p.chain_id, header.number, forged.block_hash, forged.state_root)
    with rejected("quorum: not enough signatures"):
        send(network, network.keys.relayer, "R", "submit_checkpoint", *args,
             signed_by(network.keys.validators["P"][:1], digest))  # fmt: skip
    with rejected("quorum: signer not a member"):  # M's validators cannot sign for P
        send(network, network.keys.relayer, "R", "submit_checkpoint", *args,
             signed_by(network.keys.validators["M"][:2], digest))  # fmt: skip
    with rejected("relay: unknown chain"):
        send(network, network.keys.relayer, "R", "submit_checkpoint", 999_999, *args[1:], [])


def test_a_validator_refuses_a_block_its_node_does_not_show(network: Network) -> None:
    validator = network.validators["P"][0]
    relay = network.deployment.chains["R"]
    header = validator.header("latest")
    with pytest.raises(IntegrityError, match="is not"):
        validator.sign_checkpoint(
            relay.chain_id, relay.contract, BlockHeader(header.number, header.block_hash, sha(1))
        )
    with pytest.raises(ChainUnavailable, match="chain P"):
        validator.sign_checkpoint(
            relay.chain_id, relay.contract, BlockHeader(header.number + 10_000, sha(2), sha(3))
        )


def test_forward_needs_a_checkpointed_source_block(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    moved = replace(env, src_block=env.src_block + 5_000)
    proof = network.relayer.view("P").get_proof(
        env.src_contract, list(env.body.claims()), env.src_block
    )
    with pytest.raises(AttestationRefused, match="not checkpointed"):
        collect_signatures(network.committee, network.deployment.threshold, moved, proof)
    pairs = [(s.address, s.sign_digest(moved.digest())) for s in network.keys.committee[:3]]
    with rejected("relay: source block not checkpointed"):
        network.relayer.forward(moved, sort_signatures(pairs))


def test_the_committee_refuses_a_lying_relayer_and_nothing_is_lost(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0, "V0": 0})
    task.submit("P0", 0)
    task.submit("V0", 0)
    assert network.relayer.relay_records(task.task_id, 0, lying=True) == []
    assert {r.chain for r in network.relayer.refusals[-2:]} == {"P", "V"}
    carried = task.relay_records(0)
    assert set(carried) == {"P", "V"}


def test_members_refuse_proofs_of_anything_but_the_checkpointed_state(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    member = network.committee[0]
    view = network.relayer.view("P")
    proof = view.get_proof(env.src_contract, list(env.body.claims()), env.src_block)
    member.attest(env, proof)
    wrong_account = view.get_proof(
        network.deployment.chains["P"].validators[0], list(env.body.claims()), env.src_block
    )
    with pytest.raises(IntegrityError, match="another contract"):
        member.attest(env, wrong_account)
    earlier = view.get_proof(env.src_contract, list(env.body.claims()), env.src_block - 1)
    with pytest.raises(IntegrityError):
        member.attest(env, earlier)
    extra = RoundRecords(task.task_id, 0, env.body.records * 2)
    with pytest.raises(IntegrityError):
        member.attest(replace(env, body=extra), proof)


def test_members_sign_only_aoichain_routes(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0})
    task.submit("P0", 0)
    env = task.envelope("P", 0)
    view = network.relayer.view("P")
    proof = view.get_proof(env.src_contract, list(env.body.claims()), env.src_block)
    member = network.committee[1]
    to_v = type(env)(
        **{**env.__dict__, "dst_key": "V", "dst_chain_id": network.deployment.chains["V"].chain_id,
           "dst_contract": network.deployment.chains["V"].contract}
    )  # fmt: skip
    with pytest.raises(IntegrityError, match="no RoundRecords goes P -> V"):
        member.attest(to_v, proof)
    elsewhere = replace(env, dst_contract=network.keys.relayer.address)
    with pytest.raises(IntegrityError, match="destination is not aoichain"):
        member.attest(elsewhere, proof)


# ------------------------------------------------------------------ money


def test_claim_rules(network: Network) -> None:
    task = new_task(network, enrol={"P0": 1, "P1": 0})
    task.submit("P0", 0)
    task.submit("P1", 0)
    with rejected("main: nothing to claim"):  # the round is still open
        task.worker("P0").claim(task.tickets["P0"], 3)
    task.finish_round(0, ["P0"])
    p0, p1 = task.worker("P0"), task.worker("P1")
    with pytest.raises(Exception, match="not this worker"):
        p1.claim(task.tickets["P0"], 3)
    stolen = send_claim(network, p1.signer, task.tickets["P0"])
    with rejected("main: not admitted by the publisher"):
        stolen()
    with rejected("main: nothing to claim"):  # P1 was not included
        p1.claim(task.tickets["P1"], 3)
    assert p0.claim(task.tickets["P0"], 3).amount == task.spec.menu_reward_wei_per_round[1]
    with rejected("main: nothing to claim"):  # nothing is paid twice
        p0.claim(task.tickets["P0"], 3)


def send_claim(network: Network, who, ticket):  # type: ignore[no-untyped-def]
    """A claim of ``ticket`` sent by ``who`` with plain web3 (not through its Worker)."""

    def go() -> None:
        send(network, who, "M", "claim", ticket.task_id, ticket.subchain_id, ticket.item,
             ticket.index, ticket.signature.as_tuple(), 3)  # fmt: skip

    return go


def test_the_publisher_reclaims_only_unearned_escrow_after_finishing(network: Network) -> None:
    task = new_task(network, enrol={"P0": 1})
    task.submit("P0", 0)
    task.finish_round(0, ["P0"])
    with rejected("main: task not finished"):
        network.publisher.reclaim(task.task_id)
    with rejected("main: caller is not the publisher"):
        send(network, task.worker("P0").signer, "M", "reclaim", task.task_id)
    network.publisher.finish(task.task_id)
    earned = task.spec.menu_reward_wei_per_round[1]
    assert network.publisher.reclaim(task.task_id) == task.spec.escrow_wei - earned
    with rejected("main: nothing to reclaim"):
        network.publisher.reclaim(task.task_id)
    assert task.worker("P0").claim(task.tickets["P0"], 3).amount == earned


@pytest.mark.parametrize("fn", ["open_round", "close_round", "finish_task"])
def test_only_the_publisher_runs_rounds(network: Network, fn: str) -> None:
    task = new_task(network, enrol={"P0": 0}, open_round=fn != "open_round")
    args = (task.task_id,) if fn == "finish_task" else (task.task_id, 0)
    with rejected("main: caller is not the publisher"):
        send(network, outsider(network, "M"), "M", fn, *args)


def test_global_model_rules(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0, "P1": 1})
    task.submit("P0", 0)
    carried = task.relay_records(0)
    rec = carried["P"].records[0]
    publisher = network.publisher
    late = Included(task.tickets["P1"].index, task.worker("P1").address, sha("never sent"))
    with rejected("main: included an index that was not attested"):
        publisher.record_global_model(task.task_id, 0, sha("g"), [late])
    with rejected("main: zero global model hash"):
        publisher.record_global_model(task.task_id, 0, bytes(32), [])
    with rejected("main: caller is not the publisher"):
        send(network, outsider(network, "M"), "M", "record_global_model", task.task_id, 0,
             sha("g"), bytes(32), [], [], False)  # fmt: skip
    with rejected("main: word indices not ascending"):
        send(network, network.keys.publisher, "M", "record_global_model", task.task_id, 0,
             sha("g"), bytes(32), [0, 0], [1, 1], False)  # fmt: skip
    with rejected("main: empty word"):
        send(network, network.keys.publisher, "M", "record_global_model", task.task_id, 0,
             sha("g"), bytes(32), [0], [0], False)  # fmt: skip
    included = [Included(rec.index, rec.worker, rec.update_sha256)]
    publisher.record_global_model(task.task_id, 0, sha("g"), included)
    with rejected("main: global model already recorded"):
        publisher.record_global_model(task.task_id, 0, sha("g2"), [])
    publisher.close_round(task.task_id, 0)
    with rejected("main: round not open"):
        publisher.record_global_model(task.task_id, 1, sha("g3"), [])


def test_a_global_model_can_open_the_next_round_in_the_same_message(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0}, rounds=2)
    task.submit("P0", 0)
    carried = task.relay_records(0)
    rec = carried["P"].records[0]
    included = [Included(rec.index, rec.worker, rec.update_sha256)]
    publisher = network.publisher
    publisher.record_global_model(task.task_id, 0, sha("g0"), included, open_next=True)
    state = publisher.task(task.task_id)
    assert (state["rounds_closed"], state["rounds_opened"], state["round_open"]) == (1, 2, True)
    before = len(network.receipts)
    network.relayer.relay_global_model(task.task_id, 0)
    labels = [r.label for r in network.receipts[before:]]
    assert "receive_round_open M->P" not in labels  # one message carried both
    assert call(network, "P", "round_state", task.task_id) == (1, True)
    task.submit("P0", 1)  # round 1 takes updates on P
    task.relay_records(1)
    with rejected("main: no rounds left"):  # round 1 is the last: nothing to open after it
        publisher.record_global_model(task.task_id, 1, sha("g1"), [], open_next=True)


def test_late_records_arrive_in_a_second_message(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0, "P1": 1})
    task.submit("P0", 0)
    assert task.relay_records(0)["P"].count == 1
    task.submit("P1", 0)
    assert task.relay_records(0)["P"].count == 2
    chain_id = network.deployment.chains["P"].chain_id
    assert call(network, "M", "inbound_count", chain_id, task.task_id, 0) == 2
    assert task.relay_records(0) == {}


def test_a_copied_hash_is_recorded_for_its_copier_without_displacing_the_author(
    network: Network,
) -> None:
    task = new_task(network, enrol={"P0": 0, "P1": 1})
    h = task.submit("P0", 0)
    task.worker("P1").submit_update(task.task_id, 0, h, 10, 1_000)
    records = task.relay_records(0)["P"].records
    assert [(r.worker, r.update_sha256) for r in records] == [
        (task.worker("P0").address, h),
        (task.worker("P1").address, h),
    ]


def test_a_transaction_the_node_refuses_is_a_chain_rejection(network: Network) -> None:
    poor = outsider(network)  # no gas money anywhere
    with pytest.raises(ChainRejected):
        send(network, poor, "M", "finish_task", 1)


def test_checkpoints_are_reused_and_relaying_is_idempotent(network: Network) -> None:
    task = new_task(network, enrol={"P0": 0}, open_round=False)
    assert network.relayer.relay_task(task.task_id) == []
    first = network.relayer.checkpoint("P")
    assert network.relayer.checkpoint("P") == first
    before = len(network.receipts)
    task.open(0)
    assert network.relayer.relay_round_open(task.task_id, 0) == []
    assert len(network.receipts) > before
    assert contract(network, "M").address == network.deployment.chains["M"].contract
    assert client(network, "M").chain_id == network.deployment.chains["M"].chain_id

"""The ledger suite: one behaviour per test, run on every backend (embedded and anvil).

Actors: ``publisher``, ``aggregator``, ``relayer``, the committee, the
validators, and workers ``worker_p0``.. / ``worker_v0``... Each test
publishes its own task on the session's ledger.
"""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import Task, new_task, sha

from aoichain.chain import AttestationRefused, ChainRejected, Ledger
from aoichain.chain.artifacts import load
from aoichain.chain.digests import KIND_TASK, UpdateRecord
from aoichain.chain.keys import signer, sort_signatures
from aoichain.chain.proofs import parse_get_proof
from aoichain.chain.relay import Envelope, UpdateBatch, Validator, collect_signatures
from aoichain.errors import IntegrityError

# ------------------------------------------------------------------ helpers


def update_envelope(task: Task, space: str, round_no: int = 0) -> Envelope:
    """A checkpointed, honest P/V -> M batch of every record of the round."""
    led = task.ledger
    block = led.checkpoint(space)
    rows = led.client(space).call(
        led.contract(space), "records", task.task_id, round_no, block=block
    )
    batch = UpdateBatch(task.task_id, round_no, tuple(UpdateRecord.from_row(r) for r in rows))
    return led.envelope(space, "M", block, batch)


def signed_by(signers: list[Any], digest: bytes) -> list[tuple[int, bytes, bytes]]:
    """Signatures of ``signers`` over ``digest``, sorted by signer address."""
    pairs = [(s.address, s.sign_digest(digest)) for s in signers]
    return [s.as_tuple() for s in sort_signatures(pairs)]


def committee_sigs(
    led: Ledger, digest: bytes, members: list[int]
) -> list[tuple[int, bytes, bytes]]:
    """Signatures of the given committee members, sorted by address."""
    return signed_by([led.parties.committee[i] for i in members], digest)


def deliver_updates(led: Ledger, env: Envelope, sigs: list[Any]) -> Any:
    body = env.body
    assert isinstance(body, UpdateBatch)
    return led.client("M").transact(
        led.parties.relayer,
        led.contract("M"),
        "deliver_updates",
        env.src_chain_id,
        env.src_block,
        body.task_id,
        body.round_no,
        [r.as_tuple() for r in body.records],
        sigs,
    )


def rejected(reason: str) -> Any:
    return pytest.raises(ChainRejected, match=f"^.*{reason}$")


def as_party(led: Ledger, who: Any, fn: str, *args: Any) -> Any:
    return led.client("M").transact(who, led.contract("M"), fn, *args)


# ------------------------------------------------------------ the happy path


def test_one_round_from_publication_to_payment(ledger: Ledger) -> None:
    task = new_task(ledger, rewards=(10, 25), max_workers=4, rounds=2)
    hashes = {(s, i): task.submit(s, i, 0) for s in "PV" for i in (0, 1)}
    attested = ledger.relay_updates(task.task_id, 0)
    assert {(a.space, a.worker) for a in attested} == {
        (s, ledger.workers[s][i]) for s in "PV" for i in (0, 1)
    }
    for a in attested:
        i = ledger.workers[a.space].index(a.worker)
        assert a.update_sha256 == hashes[(a.space, i)]
        assert (a.samples, a.data_timestamp, a.item, a.round_no) == (10 + i, 1_000, i % 2, 0)

    included = [hashes[("P", 1)], hashes[("V", 0)]]
    global_sha = sha("global", task.task_id)
    earned_before = {w: ledger.earned(w) for w in ledger.workers["P"] + ledger.workers["V"]}
    ledger.record_global_model(task.task_id, 0, global_sha, included)
    assert ledger.relay_global_model(task.task_id, 0) == {"P": global_sha, "V": global_sha}
    sub_p = ledger.contract("P")
    assert sub_p.functions.was_included(task.task_id, 0, hashes[("P", 1)]).call()
    assert not sub_p.functions.was_included(task.task_id, 0, hashes[("P", 0)]).call()
    ledger.close_round(task.task_id, 0)

    worker_p1, worker_v0 = ledger.workers["P"][1], ledger.workers["V"][0]
    assert ledger.earned(worker_p1) - earned_before[worker_p1] == 25
    assert ledger.earned(worker_v0) - earned_before[worker_v0] == 10
    ledger.finish_task(task.task_id)
    escrow = 4 * 25 * 2
    assert ledger.reclaim(task.task_id) == escrow - 35
    before = ledger.balance("M", worker_p1)
    paid, fee = ledger.withdraw(worker_p1)
    assert paid >= 25 and ledger.balance("M", worker_p1) - before == paid - fee
    assert ledger.withdrawable(worker_p1) == 0


def test_every_transaction_is_in_the_receipt_log(ledger: Ledger) -> None:
    n = len(ledger.receipts)
    task = new_task(ledger, enrol={"P": [0]})
    receipt = ledger.submit_update("P", 0, task.task_id, 0, sha("r"), 1, 1)
    log = ledger.receipts[n:]
    assert log[-1] == receipt and receipt.chain == "P" and receipt.label == "submit_update"
    assert {r.chain for r in log} == {"M", "R", "P", "V"}
    assert all(r.gas_used > 0 and r.tx_hash.startswith("0x") and r.status for r in log)
    assert sum(r.gas_used for r in ledger.receipts) == ledger.gas_used_total
    assert sum(ledger.gas_by_chain().values()) == ledger.gas_used_total


def test_deployments_describe_every_chain(ledger: Ledger) -> None:
    d = ledger.deployments()
    assert sorted(d["chains"]) == ["M", "P", "R", "V"]
    ids = [c["chain_id"] for c in d["chains"].values()]
    assert len(set(ids)) == 4
    for key, c in d["chains"].items():
        assert ledger.contract(key).w3.eth.chain_id == c["chain_id"]
        (contract,) = c["contracts"].values()
        assert contract["address"] == ledger.contract(key).address and contract["abi"]
    assert d["committee"] == {"members": ledger.committee, "threshold": 3}
    assert len(d["chains"]["P"]["validators"]) == 3


# ---------------------------------------------------- subchain update rules


def test_update_from_a_worker_not_enrolled_is_rejected(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    with rejected("subchain: worker not enrolled"):
        task.submit("P", 1, 0)
    with rejected("subchain: worker not enrolled"):
        task.submit("V", 0, 0)  # enrolled in nothing on V


def test_second_update_in_a_round_is_rejected(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    with rejected("subchain: update already submitted"):
        task.submit("P", 0, 0, tag="again")


def test_update_for_a_round_that_is_not_open_is_rejected(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0, 1]}, open_round=False)
    with rejected("subchain: round not open"):
        task.submit("P", 0, 0)  # nothing opened yet
    ledger.open_round(task.task_id, 0)
    with rejected("subchain: round not open"):
        task.submit("P", 0, 1)  # a later round
    task.submit("P", 0, 0)
    ledger.relay_updates(task.task_id, 0)
    ledger.record_global_model(task.task_id, 0, sha("g"), [])
    ledger.relay_global_model(task.task_id, 0)
    with rejected("subchain: round not open"):
        task.submit("P", 1, 0)  # the global model closed it on P


def test_enrolment_rules(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]}, rewards=(5, 6, 7))
    assert ledger.enrolment("P", task.task_id, 0) == 0
    assert ledger.enrolment("P", task.task_id, 1) is None
    with rejected("subchain: already enrolled"):
        ledger.enrol("P", 0, task.task_id, 1)
    with rejected("subchain: no such menu item"):
        ledger.enrol("P", 1, task.task_id, 3)
    unrelayed = ledger.publish_task(sha("x"), 1, 0.5, [1.0], [1], 1)
    with rejected("subchain: unknown task"):
        ledger.enrol("P", 0, unrelayed, 0)


# ------------------------------------------------ cross-chain message rules


@pytest.mark.parametrize(
    ("members", "outsider", "reason"),
    [
        ([0, 1], False, "quorum: not enough signatures"),
        ([0, 1], True, "quorum: signer not a member"),
        ([0, 0, 1], False, "quorum: same signer twice"),
    ],
    ids=["fewer-than-k", "signer-outside-committee", "same-signer-twice"],
)
def test_update_message_needs_k_distinct_committee_signatures(
    ledger: Ledger, members: list[int], outsider: bool, reason: str
) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    digest = env.digest()
    signers = [ledger.parties.committee[i] for i in members]
    if outsider:
        signers.append(signer(ledger.config.key_seed, "outsider"))
    with rejected(reason):
        deliver_updates(ledger, env, signed_by(signers, digest))
    deliver_updates(ledger, env, committee_sigs(ledger, digest, [0, 1, 2]))  # nothing half-written


def test_unsorted_and_invalid_signatures_are_rejected(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    sigs = committee_sigs(ledger, env.digest(), [0, 1, 2])
    with rejected("quorum: signers not sorted"):
        deliver_updates(ledger, env, list(reversed(sigs)))
    with rejected("quorum: invalid signature"):
        deliver_updates(ledger, env, [(27, b"\0" * 32, b"\0" * 32), *sigs])


def test_message_signed_for_another_chain_is_rejected(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    for_v = Envelope(**{**env.__dict__, "dst_key": "V", "dst_chain_id": ledger.chain_id("V")})
    with rejected("quorum: signer not a member"):
        deliver_updates(ledger, env, committee_sigs(ledger, for_v.digest(), [0, 1, 2]))


def test_message_signed_for_another_contract_is_rejected(ledger: Ledger) -> None:
    # A second main contract on M with the same committee (e.g. an older deployment):
    # the deployer's nonce 0 gave every chain's contract the same address, so the
    # twin is the contract a replay could actually target.
    twin_address = ledger.client("M").deploy(
        ledger.parties.deployer, load("main"), ledger.committee, ledger.config.threshold
    )
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    for_twin = Envelope(**{**env.__dict__, "dst_contract": twin_address})
    with rejected("quorum: signer not a member"):
        deliver_updates(ledger, env, committee_sigs(ledger, for_twin.digest(), [0, 1, 2]))


def test_message_delivered_twice_is_rejected_everywhere(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    sigs = committee_sigs(ledger, env.digest(), [1, 2, 4])
    deliver_updates(ledger, env, sigs)
    with rejected("main: message already delivered"):
        deliver_updates(ledger, env, sigs)
    relay = ledger.contract("R")
    forward_args = [
        env.src_chain_id,
        env.src_contract,
        env.src_block,
        env.dst_chain_id,
        env.dst_contract,
        env.body.nonce(),
        env.body.payload_hash(),
        sigs,
    ]
    ledger.client("R").transact(ledger.parties.relayer, relay, "forward", *forward_args)
    with rejected("relay: message already forwarded"):
        ledger.client("R").transact(ledger.parties.relayer, relay, "forward", *forward_args)


def test_subchain_accepts_each_main_chain_message_once_and_only_for_itself(ledger: Ledger) -> None:
    task_id = ledger.publish_task(sha("spec", "once"), 2, 0.8, [1.0, 2.0], [3, 4], 2)
    block = ledger.checkpoint("M")
    msg = ledger.outbox_message(KIND_TASK, task_id, 0, block)
    to_p = ledger.envelope("M", "P", block, msg)
    sigs_for_p = committee_sigs(ledger, to_p.digest(), [0, 2, 3])

    def receive(dst: str, sigs: list[Any]) -> Any:
        return ledger.client(dst).transact(
            ledger.parties.relayer,
            ledger.contract(dst),
            "receive_task",
            block,
            msg.nonce(),
            task_id,
            *msg.fields,
            sigs,
        )

    with rejected("quorum: signer not a member"):
        receive("V", sigs_for_p)  # signed for P
    with rejected("quorum: not enough signatures"):
        receive("P", sigs_for_p[:2])
    receive("P", sigs_for_p)
    with rejected("subchain: message already delivered"):
        receive("P", sigs_for_p)
    ledger.relay_task(task_id)  # V still gets it; P is skipped
    assert ledger.contract("V").functions.tasks(task_id).call()[1] == 2


def test_relay_chain_checkpoints_need_the_chains_validators(ledger: Ledger) -> None:
    relay = ledger.contract("R")
    p_id = ledger.chain_id("P")
    head = ledger.contract("P").w3.eth.get_block("latest")
    number, block_hash, root = int(head["number"]), bytes(head["hash"]), bytes(head["stateRoot"])
    if number <= relay.functions.latest_checkpoint(p_id).call():
        ledger.submit_update("P", 0, new_task(ledger, enrol={"P": [0]}).task_id, 0, sha("cp"), 1, 1)
        head = ledger.contract("P").w3.eth.get_block("latest")
        number, block_hash, root = (
            int(head["number"]),
            bytes(head["hash"]),
            bytes(head["stateRoot"]),
        )
    digest = relay.functions.checkpoint_digest(p_id, number, block_hash, root).call()

    def submit(signers: list[Any]) -> Any:
        sigs = signed_by(signers, digest)
        return ledger.client("R").transact(
            ledger.parties.relayer, relay, "submit_checkpoint", p_id, number, block_hash, root, sigs
        )

    validators = ledger.parties.validators["P"]
    with rejected("quorum: not enough signatures"):
        submit(validators[:1])
    with rejected("quorum: signer not a member"):
        submit(ledger.parties.committee[:2])  # the committee is not P's validator set
    with rejected("quorum: signer not a member"):
        submit(ledger.parties.validators["V"][:2])
    submit(validators[1:])
    with rejected("relay: checkpoint not newer"):
        submit(validators[:2])


def test_validator_refuses_a_block_its_node_does_not_show(ledger: Ledger) -> None:
    head = ledger.contract("P").w3.eth.get_block("latest")
    honest = Validator(ledger.parties.validators["P"][0], ledger.client("P").node)
    r_id, r_addr = ledger.chain_id("R"), ledger.contract("R").address
    honest.sign_checkpoint(
        r_id, r_addr, head["number"], bytes(head["hash"]), bytes(head["stateRoot"])
    )
    with pytest.raises(IntegrityError, match="is not 0x"):
        honest.sign_checkpoint(
            r_id, r_addr, head["number"], bytes(head["hash"]), sha("forged root")
        )


def test_forward_needs_a_checkpointed_source_block(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    sigs = committee_sigs(ledger, env.digest(), [0, 1, 2])
    with rejected("relay: source block not checkpointed"):
        ledger.client("R").transact(
            ledger.parties.relayer,
            ledger.contract("R"),
            "forward",
            env.src_chain_id,
            env.src_contract,
            env.src_block + 10_000,
            env.dst_chain_id,
            env.dst_contract,
            env.body.nonce(),
            env.body.payload_hash(),
            sigs,
        )


# ------------------------------------------------------------ lying relayer


def test_committee_refuses_a_lying_relayer_and_nothing_is_lost(ledger: Ledger) -> None:
    task = new_task(ledger)
    hashes = {task.submit(s, i, 0) for s in "PV" for i in (0, 1)}
    n_refusals = len(ledger.refusals)
    attested = ledger.relay_updates(task.task_id, 0, lying_relayer="P")
    assert {a.space for a in attested} == {"V"}
    assert ledger.refusals[n_refusals]["space"] == "P"
    assert "differs from chain P's state" in ledger.refusals[n_refusals]["reason"]
    assert (
        ledger.contract("M").functions.inbound_count(ledger.chain_id("P"), task.task_id, 0).call()
        == 0
    )
    late = ledger.relay_updates(task.task_id, 0)  # an honest relayer later
    assert {a.space for a in late} == {"P"}
    assert set(ledger.attested_updates(task.task_id, 0)) == hashes


def test_members_refuse_proofs_of_anything_but_the_checkpointed_state(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    members = ledger.committee_members
    good = ledger.proof_for(env)
    members[0].attest(env, good)
    # A proof read at an older block does not verify against the checkpointed root.
    stale = ledger.proof_for(Envelope(**{**env.__dict__, "src_block": env.src_block - 1}))
    with pytest.raises(IntegrityError, match="does not verify"):
        members[0].attest(env, stale)
    # A proof of another account than the source contract.
    with pytest.raises(IntegrityError, match="another contract"):
        members[1].attest(env, _proof_of(ledger, "P", ledger.parties.relayer.address, env))
    # A block that was never checkpointed.
    unknown = Envelope(**{**env.__dict__, "src_block": env.src_block + 1_000})
    with pytest.raises(IntegrityError, match="not checkpointed"):
        members[2].attest(unknown, good)
    with pytest.raises(AttestationRefused, match="only 0 of the 3"):
        collect_signatures(members, 3, unknown, good)


def _proof_of(ledger: Ledger, chain: str, address: str, env: Envelope) -> Any:
    raw = ledger.client(chain).node.get_proof(address, list(env.body.claims()), env.src_block)
    return parse_get_proof(raw)


# ------------------------------------------------------------- money rules


def test_withdrawal_rules(ledger: Ledger) -> None:
    nobody = ledger.workers["V"][3]
    if ledger.withdrawable(nobody) == 0:
        with rejected("main: nothing to withdraw"):
            ledger.withdraw(nobody)
    task = new_task(ledger, enrol={"P": [2]})
    h = task.submit("P", 2, 0)
    ledger.relay_updates(task.task_id, 0)
    ledger.record_global_model(task.task_id, 0, sha("g2"), [h])
    worker = ledger.workers["P"][2]
    owed = ledger.withdrawable(worker)
    assert owed >= task.rewards[0]
    assert ledger.withdraw(worker).amount == owed
    with rejected("main: nothing to withdraw"):
        ledger.withdraw(worker)


def test_publisher_reclaims_only_unspent_escrow(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [1], "V": [1]}, rewards=(7, 11), max_workers=2, rounds=2)
    hp, hv = task.submit("P", 1, 0), task.submit("V", 1, 0)
    ledger.relay_updates(task.task_id, 0)
    with rejected("main: task not finished"):
        ledger.reclaim(task.task_id)
    ledger.record_global_model(task.task_id, 0, sha("g3"), [hp, hv])
    ledger.close_round(task.task_id, 0)
    ledger.finish_task(task.task_id)
    with rejected("main: caller is not the publisher"):
        as_party(ledger, ledger.parties.aggregator, "reclaim", task.task_id)
    m = ledger.contract("M")
    balance_before = ledger.balance("M", m.address)
    assert ledger.reclaim(task.task_id) == 2 * 11 * 2 - 22
    assert balance_before - ledger.balance("M", m.address) == 22
    with rejected("main: nothing to reclaim"):
        ledger.reclaim(task.task_id)
    # What the workers earned is still there for them.
    assert ledger.withdraw(ledger.workers["P"][1]).amount >= 11
    assert ledger.withdraw(ledger.workers["V"][1]).amount >= 11


@pytest.mark.parametrize("fn", ["open_round", "close_round", "record_global_model", "finish_task"])
def test_only_the_aggregator_runs_rounds(ledger: Ledger, fn: str) -> None:
    task = new_task(ledger, enrol={}, open_round=fn != "open_round")
    args: list[Any] = {
        "open_round": [task.task_id, 0],
        "close_round": [task.task_id, 0],
        "record_global_model": [task.task_id, 0, sha("g"), []],
        "finish_task": [task.task_id],
    }[fn]
    outsider = ledger.parties.workers["P"][0]
    reason = "publisher or aggregator" if fn == "finish_task" else "aggregator"
    with rejected(f"main: caller is not the {reason}"):
        as_party(ledger, outsider, fn, *args)
    if fn != "finish_task":
        with rejected("main: caller is not the aggregator"):
            as_party(ledger, ledger.parties.publisher, fn, *args)


def test_global_model_rules(ledger: Ledger) -> None:
    task = new_task(ledger, max_workers=2)
    hashes = [task.submit(s, i, 0) for s in "PV" for i in (0, 1)]
    ledger.relay_updates(task.task_id, 0)
    with rejected("main: update not attested"):
        ledger.record_global_model(task.task_id, 0, sha("g"), [sha("never submitted")])
    with rejected("main: update included twice"):
        ledger.record_global_model(task.task_id, 0, sha("g"), [hashes[0], hashes[0]])
    with rejected("main: more updates than max_workers"):
        ledger.record_global_model(task.task_id, 0, sha("g"), hashes[:3])
    with rejected("main: round not open"):
        ledger.record_global_model(task.task_id, 1, sha("g"), [])
    ledger.record_global_model(task.task_id, 0, sha("g"), hashes[:2])
    with rejected("main: global model already recorded"):
        ledger.record_global_model(task.task_id, 0, sha("g'"), [])
    with rejected("main: a round is already open"):
        ledger.open_round(task.task_id, 1)
    ledger.close_round(task.task_id, 0)
    with rejected("main: round out of order"):
        ledger.open_round(task.task_id, 2)
    with rejected("main: round not open"):
        ledger.close_round(task.task_id, 0)


# -------------------------------------------- nothing lost, nothing twice


def test_late_updates_arrive_in_a_second_batch(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0, 1, 2]})
    task.submit("P", 0, 0)
    first = ledger.relay_updates(task.task_id, 0)
    n_tx = len(ledger.receipts)
    assert ledger.relay_updates(task.task_id, 0) == [] and len(ledger.receipts) == n_tx
    task.submit("P", 1, 0)
    task.submit("P", 2, 0)
    second = ledger.relay_updates(task.task_id, 0)
    assert [a.worker for a in first] == [ledger.workers["P"][0]]
    assert [a.worker for a in second] == [ledger.workers["P"][1], ledger.workers["P"][2]]
    assert len(ledger.attested_updates(task.task_id, 0)) == 3


def test_a_copied_update_is_accepted_once_and_paid_once(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [3], "V": [3]})
    copied = sha("the same bytes", task.task_id)
    ledger.submit_update("P", 3, task.task_id, 0, copied, 5, 5)
    ledger.submit_update("V", 3, task.task_id, 0, copied, 5, 5)
    attested = ledger.relay_updates(task.task_id, 0)
    assert [a.space for a in attested] == ["P"]
    assert ledger.attested_updates(task.task_id, 0) == [copied]
    before = ledger.earned(ledger.workers["V"][3])
    ledger.record_global_model(task.task_id, 0, sha("g"), [copied])
    assert ledger.earned(ledger.workers["V"][3]) == before


def test_a_transaction_the_node_refuses_is_a_chain_rejection(ledger: Ledger) -> None:
    # Workers of V hold no ether on P: the node (or py-evm) refuses their gas.
    task = new_task(ledger, enrol={})
    worker_v2 = ledger.parties.workers["V"][2]
    with pytest.raises(ChainRejected) as info:
        ledger.client("P").transact(worker_v2, ledger.contract("P"), "enrol", task.task_id, 0)
    assert info.value.chain == "P" and info.value.reason
    ledger.enrol("V", 2, task.task_id, 0)  # the same key still works where it is funded


def test_members_sign_only_aoichain_routes(ledger: Ledger) -> None:
    task = new_task(ledger, enrol={"P": [0]})
    task.submit("P", 0, 0)
    env = update_envelope(task, "P")
    proof = ledger.proof_for(env)
    member = ledger.committee_members[0]
    fake_source = Envelope(**{**env.__dict__, "src_contract": ledger.relayer})
    with pytest.raises(IntegrityError, match="source is not aoichain's contract"):
        member.attest(fake_source, proof)
    to_v = Envelope(**{**env.__dict__, "dst_key": "V", "dst_chain_id": ledger.chain_id("V")})
    with pytest.raises(IntegrityError, match="no UpdateBatch goes P -> V"):
        member.attest(to_v, proof)

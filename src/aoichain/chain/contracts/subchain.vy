# pragma version 0.4.3
"""
@title subchain
@notice A subchain (P for physical workers, V for their digital twins):
        tasks relayed down from the main chain, worker enrolment with the
        menu item each worker chose, one update record per worker per
        round, and the global models announced from the main chain.
@dev Messages from the main chain are accepted with k-of-n relay committee
     signatures over a digest bound to this chain and contract; each main
     chain outbox nonce is accepted once. A round is open for updates
     between its relayed opening and its relayed global model. The records
     of each (task, round) are committed by a hash chain `acc` and a count,
     two storage slots the relay committee proves with eth_getProof.
     Every revert reason starts with "subchain: " (or "quorum: ").
"""

import quorum
import messages

initializes: quorum

exports: (quorum.members, quorum.threshold)


struct TaskInfo:
    spec_hash: bytes32
    rounds: uint256
    target_accuracy_ppm: uint256
    max_workers: uint256
    rounds_opened: uint256
    current_round: uint256
    round_open: bool
    enrolled: uint256


struct Submission:
    update_sha256: bytes32
    samples: uint256
    data_timestamp: uint256


event TaskReceived:
    task_id: indexed(uint256)
    nonce: uint256


event Enrolled:
    task_id: indexed(uint256)
    worker: indexed(address)
    item: uint256


event RoundOpened:
    task_id: indexed(uint256)
    round_no: uint256


event UpdateSubmitted:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    worker: indexed(address)
    update_sha256: bytes32
    samples: uint256
    data_timestamp: uint256
    item: uint256


event GlobalModelAnnounced:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    global_sha256: bytes32


main_chain_id: public(uint256)
main_contract: public(address)
space: public(uint256)

tasks: public(HashMap[uint256, TaskInfo])
_menu_f: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]
_menu_reward: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]
# task -> worker -> chosen menu item + 1 (0: not enrolled)
_enrolment: HashMap[uint256, HashMap[address, uint256]]

# task -> round -> worker -> its update; task, round, worker and item are the keys
# and the enrolment, so only what the worker states is stored.
_submissions: HashMap[uint256, HashMap[uint256, HashMap[address, Submission]]]
# task -> round -> workers in submission order
_submitters: HashMap[uint256, HashMap[uint256, DynArray[address, messages.MAX_BATCH]]]
acc: public(HashMap[uint256, HashMap[uint256, bytes32]])
record_count: public(HashMap[uint256, HashMap[uint256, uint256]])

consumed: public(HashMap[uint256, bool])
global_models: public(HashMap[uint256, HashMap[uint256, bytes32]])
_included: HashMap[bytes32, bool]


@deploy
def __init__(
    committee: DynArray[address, quorum.MAX_MEMBERS],
    threshold: uint256,
    main_chain_id: uint256,
    main_contract: address,
    space: uint256,
):
    """
    @notice Deploy a subchain contract.
    @param committee The relay committee members (n).
    @param threshold How many committee signatures a message needs (k).
    @param main_chain_id The main chain's id.
    @param main_contract The main chain contract, the only message source.
    @param space 1 for the physical subchain P, 2 for the virtual subchain V.
    """
    assert space == 1 or space == 2, "subchain: space must be 1 (P) or 2 (V)"
    quorum._define(quorum.COMMITTEE, committee, threshold)
    self.main_chain_id = main_chain_id
    self.main_contract = main_contract
    self.space = space


@external
def receive_task(
    src_block: uint256,
    nonce: uint256,
    task_id: uint256,
    spec_hash: bytes32,
    rounds: uint256,
    target_accuracy_ppm: uint256,
    max_workers: uint256,
    menu_f_micro: DynArray[uint256, messages.MAX_MENU],
    menu_reward_wei: DynArray[uint256, messages.MAX_MENU],
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Accept a task allocated on the main chain.
    @param src_block The checkpointed main-chain block the message was proven at.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task id on the main chain.
    @param spec_hash sha256 of the model specification.
    @param rounds The maximum number of rounds.
    @param target_accuracy_ppm Target accuracy in parts per million.
    @param max_workers How many workers may be paid in one round.
    @param menu_f_micro Update frequency of each menu item, 1e-6 units.
    @param menu_reward_wei Reward per round of each menu item, wei.
    @param signatures Committee signatures, sorted by signer address.
    """
    payload: bytes32 = messages._task_payload(
        task_id, spec_hash, rounds, target_accuracy_ppm, max_workers, menu_f_micro, menu_reward_wei
    )
    self._accept(src_block, nonce, payload, signatures)
    assert self.tasks[task_id].rounds == 0, "subchain: task already known"
    self.tasks[task_id] = TaskInfo(
        spec_hash=spec_hash,
        rounds=rounds,
        target_accuracy_ppm=target_accuracy_ppm,
        max_workers=max_workers,
        rounds_opened=0,
        current_round=0,
        round_open=False,
        enrolled=0,
    )
    self._menu_f[task_id] = menu_f_micro
    self._menu_reward[task_id] = menu_reward_wei
    log TaskReceived(task_id=task_id, nonce=nonce)


@external
def receive_round_open(
    src_block: uint256,
    nonce: uint256,
    task_id: uint256,
    round_no: uint256,
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Open a round for updates, as the main chain did (rounds count
            from 0; an opening older than one already delivered is refused).
    @param src_block The checkpointed main-chain block.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task.
    @param round_no The round opened on the main chain.
    @param signatures Committee signatures, sorted by signer address.
    """
    self._accept(src_block, nonce, messages._round_open_payload(task_id, round_no), signatures)
    assert self.tasks[task_id].rounds > 0, "subchain: unknown task"
    assert round_no >= self.tasks[task_id].rounds_opened, "subchain: stale round opening"
    self.tasks[task_id].rounds_opened = round_no + 1
    self.tasks[task_id].current_round = round_no
    self.tasks[task_id].round_open = True
    log RoundOpened(task_id=task_id, round_no=round_no)


@external
def receive_global_model(
    src_block: uint256,
    nonce: uint256,
    task_id: uint256,
    round_no: uint256,
    global_sha256: bytes32,
    included: DynArray[bytes32, messages.MAX_INCLUDED],
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Announce a round's global model; the round takes no more updates.
    @param src_block The checkpointed main-chain block.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task.
    @param round_no The round.
    @param global_sha256 sha256 of the global model, for workers to verify.
    @param included The update hashes the model aggregated.
    @param signatures Committee signatures, sorted by signer address.
    """
    payload: bytes32 = messages._global_model_payload(task_id, round_no, global_sha256, included)
    self._accept(src_block, nonce, payload, signatures)
    assert self.tasks[task_id].rounds > 0, "subchain: unknown task"
    self.global_models[task_id][round_no] = global_sha256
    for h: bytes32 in included:
        self._included[keccak256(abi_encode(task_id, round_no, h))] = True
    if self.tasks[task_id].current_round == round_no:
        self.tasks[task_id].round_open = False
    log GlobalModelAnnounced(task_id=task_id, round_no=round_no, global_sha256=global_sha256)


@external
def enrol(task_id: uint256, item: uint256):
    """
    @notice Enrol the caller in a task with the menu item it chose.
    @param task_id The task.
    @param item Index of the chosen menu item.
    """
    assert self.tasks[task_id].rounds > 0, "subchain: unknown task"
    assert item < len(self._menu_f[task_id]), "subchain: no such menu item"
    assert self._enrolment[task_id][msg.sender] == 0, "subchain: already enrolled"
    self._enrolment[task_id][msg.sender] = item + 1
    self.tasks[task_id].enrolled += 1
    log Enrolled(task_id=task_id, worker=msg.sender, item=item)


@external
def submit_update(
    task_id: uint256, round_no: uint256, update_sha256: bytes32, samples: uint256, data_timestamp: uint256
):
    """
    @notice Record the caller's model update for a round.
    @param task_id The task.
    @param round_no The open round.
    @param update_sha256 sha256 of the update's bytes in the model store.
    @param samples How many samples the update was trained on.
    @param data_timestamp When the data used was sensed (unix seconds).
    """
    chosen: uint256 = self._enrolment[task_id][msg.sender]
    assert chosen > 0, "subchain: worker not enrolled"
    t: TaskInfo = self.tasks[task_id]
    assert t.round_open and t.current_round == round_no, "subchain: round not open"
    assert self._submissions[task_id][round_no][msg.sender].update_sha256 == empty(bytes32), "subchain: update already submitted"
    assert update_sha256 != empty(bytes32), "subchain: zero update hash"
    assert samples > 0, "subchain: no samples"
    rec: messages.UpdateRecord = messages.UpdateRecord(
        task_id=task_id,
        round_no=round_no,
        worker=msg.sender,
        update_sha256=update_sha256,
        samples=samples,
        data_timestamp=data_timestamp,
        item=chosen - 1,
    )
    self._submissions[task_id][round_no][msg.sender] = Submission(
        update_sha256=update_sha256, samples=samples, data_timestamp=data_timestamp
    )
    self._submitters[task_id][round_no].append(msg.sender)
    self.acc[task_id][round_no] = messages._chain_record(self.acc[task_id][round_no], rec)
    self.record_count[task_id][round_no] += 1
    log UpdateSubmitted(
        task_id=task_id,
        round_no=round_no,
        worker=msg.sender,
        update_sha256=update_sha256,
        samples=samples,
        data_timestamp=data_timestamp,
        item=chosen - 1,
    )


@external
@view
def records(task_id: uint256, round_no: uint256) -> DynArray[messages.UpdateRecord, messages.MAX_BATCH]:
    """
    @notice Every update record of a round, in submission order.
    @param task_id The task.
    @param round_no The round.
    @return The records.
    """
    out: DynArray[messages.UpdateRecord, messages.MAX_BATCH] = []
    for worker: address in self._submitters[task_id][round_no]:
        sub: Submission = self._submissions[task_id][round_no][worker]
        out.append(
            messages.UpdateRecord(
                task_id=task_id,
                round_no=round_no,
                worker=worker,
                update_sha256=sub.update_sha256,
                samples=sub.samples,
                data_timestamp=sub.data_timestamp,
                item=self._enrolment[task_id][worker] - 1,
            )
        )
    return out


@external
@view
def enrolment(task_id: uint256, worker: address) -> (bool, uint256):
    """
    @notice Whether a worker is enrolled in a task, and its menu item.
    @param task_id The task.
    @param worker The worker.
    @return (enrolled, item).
    """
    chosen: uint256 = self._enrolment[task_id][worker]
    if chosen == 0:
        return False, 0
    return True, chosen - 1


@external
@view
def menu(task_id: uint256) -> (DynArray[uint256, messages.MAX_MENU], DynArray[uint256, messages.MAX_MENU]):
    """
    @notice A task's contract menu as relayed from the main chain.
    @param task_id The task.
    @return Frequencies f_n (1e-6 units) and rewards R_n per round (wei).
    """
    return self._menu_f[task_id], self._menu_reward[task_id]


@external
@view
def was_included(task_id: uint256, round_no: uint256, update_sha256: bytes32) -> bool:
    """
    @notice Whether the announced global model of a round aggregated an update.
    @param task_id The task.
    @param round_no The round.
    @param update_sha256 The update's hash.
    @return True if included.
    """
    return self._included[keccak256(abi_encode(task_id, round_no, update_sha256))]


@internal
def _accept(
    src_block: uint256,
    nonce: uint256,
    payload_hash: bytes32,
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    assert not self.consumed[nonce], "subchain: message already delivered"
    digest: bytes32 = messages._message_digest(
        self.main_chain_id, self.main_contract, src_block, chain.id, self, nonce, payload_hash
    )
    quorum._require(quorum.COMMITTEE, digest, signatures)
    self.consumed[nonce] = True

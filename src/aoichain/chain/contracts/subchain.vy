# pragma version 0.4.3
"""
@title subchain
@notice A subchain (physical workers or their digital twins): tasks relayed
        down from the main chain, admission of the workers the publisher
        admitted, one update record per worker per round, and the global
        models announced from the main chain.
@dev Messages from the main chain are accepted with k-of-n relay committee
     signatures over a digest bound to this chain and contract; each main
     chain outbox nonce is accepted once. A worker enrols with a ticket the
     task's publisher signed over (this chain, this contract, task, worker,
     item, index), so no one else can take a place or choose another item.
     A round takes updates between its relayed opening and its relayed
     global model. A round's records are committed by a hash chain `acc`,
     a count and a bitmap of the indices that submitted, which the relay
     committee proves with eth_getProof; the records themselves are in the
     UpdateSubmitted logs (anyone can check them against `acc`).
     Every revert reason starts with "subchain: " (or "quorum: ").
"""

import quorum
import messages

initializes: quorum

exports: (quorum.members, quorum.threshold)


struct TaskInfo:
    publisher: address
    spec_hash: bytes32
    rounds: uint256
    max_workers: uint256
    stride: uint256
    enrolled: uint256


event TaskReceived:
    task_id: indexed(uint256)
    nonce: uint256


event Enrolled:
    task_id: indexed(uint256)
    worker: indexed(address)
    item: uint256
    index: uint256


event RoundOpened:
    task_id: indexed(uint256)
    round_no: uint256


event UpdateSubmitted:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    worker: indexed(address)
    index: uint256
    update_sha256: bytes32
    samples: uint256
    data_timestamp: uint256


event GlobalModelAnnounced:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    global_sha256: bytes32
    included_hash: bytes32
    pairs_hash: bytes32


main_chain_id: public(uint256)
main_contract: public(address)
space: public(uint256)

tasks: public(HashMap[uint256, TaskInfo])
_menu_f: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]
_menu_reward: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]
# task -> item -> most samples an update of that item may claim
max_samples: public(HashMap[uint256, HashMap[uint256, uint256]])
# task -> worker -> (index << 8 | item) + 1; 0: not enrolled
_enrolment: HashMap[uint256, HashMap[address, uint256]]
# task -> bitmap word -> indices already taken
_taken: HashMap[uint256, HashMap[uint256, uint256]]
# task -> (current round << 1) | open
_round_state: HashMap[uint256, uint256]

# task -> round -> hash chain of the round's records (seeded when the round opens)
acc: public(HashMap[uint256, HashMap[uint256, bytes32]])
# task -> round -> records + 1 (set to 1 when the round opens)
_count: HashMap[uint256, HashMap[uint256, uint256]]
# task -> round -> bitmap word -> indices that submitted
submitted: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])

consumed: public(HashMap[uint256, bool])
global_models: public(HashMap[uint256, HashMap[uint256, bytes32]])
included_hashes: public(HashMap[uint256, HashMap[uint256, bytes32]])
pairs_hashes: public(HashMap[uint256, HashMap[uint256, bytes32]])


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
    @param space 1 for a physical subchain, 2 for a virtual one.
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
    publisher: address,
    spec_hash: bytes32,
    rounds: uint256,
    max_workers: uint256,
    stride: uint256,
    menu_f_micro: DynArray[uint256, messages.MAX_MENU],
    menu_reward_wei: DynArray[uint256, messages.MAX_MENU],
    menu_max_samples: DynArray[uint256, messages.MAX_MENU],
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Accept a task published on the main chain.
    @param src_block The checkpointed main-chain block the message was proven at.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task id on the main chain.
    @param publisher Who admits workers (signs their tickets).
    @param spec_hash sha256 of the model specification.
    @param rounds The maximum number of rounds.
    @param max_workers How many workers the task admits.
    @param stride Worker indices per menu item (index // stride is the item).
    @param menu_f_micro Update frequency of each menu item, 1e-6 units.
    @param menu_reward_wei Reward per round of each menu item, wei.
    @param menu_max_samples Most samples an update of each item may claim.
    @param signatures Committee signatures, sorted by signer address.
    """
    payload: bytes32 = messages._task_payload(
        task_id,
        publisher,
        spec_hash,
        rounds,
        max_workers,
        stride,
        menu_f_micro,
        menu_reward_wei,
        menu_max_samples,
    )
    self._accept(src_block, nonce, payload, signatures)
    assert self.tasks[task_id].rounds == 0, "subchain: task already known"
    self.tasks[task_id] = TaskInfo(
        publisher=publisher,
        spec_hash=spec_hash,
        rounds=rounds,
        max_workers=max_workers,
        stride=stride,
        enrolled=0,
    )
    self._menu_f[task_id] = menu_f_micro
    self._menu_reward[task_id] = menu_reward_wei
    for i: uint256 in range(len(menu_max_samples), bound=messages.MAX_MENU):
        self.max_samples[task_id][i] = menu_max_samples[i]
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
    @notice Open a round for updates, as the main chain did.
    @dev Rounds count from 0. An opening is refused once the round's global
         model is known here (a stale message can never reopen a round), and
         when a later round is already open.
    @param src_block The checkpointed main-chain block.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task.
    @param round_no The round opened on the main chain.
    @param signatures Committee signatures, sorted by signer address.
    """
    self._accept(src_block, nonce, messages._round_open_payload(task_id, round_no), signatures)
    assert self.tasks[task_id].rounds > 0, "subchain: unknown task"
    self._open(task_id, round_no)


@external
def receive_global_model(
    src_block: uint256,
    nonce: uint256,
    task_id: uint256,
    round_no: uint256,
    global_sha256: bytes32,
    included_hash: bytes32,
    pairs_hash: bytes32,
    opens_next: bool,
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Announce a round's global model; the round takes no more updates.
            With `opens_next`, the next round opens for updates.
    @param src_block The checkpointed main-chain block.
    @param nonce The main chain's outbox nonce of the message.
    @param task_id The task.
    @param round_no The round.
    @param global_sha256 sha256 of the global model, for workers to verify.
    @param included_hash Hash of the included-index bitmap recorded on M.
    @param pairs_hash Hash of the included (worker, update hash) pairs, in index order.
    @param opens_next Whether the main chain opened round_no + 1 with this model.
    @param signatures Committee signatures, sorted by signer address.
    """
    payload: bytes32 = messages._global_model_payload(
        task_id, round_no, global_sha256, included_hash, pairs_hash, opens_next
    )
    self._accept(src_block, nonce, payload, signatures)
    assert self.tasks[task_id].rounds > 0, "subchain: unknown task"
    self.global_models[task_id][round_no] = global_sha256
    self.included_hashes[task_id][round_no] = included_hash
    self.pairs_hashes[task_id][round_no] = pairs_hash
    if self._round_state[task_id] == (round_no << 1) | 1:
        self._round_state[task_id] = round_no << 1
    log GlobalModelAnnounced(
        task_id=task_id,
        round_no=round_no,
        global_sha256=global_sha256,
        included_hash=included_hash,
        pairs_hash=pairs_hash,
    )
    if opens_next:
        self._open(task_id, round_no + 1)


@external
def enrol(task_id: uint256, item: uint256, index: uint256, ticket: quorum.Signature):
    """
    @notice Enrol the caller in a task with the item and index its ticket names.
    @param task_id The task.
    @param item The menu item the publisher admitted the caller with.
    @param index The caller's worker index (index // stride == item).
    @param ticket The publisher's signature over (this chain, this contract,
           task, caller, item, index).
    """
    t: TaskInfo = self.tasks[task_id]
    assert t.rounds > 0, "subchain: unknown task"
    assert item < len(self._menu_f[task_id]), "subchain: no such menu item"
    assert index // t.stride == item, "subchain: index outside the item's range"
    digest: bytes32 = messages._ticket_digest(chain.id, self, task_id, msg.sender, item, index)
    assert quorum._signer(digest, ticket) == t.publisher, "subchain: not admitted by the publisher"
    assert self._enrolment[task_id][msg.sender] == 0, "subchain: already enrolled"
    word: uint256 = index // messages.WORD_BITS
    bit: uint256 = 1 << (index % messages.WORD_BITS)
    assert self._taken[task_id][word] & bit == 0, "subchain: index already taken"
    assert t.enrolled < t.max_workers, "subchain: task is full"
    self._taken[task_id][word] |= bit
    self._enrolment[task_id][msg.sender] = ((index << 8) | item) + 1
    self.tasks[task_id].enrolled = t.enrolled + 1
    log Enrolled(task_id=task_id, worker=msg.sender, item=item, index=index)


@external
def submit_update(
    task_id: uint256, round_no: uint256, update_sha256: bytes32, samples: uint256, data_timestamp: uint256
):
    """
    @notice Record the caller's model update for a round.
    @param task_id The task.
    @param round_no The open round.
    @param update_sha256 sha256 of the update's bytes.
    @param samples How many samples the update was trained on (at most the item's cap).
    @param data_timestamp When the data used was sensed (the worker's clock).
    """
    enrolled: uint256 = self._enrolment[task_id][msg.sender]
    assert enrolled > 0, "subchain: worker not enrolled"
    assert self._round_state[task_id] == (round_no << 1) | 1, "subchain: round not open"
    assert update_sha256 != empty(bytes32), "subchain: zero update hash"
    assert samples > 0, "subchain: no samples"
    packed: uint256 = enrolled - 1
    assert samples <= self.max_samples[task_id][packed & 255], "subchain: more samples than the item's cap"
    index: uint256 = packed >> 8
    word: uint256 = index // messages.WORD_BITS
    bit: uint256 = 1 << (index % messages.WORD_BITS)
    bits: uint256 = self.submitted[task_id][round_no][word]
    assert bits & bit == 0, "subchain: update already submitted"
    self.submitted[task_id][round_no][word] = bits | bit
    self.acc[task_id][round_no] = messages._chain_record(
        self.acc[task_id][round_no], task_id, round_no, msg.sender, index, update_sha256, samples, data_timestamp
    )
    self._count[task_id][round_no] += 1
    log UpdateSubmitted(
        task_id=task_id,
        round_no=round_no,
        worker=msg.sender,
        index=index,
        update_sha256=update_sha256,
        samples=samples,
        data_timestamp=data_timestamp,
    )


@external
@view
def record_count(task_id: uint256, round_no: uint256) -> uint256:
    """
    @notice How many update records a round holds.
    @param task_id The task.
    @param round_no The round.
    @return The count (0 before the round opened).
    """
    n: uint256 = self._count[task_id][round_no]
    return n - 1 if n > 0 else 0


@external
@view
def round_state(task_id: uint256) -> (uint256, bool):
    """
    @notice The latest round opened here and whether it still takes updates.
    @param task_id The task.
    @return (round, open).
    """
    state: uint256 = self._round_state[task_id]
    return state >> 1, state & 1 == 1


@external
@view
def enrolment(task_id: uint256, worker: address) -> (bool, uint256, uint256):
    """
    @notice Whether a worker is enrolled in a task, with its item and index.
    @param task_id The task.
    @param worker The worker.
    @return (enrolled, item, index).
    """
    enrolled: uint256 = self._enrolment[task_id][worker]
    if enrolled == 0:
        return False, 0, 0
    return True, (enrolled - 1) & 255, (enrolled - 1) >> 8


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
def ticket_digest(task_id: uint256, worker: address, item: uint256, index: uint256) -> bytes32:
    """
    @notice The digest a publisher signs to admit a worker here.
    @param task_id The task.
    @param worker The worker.
    @param item The menu item.
    @param index The worker index.
    @return The digest.
    """
    return messages._ticket_digest(chain.id, self, task_id, worker, item, index)


@internal
def _open(task_id: uint256, round_no: uint256):
    assert self.global_models[task_id][round_no] == empty(bytes32), "subchain: stale round opening (its global model is known)"
    state: uint256 = self._round_state[task_id]
    assert state == 0 or round_no > state >> 1, "subchain: stale round opening (a later round is open)"
    self._round_state[task_id] = (round_no << 1) | 1
    self.acc[task_id][round_no] = messages._round_seed(task_id, round_no)
    self._count[task_id][round_no] = 1
    log RoundOpened(task_id=task_id, round_no=round_no)


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

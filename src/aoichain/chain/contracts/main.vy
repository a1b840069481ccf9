# pragma version 0.4.3
"""
@title main
@notice The main chain M: tasks with their contract menu and escrowed
        budget, rounds opened and closed by the task's aggregator, update
        records accepted from the subchains through the relay committee,
        each round's global model, and pull payments.
@dev Money is M's native currency (wei). A task escrows
     max_workers * max(reward) * rounds at publication; recording a global
     model credits each included worker the per-round reward of the menu
     item it chose; workers withdraw what they were credited; after the
     task is finished the publisher reclaims escrow - credited, never more.
     Rounds are numbered from 0. Messages to the subchains go through an outbox (nonce -> payload hash)
     whose storage the relay committee proves against a checkpointed state
     root. Every revert reason starts with "main: " (or "quorum: ").
"""

import quorum
import messages

initializes: quorum

exports: (quorum.members, quorum.threshold)

MAX_ROUND_UPDATES: constant(uint256) = messages.MAX_INCLUDED
PPM: constant(uint256) = 1_000_000

# Why a delivered record was not accepted (UpdateSkipped.reason).
SKIP_WORKER_REPEATED: constant(uint256) = 1
SKIP_HASH_REPEATED: constant(uint256) = 2


struct Task:
    publisher: address
    aggregator: address
    spec_hash: bytes32
    rounds: uint256
    target_accuracy_ppm: uint256
    max_workers: uint256
    escrow: uint256
    credited: uint256
    reclaimed: uint256
    rounds_opened: uint256
    current_round: uint256
    round_open: bool
    finished: bool


struct Source:
    contract: address
    space: uint256


struct AcceptedUpdate:
    worker: address
    space: uint256
    item: uint256
    included: bool


event TaskPublished:
    task_id: indexed(uint256)
    publisher: indexed(address)
    aggregator: address
    escrow: uint256


event MessageSent:
    nonce: indexed(uint256)
    kind: uint256
    task_id: uint256
    round_no: uint256
    payload_hash: bytes32


event RoundOpened:
    task_id: indexed(uint256)
    round_no: uint256


event RoundClosed:
    task_id: indexed(uint256)
    round_no: uint256


event UpdateAccepted:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    worker: indexed(address)
    space: uint256
    update_sha256: bytes32
    samples: uint256
    data_timestamp: uint256
    item: uint256


event UpdateSkipped:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    worker: indexed(address)
    update_sha256: bytes32
    reason: uint256


event GlobalModelRecorded:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    global_sha256: bytes32
    included: uint256
    credited_wei: uint256


event Withdrawn:
    worker: indexed(address)
    amount: uint256


event TaskFinished:
    task_id: indexed(uint256)
    unspent: uint256


event Reclaimed:
    task_id: indexed(uint256)
    amount: uint256


owner: public(address)
sources: public(HashMap[uint256, Source])

task_count: public(uint256)
tasks: public(HashMap[uint256, Task])
_menu_f: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]
_menu_reward: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]

# (source chain, task, round) -> how many records of that channel were delivered
inbound_count: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
# keccak(task, round, update hash) -> the accepted record
_accepted: HashMap[bytes32, AcceptedUpdate]
# keccak(task, round, worker) -> the worker already has an accepted update
_worker_seen: HashMap[bytes32, bool]
_round_updates: HashMap[uint256, HashMap[uint256, DynArray[bytes32, MAX_ROUND_UPDATES]]]
global_models: public(HashMap[uint256, HashMap[uint256, bytes32]])
_global_included: HashMap[uint256, HashMap[uint256, DynArray[bytes32, messages.MAX_INCLUDED]]]

earned: public(HashMap[address, uint256])
paid: public(HashMap[address, uint256])

outbox_count: public(uint256)
outbox: public(HashMap[uint256, bytes32])
# keccak(kind, task, round) -> outbox nonce
_message_nonce: HashMap[bytes32, uint256]


@deploy
def __init__(committee: DynArray[address, quorum.MAX_MEMBERS], threshold: uint256):
    """
    @notice Deploy the main chain contract with its relay committee.
    @param committee The relay committee members (n).
    @param threshold How many committee signatures a message needs (k).
    """
    self.owner = msg.sender
    quorum._define(quorum.COMMITTEE, committee, threshold)


@external
def register_source(chain_id: uint256, source: address, space: uint256):
    """
    @notice Register a subchain contract whose update records M accepts.
    @param chain_id The subchain's chain id.
    @param source The subchain contract address on that chain.
    @param space 1 for the physical subchain P, 2 for the virtual subchain V.
    """
    assert msg.sender == self.owner, "main: caller is not the owner"
    assert self.sources[chain_id].contract == empty(address), "main: source already registered"
    assert source != empty(address), "main: zero source address"
    assert space == 1 or space == 2, "main: space must be 1 (P) or 2 (V)"
    self.sources[chain_id] = Source(contract=source, space=space)


@external
@payable
def publish_task(
    spec_hash: bytes32,
    rounds: uint256,
    target_accuracy_ppm: uint256,
    menu_f_micro: DynArray[uint256, messages.MAX_MENU],
    menu_reward_wei: DynArray[uint256, messages.MAX_MENU],
    max_workers: uint256,
    aggregator: address,
) -> uint256:
    """
    @notice Publish a federated-learning task and escrow its whole budget.
    @param spec_hash sha256 of the model specification.
    @param rounds The maximum number of rounds.
    @param target_accuracy_ppm Target accuracy in parts per million.
    @param menu_f_micro Update frequency f_n of each menu item, in 1e-6 units.
    @param menu_reward_wei Reward R_n per round of each menu item, in wei.
    @param max_workers How many workers may be paid in one round.
    @param aggregator The account that opens/closes rounds and records models.
    @return The new task id (ids start at 1).
    """
    assert rounds > 0, "main: rounds must be positive"
    assert max_workers > 0 and max_workers <= MAX_ROUND_UPDATES, "main: max_workers out of range"
    assert target_accuracy_ppm <= PPM, "main: target accuracy above 1"
    assert len(menu_f_micro) > 0, "main: empty menu"
    assert len(menu_f_micro) == len(menu_reward_wei), "main: menu lengths differ"
    assert aggregator != empty(address), "main: zero aggregator"
    top: uint256 = 0
    for i: uint256 in range(len(menu_f_micro), bound=messages.MAX_MENU):
        assert menu_f_micro[i] > 0, "main: frequency must be positive"
        top = max(top, menu_reward_wei[i])
    assert msg.value == max_workers * top * rounds, "main: escrow must equal max_workers * max reward * rounds"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self.tasks[task_id] = Task(
        publisher=msg.sender,
        aggregator=aggregator,
        spec_hash=spec_hash,
        rounds=rounds,
        target_accuracy_ppm=target_accuracy_ppm,
        max_workers=max_workers,
        escrow=msg.value,
        credited=0,
        reclaimed=0,
        rounds_opened=0,
        current_round=0,
        round_open=False,
        finished=False,
    )
    self._menu_f[task_id] = menu_f_micro
    self._menu_reward[task_id] = menu_reward_wei
    log TaskPublished(task_id=task_id, publisher=msg.sender, aggregator=aggregator, escrow=msg.value)
    self._send(
        messages.KIND_TASK,
        task_id,
        0,
        messages._task_payload(
            task_id, spec_hash, rounds, target_accuracy_ppm, max_workers, menu_f_micro, menu_reward_wei
        ),
    )
    return task_id


@external
def open_round(task_id: uint256, round_no: uint256):
    """
    @notice Open the next round of a task; relayed down to the subchains.
    @param task_id The task.
    @param round_no Must be the number of rounds opened so far (rounds count from 0).
    """
    t: Task = self._task(task_id)
    assert msg.sender == t.aggregator, "main: caller is not the aggregator"
    assert not t.finished, "main: task finished"
    assert not t.round_open, "main: a round is already open"
    assert round_no < t.rounds, "main: no rounds left"
    assert round_no == t.rounds_opened, "main: round out of order"
    self.tasks[task_id].rounds_opened = round_no + 1
    self.tasks[task_id].current_round = round_no
    self.tasks[task_id].round_open = True
    log RoundOpened(task_id=task_id, round_no=round_no)
    self._send(messages.KIND_ROUND_OPEN, task_id, round_no, messages._round_open_payload(task_id, round_no))


@external
def close_round(task_id: uint256, round_no: uint256):
    """
    @notice Close the open round of a task.
    @param task_id The task.
    @param round_no The round that is open.
    """
    t: Task = self._task(task_id)
    assert msg.sender == t.aggregator, "main: caller is not the aggregator"
    assert t.round_open and t.current_round == round_no, "main: round not open"
    self.tasks[task_id].round_open = False
    log RoundClosed(task_id=task_id, round_no=round_no)


@external
def deliver_updates(
    src_chain_id: uint256,
    src_block: uint256,
    task_id: uint256,
    round_no: uint256,
    records: DynArray[messages.UpdateRecord, messages.MAX_BATCH],
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Accept a subchain's update records for one round, attested by
            the relay committee.
    @dev `records` is every record of (task, round) the source held at
         `src_block`, in order; its hash chain is the payload and its
         length the batch size, so a later batch repeats the earlier
         records and only the new ones are taken. A worker gets at most one
         accepted update per round, and an update hash is accepted once per
         round; repeats are logged as UpdateSkipped, never counted.
         Samples and data timestamps are kept in the UpdateAccepted log,
         not in storage.
    @param src_chain_id The subchain's chain id (must be registered).
    @param src_block The checkpointed subchain block the records were read at.
    @param task_id The task.
    @param round_no The round.
    @param records The round's records on the subchain, in submission order.
    @param signatures Committee signatures, sorted by signer address.
    """
    src: Source = self.sources[src_chain_id]
    assert src.contract != empty(address), "main: unknown source chain"
    assert task_id > 0 and task_id <= self.task_count, "main: unknown task"
    count: uint256 = len(records)
    done: uint256 = self.inbound_count[src_chain_id][task_id][round_no]
    assert count > done, "main: message already delivered"

    acc: bytes32 = empty(bytes32)
    for rec: messages.UpdateRecord in records:
        assert rec.task_id == task_id and rec.round_no == round_no, "main: record of another round"
        acc = messages._chain_record(acc, rec)
    digest: bytes32 = messages._message_digest(
        src_chain_id,
        src.contract,
        src_block,
        chain.id,
        self,
        messages._batch_nonce(task_id, round_no, count),
        acc,
    )
    quorum._require(quorum.COMMITTEE, digest, signatures)
    self.inbound_count[src_chain_id][task_id][round_no] = count

    for i: uint256 in range(done, count, bound=messages.MAX_BATCH):
        rec: messages.UpdateRecord = records[i]
        wkey: bytes32 = keccak256(abi_encode(task_id, round_no, rec.worker))
        hkey: bytes32 = keccak256(abi_encode(task_id, round_no, rec.update_sha256))
        if self._worker_seen[wkey]:
            log UpdateSkipped(
                task_id=task_id,
                round_no=round_no,
                worker=rec.worker,
                update_sha256=rec.update_sha256,
                reason=SKIP_WORKER_REPEATED,
            )
            continue
        if self._accepted[hkey].worker != empty(address):
            log UpdateSkipped(
                task_id=task_id,
                round_no=round_no,
                worker=rec.worker,
                update_sha256=rec.update_sha256,
                reason=SKIP_HASH_REPEATED,
            )
            continue
        self._worker_seen[wkey] = True
        self._accepted[hkey] = AcceptedUpdate(
            worker=rec.worker,
            space=src.space,
            item=rec.item,
            included=False,
        )
        self._round_updates[task_id][round_no].append(rec.update_sha256)
        log UpdateAccepted(
            task_id=task_id,
            round_no=round_no,
            worker=rec.worker,
            space=src.space,
            update_sha256=rec.update_sha256,
            samples=rec.samples,
            data_timestamp=rec.data_timestamp,
            item=rec.item,
        )


@external
def record_global_model(
    task_id: uint256,
    round_no: uint256,
    global_sha256: bytes32,
    included: DynArray[bytes32, messages.MAX_INCLUDED],
):
    """
    @notice Record a round's global model and credit the included workers.
    @dev Each included update must have been accepted for this round; its
         worker is credited the per-round reward of the menu item it chose.
         The model is relayed down to the subchains through the outbox.
    @param task_id The task.
    @param round_no The open round.
    @param global_sha256 sha256 of the aggregated global model.
    @param included The update hashes the global model aggregated.
    """
    t: Task = self._task(task_id)
    assert msg.sender == t.aggregator, "main: caller is not the aggregator"
    assert t.round_open and t.current_round == round_no, "main: round not open"
    assert self.global_models[task_id][round_no] == empty(bytes32), "main: global model already recorded"
    assert global_sha256 != empty(bytes32), "main: zero global model hash"
    assert len(included) <= t.max_workers, "main: more updates than max_workers"

    total: uint256 = 0
    for h: bytes32 in included:
        key: bytes32 = keccak256(abi_encode(task_id, round_no, h))
        upd: AcceptedUpdate = self._accepted[key]
        assert upd.worker != empty(address), "main: update not attested"
        assert not upd.included, "main: update included twice"
        self._accepted[key].included = True
        reward: uint256 = self._menu_reward[task_id][upd.item]
        self.earned[upd.worker] += reward
        total += reward
    assert t.credited + total <= t.escrow, "main: escrow exhausted"
    self.tasks[task_id].credited = t.credited + total
    self.global_models[task_id][round_no] = global_sha256
    self._global_included[task_id][round_no] = included
    log GlobalModelRecorded(
        task_id=task_id, round_no=round_no, global_sha256=global_sha256, included=len(included), credited_wei=total
    )
    self._send(
        messages.KIND_GLOBAL_MODEL,
        task_id,
        round_no,
        messages._global_model_payload(task_id, round_no, global_sha256, included),
    )


@external
def finish_task(task_id: uint256):
    """
    @notice End a task; its unspent escrow becomes reclaimable.
    @param task_id The task (no round may be open).
    """
    t: Task = self._task(task_id)
    assert msg.sender == t.publisher or msg.sender == t.aggregator, "main: caller is not the publisher or aggregator"
    assert not t.finished, "main: task already finished"
    assert not t.round_open, "main: a round is still open"
    self.tasks[task_id].finished = True
    log TaskFinished(task_id=task_id, unspent=t.escrow - t.credited)


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @notice Pay the caller everything it was credited and has not withdrawn.
    @return The amount paid, in wei.
    """
    amount: uint256 = self.earned[msg.sender] - self.paid[msg.sender]
    assert amount > 0, "main: nothing to withdraw"
    self.paid[msg.sender] += amount
    raw_call(msg.sender, b"", value=amount)
    log Withdrawn(worker=msg.sender, amount=amount)
    return amount


@external
@nonreentrant
def reclaim(task_id: uint256) -> uint256:
    """
    @notice Return a finished task's unspent escrow to its publisher.
    @dev Only escrow - credited - already reclaimed can leave: what workers
         earned stays in the contract for them to withdraw.
    @param task_id The task.
    @return The amount returned, in wei.
    """
    t: Task = self._task(task_id)
    assert msg.sender == t.publisher, "main: caller is not the publisher"
    assert t.finished, "main: task not finished"
    amount: uint256 = t.escrow - t.credited - t.reclaimed
    assert amount > 0, "main: nothing to reclaim"
    self.tasks[task_id].reclaimed = t.reclaimed + amount
    raw_call(msg.sender, b"", value=amount)
    log Reclaimed(task_id=task_id, amount=amount)
    return amount


@external
@view
def menu(task_id: uint256) -> (DynArray[uint256, messages.MAX_MENU], DynArray[uint256, messages.MAX_MENU]):
    """
    @notice A task's contract menu.
    @param task_id The task.
    @return Frequencies f_n (1e-6 units) and rewards R_n per round (wei).
    """
    return self._menu_f[task_id], self._menu_reward[task_id]


@external
@view
def accepted_update(task_id: uint256, round_no: uint256, update_sha256: bytes32) -> AcceptedUpdate:
    """
    @notice The accepted record of an update (worker is zero if none).
    @param task_id The task.
    @param round_no The round.
    @param update_sha256 The update's hash.
    @return The accepted record.
    """
    return self._accepted[keccak256(abi_encode(task_id, round_no, update_sha256))]


@external
@view
def round_updates(task_id: uint256, round_no: uint256) -> DynArray[bytes32, MAX_ROUND_UPDATES]:
    """
    @notice The hashes of every update accepted for a round, in order.
    @param task_id The task.
    @param round_no The round.
    @return The update hashes.
    """
    return self._round_updates[task_id][round_no]


@external
@view
def global_included(task_id: uint256, round_no: uint256) -> DynArray[bytes32, messages.MAX_INCLUDED]:
    """
    @notice The update hashes a round's global model aggregated, as recorded.
    @param task_id The task.
    @param round_no The round.
    @return The update hashes, in the order the aggregator gave them.
    """
    return self._global_included[task_id][round_no]


@external
@view
def message_nonce(kind: uint256, task_id: uint256, round_no: uint256) -> uint256:
    """
    @notice The outbox nonce of a message (0 if it was never sent).
    @param kind 1 task, 2 round opening, 3 global model.
    @param task_id The task.
    @param round_no The round (0 for the task message; rounds count from 0).
    @return The nonce.
    """
    return self._message_nonce[keccak256(abi_encode(kind, task_id, round_no))]


@external
@view
def withdrawable(worker: address) -> uint256:
    """
    @notice What a worker can withdraw now.
    @param worker The worker.
    @return Credited minus paid, in wei.
    """
    return self.earned[worker] - self.paid[worker]


@external
@view
def message_digest(
    src_chain_id: uint256,
    src_contract: address,
    src_block: uint256,
    dst_chain_id: uint256,
    dst_contract: address,
    nonce: uint256,
    payload_hash: bytes32,
) -> bytes32:
    """
    @notice The digest committee members sign for a cross-chain message.
    @param src_chain_id Source chain id.
    @param src_contract Source contract.
    @param src_block Checkpointed source block.
    @param dst_chain_id Destination chain id.
    @param dst_contract Destination contract.
    @param nonce Message nonce.
    @param payload_hash Hash of the payload.
    @return The digest.
    """
    return messages._message_digest(
        src_chain_id, src_contract, src_block, dst_chain_id, dst_contract, nonce, payload_hash
    )


@external
@view
def records_hash(records: DynArray[messages.UpdateRecord, messages.MAX_BATCH]) -> bytes32:
    """
    @notice The hash chain of a list of update records (a batch's payload).
    @param records The records, in order.
    @return The chained hash (zero for no records).
    """
    acc: bytes32 = empty(bytes32)
    for rec: messages.UpdateRecord in records:
        acc = messages._chain_record(acc, rec)
    return acc


@internal
@view
def _task(task_id: uint256) -> Task:
    assert task_id > 0 and task_id <= self.task_count, "main: unknown task"
    return self.tasks[task_id]


@internal
def _send(kind: uint256, task_id: uint256, round_no: uint256, payload_hash: bytes32):
    nonce: uint256 = self.outbox_count + 1
    self.outbox_count = nonce
    self.outbox[nonce] = payload_hash
    self._message_nonce[keccak256(abi_encode(kind, task_id, round_no))] = nonce
    log MessageSent(nonce=nonce, kind=kind, task_id=task_id, round_no=round_no, payload_hash=payload_hash)

# pragma version 0.4.3
"""
@title main
@notice The main chain M: tasks with their contract menu and escrowed
        budget, rounds opened and closed by the task's publisher (its
        aggregator), each subchain's round records accepted through the
        relay committee, each round's global model with the bitmap of the
        worker indices it includes, and pull payments.
@dev Money is M's native currency (wei). A task escrows
     max_workers * max(reward) * rounds at publication. Workers are known by
     index (see messages.vy): a subchain's round arrives as a count, the
     hash chain of its records and a bitmap of the indices that submitted;
     the publisher's global-model record names the included indices as a
     bitmap, which must lie within what was attested, and credits the task
     popcount(word) * reward(item of the word) per word. No storage is
     written per worker per round: a worker claims its pay with the ticket
     the publisher admitted it with, and M counts its bit in every closed
     round. After the task is finished the publisher reclaims
     escrow - credited, never more. Messages to the subchains go through an
     outbox (nonce -> payload hash) whose storage the relay committee
     proves against a checkpointed state root. Every revert reason starts
     with "main: " (or "quorum: ").
"""

import quorum
import messages

initializes: quorum

exports: (quorum.members, quorum.threshold)

PPM: constant(uint256) = 1_000_000
# Most workers a task admits: its busiest message stays within MAX_WORDS words.
MAX_WORKERS: constant(uint256) = 50_000
MAX_ROUNDS: constant(uint256) = 10_000


struct Task:
    publisher: address
    spec_hash: bytes32
    rounds: uint256
    target_accuracy_ppm: uint256
    max_workers: uint256
    stride: uint256
    escrow: uint256
    credited: uint256
    paid: uint256
    reclaimed: uint256
    rounds_opened: uint256
    rounds_closed: uint256
    round_open: bool
    finished: bool


struct Source:
    contract: address
    space: uint256


struct Included:
    words_hash: bytes32
    pairs_hash: bytes32
    opened_next: bool


event TaskPublished:
    task_id: indexed(uint256)
    publisher: indexed(address)
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


event RecordsAccepted:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    src_chain_id: indexed(uint256)
    count: uint256
    acc: bytes32


event GlobalModelRecorded:
    task_id: indexed(uint256)
    round_no: indexed(uint256)
    global_sha256: bytes32
    included_hash: bytes32
    pairs_hash: bytes32
    included: uint256
    credited_wei: uint256


event Claimed:
    task_id: indexed(uint256)
    worker: indexed(address)
    index: uint256
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
_menu_max_samples: HashMap[uint256, DynArray[uint256, messages.MAX_MENU]]

# (source chain, task, round) -> records of that channel accepted so far, and their hash chain
inbound_count: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
record_accs: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, bytes32]]])
# task -> round -> bitmap word -> indices attested as submitted / included in the global model
submitted: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
included: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
global_models: public(HashMap[uint256, HashMap[uint256, bytes32]])
# task -> round -> hashes of the included bitmap and of the included (worker, update) pairs,
# and whether the record opened the next round
included_hashes: public(HashMap[uint256, HashMap[uint256, Included]])
# task -> worker index -> rounds already counted by its claims
claimed_rounds: public(HashMap[uint256, HashMap[uint256, uint256]])

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
    @notice Register a subchain contract whose round records M accepts.
    @param chain_id The subchain's chain id.
    @param source The subchain contract address on that chain.
    @param space 1 for a physical subchain, 2 for a virtual one.
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
    menu_max_samples: DynArray[uint256, messages.MAX_MENU],
    max_workers: uint256,
) -> uint256:
    """
    @notice Publish a federated-learning task and escrow its whole budget.
    @dev The caller is the task's publisher: it admits workers (signs their
         tickets), runs the rounds and records the global models.
    @param spec_hash sha256 of the model specification.
    @param rounds The maximum number of rounds.
    @param target_accuracy_ppm Target accuracy in parts per million.
    @param menu_f_micro Update frequency f_n of each menu item, in 1e-6 units.
    @param menu_reward_wei Reward R_n per round of each menu item, in wei.
    @param menu_max_samples Most samples an update of each item may claim.
    @param max_workers How many workers the task admits.
    @return The new task id (ids start at 1).
    """
    assert rounds > 0 and rounds <= MAX_ROUNDS, "main: rounds out of range"
    assert max_workers > 0 and max_workers <= MAX_WORKERS, "main: max_workers out of range"
    assert target_accuracy_ppm <= PPM, "main: target accuracy above 1"
    n: uint256 = len(menu_f_micro)
    assert n > 0, "main: empty menu"
    assert n == len(menu_reward_wei) and n == len(menu_max_samples), "main: menu lengths differ"
    top: uint256 = 0
    for i: uint256 in range(n, bound=messages.MAX_MENU):
        assert menu_f_micro[i] > 0, "main: frequency must be positive"
        assert menu_max_samples[i] > 0, "main: sample cap must be positive"
        top = max(top, menu_reward_wei[i])
    assert msg.value == max_workers * top * rounds, "main: escrow must equal max_workers * max reward * rounds"

    task_id: uint256 = self.task_count + 1
    stride: uint256 = messages._stride(max_workers)
    self.task_count = task_id
    self.tasks[task_id] = Task(
        publisher=msg.sender,
        spec_hash=spec_hash,
        rounds=rounds,
        target_accuracy_ppm=target_accuracy_ppm,
        max_workers=max_workers,
        stride=stride,
        escrow=msg.value,
        credited=0,
        paid=0,
        reclaimed=0,
        rounds_opened=0,
        rounds_closed=0,
        round_open=False,
        finished=False,
    )
    self._menu_f[task_id] = menu_f_micro
    self._menu_reward[task_id] = menu_reward_wei
    self._menu_max_samples[task_id] = menu_max_samples
    log TaskPublished(task_id=task_id, publisher=msg.sender, escrow=msg.value)
    self._send(
        messages.KIND_TASK,
        task_id,
        0,
        messages._task_payload(
            task_id,
            msg.sender,
            spec_hash,
            rounds,
            max_workers,
            stride,
            menu_f_micro,
            menu_reward_wei,
            menu_max_samples,
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
    self._only_publisher(task_id)
    assert not self.tasks[task_id].finished, "main: task finished"
    assert not self.tasks[task_id].round_open, "main: a round is already open"
    assert round_no < self.tasks[task_id].rounds, "main: no rounds left"
    assert round_no == self.tasks[task_id].rounds_opened, "main: round out of order"
    self.tasks[task_id].rounds_opened = round_no + 1
    self.tasks[task_id].round_open = True
    log RoundOpened(task_id=task_id, round_no=round_no)
    self._send(messages.KIND_ROUND_OPEN, task_id, round_no, messages._round_open_payload(task_id, round_no))


@external
def close_round(task_id: uint256, round_no: uint256):
    """
    @notice Close the open round of a task (with or without a global model).
    @param task_id The task.
    @param round_no The round that is open.
    """
    self._only_publisher(task_id)
    assert self.tasks[task_id].round_open and self.tasks[task_id].rounds_opened == round_no + 1, "main: round not open"
    self.tasks[task_id].round_open = False
    self.tasks[task_id].rounds_closed = round_no + 1
    log RoundClosed(task_id=task_id, round_no=round_no)


@external
def deliver_records(
    src_chain_id: uint256,
    src_block: uint256,
    task_id: uint256,
    round_no: uint256,
    count: uint256,
    acc: bytes32,
    word_indices: DynArray[uint256, messages.MAX_WORDS],
    words: DynArray[uint256, messages.MAX_WORDS],
    signatures: DynArray[quorum.Signature, quorum.MAX_MEMBERS],
):
    """
    @notice Accept a subchain's update records of one round, attested by
            the relay committee: their count, their hash chain and the
            bitmap of the worker indices that submitted.
    @dev A later message of the same round covers more records (late
         updates); a message covering no more than what M holds is refused.
         Rounds outside [0, rounds) or never opened are refused.
    @param src_chain_id The subchain's chain id (must be registered).
    @param src_block The checkpointed subchain block the records were read at.
    @param task_id The task.
    @param round_no The round.
    @param count How many records the subchain held for the round.
    @param acc Their hash chain (the subchain's `acc`).
    @param word_indices Bitmap words that are not zero, strictly ascending.
    @param words The subchain's `submitted` bitmap at those words.
    @param signatures Committee signatures, sorted by signer address.
    """
    assert self.sources[src_chain_id].contract != empty(address), "main: unknown source chain"
    assert task_id > 0 and task_id <= self.task_count, "main: unknown task"
    assert round_no < self.tasks[task_id].rounds, "main: round out of range"
    assert round_no < self.tasks[task_id].rounds_opened, "main: round never opened"
    assert count > self.inbound_count[src_chain_id][task_id][round_no], "main: message already delivered"
    assert len(word_indices) == len(words), "main: word lists differ"
    digest: bytes32 = messages._message_digest(
        src_chain_id,
        self.sources[src_chain_id].contract,
        src_block,
        chain.id,
        self,
        messages._records_nonce(task_id, round_no, count),
        messages._round_records_payload(task_id, round_no, count, acc, word_indices, words),
    )
    quorum._require(quorum.COMMITTEE, digest, signatures)
    self.inbound_count[src_chain_id][task_id][round_no] = count
    self.record_accs[src_chain_id][task_id][round_no] = acc
    limit: uint256 = self._index_words(task_id)
    last: uint256 = 0
    for i: uint256 in range(len(words), bound=messages.MAX_WORDS):
        w: uint256 = word_indices[i]
        assert i == 0 or w > last, "main: word indices not ascending"
        assert w < limit, "main: word outside the task's indices"
        last = w
        self.submitted[task_id][round_no][w] |= words[i]
    log RecordsAccepted(task_id=task_id, round_no=round_no, src_chain_id=src_chain_id, count=count, acc=acc)


@external
def record_global_model(
    task_id: uint256,
    round_no: uint256,
    global_sha256: bytes32,
    pairs_hash: bytes32,
    word_indices: DynArray[uint256, messages.MAX_WORDS],
    words: DynArray[uint256, messages.MAX_WORDS],
    open_next: bool,
):
    """
    @notice Record a round's global model and the worker indices it includes;
            with `open_next`, close the round and open the next one.
    @dev Every included index must have been attested for this round. The
         task is credited popcount(word) * reward(item) per word; workers
         claim their share later. The model (and, with `open_next`, the next
         round's opening) is relayed down to the subchains in one message.
    @param task_id The task.
    @param round_no The open round.
    @param global_sha256 sha256 of the aggregated global model.
    @param pairs_hash The aggregator's hash of the included (worker, update hash) pairs.
    @param word_indices Included bitmap words that are not zero, strictly ascending.
    @param words The included indices' bitmap at those words.
    @param open_next Close this round and open round_no + 1 at once.
    """
    self._only_publisher(task_id)
    assert self.tasks[task_id].round_open and self.tasks[task_id].rounds_opened == round_no + 1, "main: round not open"
    assert self.global_models[task_id][round_no] == empty(bytes32), "main: global model already recorded"
    assert global_sha256 != empty(bytes32), "main: zero global model hash"
    assert len(word_indices) == len(words), "main: word lists differ"
    assert not open_next or round_no + 1 < self.tasks[task_id].rounds, "main: no rounds left"
    stride: uint256 = self.tasks[task_id].stride
    total: uint256 = 0
    count: uint256 = 0
    last: uint256 = 0
    for i: uint256 in range(len(words), bound=messages.MAX_WORDS):
        w: uint256 = word_indices[i]
        bits: uint256 = words[i]
        assert i == 0 or w > last, "main: word indices not ascending"
        assert bits != 0, "main: empty word"
        last = w
        assert bits & ~self.submitted[task_id][round_no][w] == 0, "main: included an index that was not attested"
        self.included[task_id][round_no][w] = bits
        n: uint256 = messages._popcount(bits)
        count += n
        total += n * self._menu_reward[task_id][w * messages.WORD_BITS // stride]
    credited: uint256 = self.tasks[task_id].credited + total
    assert credited <= self.tasks[task_id].escrow, "main: escrow exhausted"
    self.tasks[task_id].credited = credited
    self.global_models[task_id][round_no] = global_sha256
    included_hash: bytes32 = messages._words_hash(word_indices, words)
    self.included_hashes[task_id][round_no] = Included(
        words_hash=included_hash, pairs_hash=pairs_hash, opened_next=open_next
    )
    log GlobalModelRecorded(
        task_id=task_id,
        round_no=round_no,
        global_sha256=global_sha256,
        included_hash=included_hash,
        pairs_hash=pairs_hash,
        included=count,
        credited_wei=total,
    )
    if open_next:
        self.tasks[task_id].rounds_closed = round_no + 1
        self.tasks[task_id].rounds_opened = round_no + 2
        log RoundClosed(task_id=task_id, round_no=round_no)
        log RoundOpened(task_id=task_id, round_no=round_no + 1)
    self._send(
        messages.KIND_GLOBAL_MODEL,
        task_id,
        round_no,
        messages._global_model_payload(
            task_id, round_no, global_sha256, included_hash, pairs_hash, open_next
        ),
    )


@external
def finish_task(task_id: uint256):
    """
    @notice End a task; its unspent escrow becomes reclaimable.
    @param task_id The task (no round may be open).
    """
    self._only_publisher(task_id)
    assert not self.tasks[task_id].finished, "main: task already finished"
    assert not self.tasks[task_id].round_open, "main: a round is still open"
    self.tasks[task_id].finished = True
    log TaskFinished(task_id=task_id, unspent=self.tasks[task_id].escrow - self.tasks[task_id].credited)


@external
@nonreentrant
def claim(
    task_id: uint256,
    src_chain_id: uint256,
    item: uint256,
    index: uint256,
    ticket: quorum.Signature,
    until_round: uint256,
) -> uint256:
    """
    @notice Pay the caller its reward for every closed round whose global
            model included its index, not claimed before.
    @dev The caller proves its index with the ticket the task's publisher
         admitted it with on subchain `src_chain_id`. Rounds are counted up
         to `until_round` (exclusive) and at most MAX_CLAIM_ROUNDS a call.
    @param task_id The task.
    @param src_chain_id The subchain the caller was admitted on.
    @param item Its menu item.
    @param index Its worker index.
    @param ticket The publisher's signature of the ticket.
    @param until_round Count rounds below this one (e.g. the task's rounds).
    @return The amount paid, in wei.
    """
    assert task_id > 0 and task_id <= self.task_count, "main: unknown task"
    subchain: address = self.sources[src_chain_id].contract
    assert subchain != empty(address), "main: unknown source chain"
    stride: uint256 = self.tasks[task_id].stride
    assert index // stride == item, "main: index outside the item's range"
    digest: bytes32 = messages._ticket_digest(src_chain_id, subchain, task_id, msg.sender, item, index)
    assert quorum._signer(digest, ticket) == self.tasks[task_id].publisher, "main: not admitted by the publisher"
    start: uint256 = self.claimed_rounds[task_id][index]
    stop: uint256 = min(until_round, self.tasks[task_id].rounds_closed)
    stop = min(stop, start + messages.MAX_CLAIM_ROUNDS)
    assert stop > start, "main: nothing to claim"
    word: uint256 = index // messages.WORD_BITS
    bit: uint256 = 1 << (index % messages.WORD_BITS)
    included: uint256 = 0
    for r: uint256 in range(start, stop, bound=messages.MAX_CLAIM_ROUNDS):
        if self.included[task_id][r][word] & bit != 0:
            included += 1
    self.claimed_rounds[task_id][index] = stop
    amount: uint256 = included * self._menu_reward[task_id][item]
    assert amount > 0, "main: nothing to claim"
    paid: uint256 = self.tasks[task_id].paid + amount
    assert paid <= self.tasks[task_id].credited, "main: claims exceed the task's credits"
    self.tasks[task_id].paid = paid
    raw_call(msg.sender, b"", value=amount)
    log Claimed(task_id=task_id, worker=msg.sender, index=index, amount=amount)
    return amount


@external
@nonreentrant
def reclaim(task_id: uint256) -> uint256:
    """
    @notice Return a finished task's unspent escrow to its publisher.
    @dev Only escrow - credited - already reclaimed can leave: what workers
         were credited stays in the contract for them to claim.
    @param task_id The task.
    @return The amount returned, in wei.
    """
    self._only_publisher(task_id)
    assert self.tasks[task_id].finished, "main: task not finished"
    t: Task = self.tasks[task_id]
    amount: uint256 = t.escrow - t.credited - t.reclaimed
    assert amount > 0, "main: nothing to reclaim"
    self.tasks[task_id].reclaimed = t.reclaimed + amount
    raw_call(msg.sender, b"", value=amount)
    log Reclaimed(task_id=task_id, amount=amount)
    return amount


@external
@view
def menu(
    task_id: uint256,
) -> (DynArray[uint256, messages.MAX_MENU], DynArray[uint256, messages.MAX_MENU], DynArray[uint256, messages.MAX_MENU]):
    """
    @notice A task's contract menu.
    @param task_id The task.
    @return Frequencies f_n (1e-6 units), rewards R_n per round (wei), sample caps.
    """
    return self._menu_f[task_id], self._menu_reward[task_id], self._menu_max_samples[task_id]


@external
@view
def claimable(task_id: uint256, item: uint256, index: uint256) -> uint256:
    """
    @notice What the worker with `index` (and `item`) could claim now.
    @param task_id The task.
    @param item Its menu item.
    @param index Its worker index.
    @return Wei, over at most MAX_CLAIM_ROUNDS closed rounds not yet claimed.
    """
    start: uint256 = self.claimed_rounds[task_id][index]
    stop: uint256 = min(self.tasks[task_id].rounds_closed, start + messages.MAX_CLAIM_ROUNDS)
    word: uint256 = index // messages.WORD_BITS
    bit: uint256 = 1 << (index % messages.WORD_BITS)
    included: uint256 = 0
    for r: uint256 in range(start, stop, bound=messages.MAX_CLAIM_ROUNDS):
        if self.included[task_id][r][word] & bit != 0:
            included += 1
    if item >= len(self._menu_reward[task_id]):
        return 0
    return included * self._menu_reward[task_id][item]


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
@pure
def popcount(x: uint256) -> uint256:
    """
    @notice Bits set in a 256-bit word (as record_global_model counts them).
    @param x The word.
    @return The count.
    """
    return messages._popcount(x)


@internal
@view
def _only_publisher(task_id: uint256):
    assert task_id > 0 and task_id <= self.task_count, "main: unknown task"
    assert msg.sender == self.tasks[task_id].publisher, "main: caller is not the publisher"


@internal
@view
def _index_words(task_id: uint256) -> uint256:
    # Bitmap words of the task's index space: one run of `stride` per menu item.
    return len(self._menu_f[task_id]) * self.tasks[task_id].stride // messages.WORD_BITS


@internal
def _send(kind: uint256, task_id: uint256, round_no: uint256, payload_hash: bytes32):
    nonce: uint256 = self.outbox_count + 1
    self.outbox_count = nonce
    self.outbox[nonce] = payload_hash
    self._message_nonce[keccak256(abi_encode(kind, task_id, round_no))] = nonce
    log MessageSent(nonce=nonce, kind=kind, task_id=task_id, round_no=round_no, payload_hash=payload_hash)

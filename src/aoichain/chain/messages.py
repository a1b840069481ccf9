"""Cross-chain messages: what travels, what it claims about its source, what gets signed.

A message goes from a source contract at a checkpointed block to one
destination contract. Its body says what the source holds; each body names
the storage slots that prove it (:meth:`claims`), so a committee member can
check the body against an ``eth_getProof`` answer and the checkpointed state
root before it signs :meth:`Envelope.digest`.

- :class:`RoundRecords` (subchain -> M): a round's update records. Its
  payload is their count, their hash chain and the bitmap of the worker
  indices that submitted; the proof covers the subchain's ``acc`` and count,
  and a member recomputes the chain and the bitmap from the records.
- :class:`OutboxMessage` (M -> subchain): a task, a round opening or a
  global model, proven by the main chain's ``outbox[nonce]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aoichain.chain import digests
from aoichain.chain.artifacts import load
from aoichain.chain.digests import UpdateRecord


@dataclass(frozen=True)
class RoundRecords:
    """Body of a subchain -> M message: every record of (task, round) at the source block."""

    task_id: int
    round_no: int
    records: tuple[UpdateRecord, ...]

    @property
    def count(self) -> int:
        """How many records."""
        return len(self.records)

    @cached_property
    def acc(self) -> bytes:
        """The records' hash chain (what the subchain keeps in ``acc``)."""
        return digests.records_hash(self.task_id, self.round_no, self.records)

    @cached_property
    def words(self) -> dict[int, int]:
        """The bitmap of the indices that submitted, ``{word index: word}``."""
        return digests.bitmap(r.index for r in self.records)

    def word_lists(self) -> tuple[list[int], list[int]]:
        """The bitmap as the contracts take it: ascending word indices and their words."""
        return digests.bitmap_lists(self.words)

    def payload_hash(self) -> bytes:
        """What the committee attests: count, hash chain, bitmap."""
        return digests.round_records_payload(
            self.task_id, self.round_no, self.count, self.acc, *self.word_lists()
        )

    def nonce(self) -> int:
        """The message's nonce: channel (task, round) and record count."""
        return digests.records_nonce(self.task_id, self.round_no, self.count)

    def claims(self) -> dict[int, bytes]:
        """Storage of the subchain contract this body asserts: ``acc`` and the count (+1)."""
        art = load("subchain")
        t, r = self.task_id, self.round_no
        return {
            digests.mapping_slot(art.slot("acc"), t, r): self.acc,
            digests.mapping_slot(art.slot("_count"), t, r): (self.count + 1).to_bytes(32, "big"),
        }


@dataclass(frozen=True)
class OutboxMessage:
    """Body of an M -> subchain message: one entry of the main chain's outbox.

    ``fields`` holds the message's content by kind: the task's publisher,
    parameters and menu (``KIND_TASK``), nothing more (``KIND_ROUND_OPEN``),
    or the global model hash, included-bitmap hash, pairs hash and whether it
    opens the next round (``KIND_GLOBAL_MODEL``).
    """

    nonce_value: int
    kind: int
    task_id: int
    round_no: int
    fields: tuple[Any, ...] = ()

    def payload_hash(self) -> bytes:
        """The payload hash, recomputed from the content (never taken on trust)."""
        if self.kind == digests.KIND_TASK:
            return digests.task_payload(self.task_id, *self.fields)
        if self.kind == digests.KIND_ROUND_OPEN:
            return digests.round_open_payload(self.task_id, self.round_no)
        if self.kind == digests.KIND_GLOBAL_MODEL:
            return digests.global_model_payload(self.task_id, self.round_no, *self.fields)
        raise ValueError(f"unknown message kind {self.kind}")

    def nonce(self) -> int:
        """The outbox nonce."""
        return self.nonce_value

    def claims(self) -> dict[int, bytes]:
        """Storage of the main contract this body asserts: ``outbox[nonce]``."""
        return {
            digests.mapping_slot(load("main").slot("outbox"), self.nonce_value): self.payload_hash()
        }

    def delivery(self) -> tuple[str, tuple[Any, ...]]:
        """The subchain function that takes this message, and its arguments before the proof."""
        if self.kind == digests.KIND_TASK:
            return "receive_task", (self.task_id, *self.fields)
        if self.kind == digests.KIND_ROUND_OPEN:
            return "receive_round_open", (self.task_id, self.round_no)
        return "receive_global_model", (self.task_id, self.round_no, *self.fields)


Body = RoundRecords | OutboxMessage
WHAT = {
    digests.KIND_TASK: "task",
    digests.KIND_ROUND_OPEN: "round opening",
    digests.KIND_GLOBAL_MODEL: "global model",
}


@dataclass(frozen=True)
class Envelope:
    """A message from a checkpointed source block to one destination contract."""

    src_key: str
    src_chain_id: int
    src_contract: str
    src_block: int
    dst_key: str
    dst_chain_id: int
    dst_contract: str
    body: Body

    def digest(self) -> bytes:
        """The digest the committee signs (see :func:`aoichain.chain.digests.message_digest`)."""
        return digests.message_digest(
            self.src_chain_id,
            self.src_contract,
            self.src_block,
            self.dst_chain_id,
            self.dst_contract,
            self.body.nonce(),
            self.body.payload_hash(),
        )

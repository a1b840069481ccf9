"""Helpers of the ledger suite (a module of its own: every test folder has a ``conftest``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aoichain.chain import Ledger


def sha(*parts: object) -> bytes:
    """A distinct 32-byte hash for test data."""
    return hashlib.sha256(repr(parts).encode()).digest()


@dataclass
class Task:
    """A task published and relayed for one test, with its workers enrolled."""

    ledger: Ledger
    task_id: int
    rewards: list[int]
    items: dict[tuple[str, int], int] = field(default_factory=dict)

    def submit(self, space: str, i: int, round_no: int, tag: object = None) -> bytes:
        """Worker ``space``/``i`` records an update for ``round_no``; returns its hash."""
        h = sha(self.task_id, round_no, space, i, tag)
        self.ledger.submit_update(space, i, self.task_id, round_no, h, 10 + i, 1_000 + round_no)
        return h


def new_task(
    ledger: Ledger,
    *,
    enrol: dict[str, list[int]] | None = None,
    rewards: tuple[int, ...] = (10, 25),
    rounds: int = 3,
    max_workers: int = 8,
    open_round: bool = True,
) -> Task:
    """Publish, relay, enrol (worker i takes item i % len(menu)) and open round 0."""
    enrol = {"P": [0, 1], "V": [0, 1]} if enrol is None else enrol
    f = [0.5 + 0.25 * i for i in range(len(rewards))]
    task_id = ledger.publish_task(sha("spec"), rounds, 0.9, f, list(rewards), max_workers)
    ledger.relay_task(task_id)
    task = Task(ledger, task_id, list(rewards))
    for space, idx in enrol.items():
        for i in idx:
            item = i % len(rewards)
            ledger.enrol(space, i, task_id, item)
            task.items[(space, i)] = item
    if open_round:
        ledger.open_round(task_id, 0)
    return task

"""Fixtures of the ledger suite: one ledger per backend, shared by the tests of a session.

Every test publishes its own task, so tests do not see each other's state.
The ``ledger`` fixture is parametrised over the backends: each test of the
suite runs on the embedded py-evm chains and on anvil nodes (marker
``anvil``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from aoichain.chain import Ledger, LedgerConfig

N_WORKERS = {"P": 4, "V": 4}
BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="session", params=BACKENDS)
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """A 3-of-5 committee, 2-of-3 validators, four workers per subchain."""
    with Ledger.start(LedgerConfig(backend=request.param), n_workers=N_WORKERS) as led:
        yield led


@pytest.fixture(scope="session")
def embedded() -> Iterator[Ledger]:
    """An embedded ledger for the backend-independent checks (digests, payments, proofs)."""
    with Ledger.start(LedgerConfig(), n_workers=N_WORKERS) as led:
        yield led


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

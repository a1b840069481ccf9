"""Faults injected on purpose, to watch the system reject or survive them.

The loop of :class:`aoichain.workflow.FederatedTask` calls a
:class:`FaultInjector` at named points; the base class injects nothing, and
a plug-in overrides the points it needs:

- :meth:`FaultInjector.drops_out`: whether a worker misses a round (it does
  not answer the request; ``attempt`` 1 is the round's retry);
- :meth:`FaultInjector.attack_cache` and :meth:`FaultInjector.attack_update`:
  a Byzantine worker poisons its data before training or its update after
  (it still signs a valid record of what it sends);
- :meth:`FaultInjector.after_store`: an update's blob was just stored (e.g.
  alter it, so that the aggregator's hash check refuses it);
- :meth:`FaultInjector.lying_relayer`: whether a relayer first forwards a
  false payload in this round (the committee's proofs expose it).

``[faults]`` in the run config builds a :class:`ConfiguredFaults`;
``[faults] injector = "package.module:name"`` names a plug-in instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aoichain.fl import Dataset, ModelStore
from aoichain.workflow.plugins import Kind
from aoichain.workflow.workers import Worker

POINTS = ("drops_out", "attack_cache", "attack_update", "after_store", "lying_relayer")


class FaultInjector:
    """Injects nothing. Subclass it and override the points you need."""

    def drops_out(self, round_no: int, worker: Worker, attempt: int) -> bool:
        """Whether ``worker`` misses round ``round_no`` (attempt 0, or the retry, 1)."""
        return False

    def attack_cache(self, round_no: int, worker: Worker, cache: Dataset) -> Dataset:
        """The data a worker trains on this round (a Byzantine worker may poison it)."""
        return cache

    def attack_update(self, round_no: int, worker: Worker, model: bytes, update: bytes) -> bytes:
        """The update bytes a worker sends, given the global model it trained from."""
        return update

    def after_store(self, round_no: int, worker: Worker, sha256: bytes, store: ModelStore) -> None:
        """Called once a worker's update blob is in the model store, before its record is sent."""

    def lying_relayer(self, round_no: int) -> bool:
        """Whether a relayer forwards a false payload (before an honest one) in this round."""
        return False


@dataclass(frozen=True)
class ConfiguredFaults(FaultInjector):
    """The faults of the ``[faults]`` table.

    Parameters
    ----------
    tamper_blob : (round, worker), optional
        That worker's stored blob is altered (its last byte flipped) in that round.
    lying_relayer_round : int, optional
        The round in which a relayer forwards a false payload first.
    dropout : float
        Probability that a worker misses a round (each attempt drawn anew,
        reproducibly from ``seed``, the round, the worker and the attempt).
    seed : int
        The run's seed.
    """

    tamper_blob: tuple[int, int] | None = None
    lying_relayer_round: int | None = None
    dropout: float = 0.0
    seed: int = 0

    def drops_out(self, round_no: int, worker: Worker, attempt: int) -> bool:
        if self.dropout <= 0.0:
            return False
        draw = hashlib.sha256(
            f"aoichain/dropout/{self.seed}/{round_no}/{worker.index}/{attempt}".encode()
        ).digest()
        return int.from_bytes(draw[:8], "big") / 2**64 < self.dropout

    def after_store(self, round_no: int, worker: Worker, sha256: bytes, store: ModelStore) -> None:
        if self.tamper_blob == (round_no, worker.index):
            path = store.path(sha256)
            data = bytearray(path.read_bytes())
            data[-1] ^= 0xFF
            path.write_bytes(bytes(data))

    def lying_relayer(self, round_no: int) -> bool:
        return self.lying_relayer_round == round_no


FAULT_KIND = Kind(
    key="faults.injector",
    shape="a FaultInjector (an object with the methods after_store and lying_relayer)",
    arity=-1,
    fits=lambda obj: all(callable(getattr(obj, p, None)) for p in POINTS),
)

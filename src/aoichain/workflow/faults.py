"""Faults injected on purpose, to watch the system reject or survive them.

The loop of :class:`aoichain.workflow.FederatedTask` calls a
:class:`FaultInjector` at named points; the base class injects nothing, and
a plug-in overrides the points it needs:

- :meth:`FaultInjector.drops_out`: whether a worker misses a round (it does
  not answer the request; ``attempt`` 1 is the round's retry);
- :meth:`FaultInjector.attack_cache` and :meth:`FaultInjector.attack_update`:
  a Byzantine worker poisons its data before training or its update after
  (it still signs a valid record of what it sends; the attacks of ``[faults]
  byzantine`` are in :mod:`aoichain.workflow.byzantine`);
- :meth:`FaultInjector.after_store`: an update's blob was just stored (e.g.
  alter it, so that the aggregator's hash check refuses it);
- :meth:`FaultInjector.lying_relayer`: whether a relayer first forwards a
  false payload in this round (the committee's proofs expose it).

``[faults]`` in the run config builds a :class:`ConfiguredFaults`;
``[faults] injector = "package.module:name"`` names a plug-in instead.
:meth:`FaultInjector.attack_of` is no point of the loop: it tells the run's
outputs which workers attack, and how.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aoichain.fl import Dataset, ModelStore
from aoichain.workflow.byzantine import (
    ByzantineSettings,
    attack_blob,
    describe_attack,
    flip_labels,
    noise_rng,
)
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

    def attack_of(self, worker: Worker) -> str | None:
        """The attack ``worker`` mounts, in words (for the run's outputs); None if honest."""
        return None


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
    byzantine : ByzantineSettings, optional
        The attack of the Byzantine workers.
    byzantine_workers : frozenset of int
        Who attacks (worker indices), e.g. from
        :func:`aoichain.workflow.byzantine.choose_byzantine`.
    """

    tamper_blob: tuple[int, int] | None = None
    lying_relayer_round: int | None = None
    dropout: float = 0.0
    seed: int = 0
    byzantine: ByzantineSettings | None = None
    byzantine_workers: frozenset[int] = frozenset()

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

    def attack_cache(self, round_no: int, worker: Worker, cache: Dataset) -> Dataset:
        attack = self._attack(worker)
        return flip_labels(cache) if attack and attack.attack == "label_flip" else cache

    def attack_update(self, round_no: int, worker: Worker, model: bytes, update: bytes) -> bytes:
        attack = self._attack(worker)
        if attack is None:
            return update
        return attack_blob(attack, model, update, noise_rng(self.seed, round_no, worker.index))

    def attack_of(self, worker: Worker) -> str | None:
        attack = self._attack(worker)
        return None if attack is None else describe_attack(attack)

    def _attack(self, worker: Worker) -> ByzantineSettings | None:
        return self.byzantine if worker.index in self.byzantine_workers else None


FAULT_KIND = Kind(
    key="faults.injector",
    shape="a FaultInjector (an object with the methods after_store and lying_relayer)",
    arity=-1,
    fits=lambda obj: all(callable(getattr(obj, p, None)) for p in POINTS),
)

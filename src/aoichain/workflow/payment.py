"""The task's last steps: pay the workers, reclaim the rest, or settle after a failure.

These are steps of :class:`aoichain.workflow.FederatedTask` (a subclass may
override them), kept in a module of their own. Both are idempotent: they
read what the main chain already holds (finished, claimed, reclaimed) before
they send anything, so a resumed run, or ``aoichain recover``, finishes a
payment that a crash interrupted without paying anything twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aoichain.chain import ChainRejected, Network, Ticket
from aoichain.chain import Worker as ChainWorker
from aoichain.chain.client import send_together
from aoichain.errors import IntegrityError
from aoichain.workflow.steps import Payout, Phases, Prepared
from aoichain.workflow.workers import Worker

if TYPE_CHECKING:
    from aoichain.workflow.config import RunConfig


class PaymentSteps:
    """``pay`` and ``settle``, mixed into :class:`~aoichain.workflow.FederatedTask`."""

    prepared: Prepared
    config: RunConfig
    network: Network
    workers: list[Worker]
    phases: Phases

    def party(self, worker: Worker) -> ChainWorker:  # pragma: no cover - FederatedTask's
        raise NotImplementedError

    def pay(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> Payout:
        """The publisher finishes the task; each worker claims its pay with its ticket;
        the publisher reclaims the rest.

        Checks that every claim pays exactly what this run's own accounting
        credited (``credited``: wei per worker), that every balance moved by
        exactly what was paid (less gas), that M's paid total is the run's,
        and that escrow = paid + reclaimed.
        """
        publisher, rounds = self.network.publisher, self.config.task.rounds
        with self.phases.timing("ledger"):
            state = publisher.task(task_id)
            if not state["finished"]:
                publisher.finish(task_id)
            owed = [
                w
                for w in self.workers
                if credited[w.index] > 0 and self.party(w).claimable(tickets[w.index]) > 0
            ]
            before = [self.party(w).balance() for w in owed]
            # Each worker signs its own claim; they land together.
            claims = [self.party(w).claim_tx(tickets[w.index], rounds) for w in owed]
            for w, start, result in zip(owed, before, send_together(claims), strict=True):
                if isinstance(result, ChainRejected):
                    raise IntegrityError(f"worker {w.label}: claim refused: {result.reason}")
                moved = self.party(w).balance() - start
                if moved != credited[w.index] - result["feeWei"]:
                    raise IntegrityError(
                        f"worker {w.label}: claimed {moved + result['feeWei']} wei (balance moved "
                        f"{moved}, gas {result['feeWei']}), the run credited {credited[w.index]}"
                    )
            budget, earned = self.prepared.task.escrow_wei, sum(credited)
            state = publisher.task(task_id)
            if state["paid"] != earned or state["credited"] != earned:
                raise IntegrityError(
                    f"the main chain credited {state['credited']} and paid {state['paid']} wei, "
                    f"the run credited {earned}"
                )
            left = int(state["escrow"]) - earned - int(state["reclaimed"])
            # The contract refuses an empty reclaim; with every worker at the top reward
            # for every round (e.g. flat) the whole escrow was earned.
            if left > 0:
                publisher.reclaim(task_id)
            reclaimed = int(publisher.task(task_id)["reclaimed"])
        if reclaimed != budget - earned:
            raise IntegrityError(
                f"publisher reclaimed {reclaimed} wei, expected escrow {budget} less "
                f"{earned} earned"
            )
        checks = [
            f"{sum(1 for c in credited if c)} claims pay exactly what the run credited",
            f"escrow {budget} wei = earned {earned} + reclaimed {reclaimed}",
        ]
        return Payout(list(credited), reclaimed, checks)

    def settle(self, task_id: int, tickets: dict[int, Ticket]) -> str:
        """After a failure (or a hard kill): close the open round, finish the task, let
        every worker claim what it earned, reclaim the rest. Returns what was done."""
        publisher = self.network.publisher
        state = publisher.task(task_id)
        if state["round_open"]:
            publisher.close_round(task_id, int(state["rounds_opened"]) - 1)
        if not state["finished"]:
            publisher.finish(task_id)
        owed = [
            w
            for w in self.workers
            if w.index in tickets and self.party(w).claimable(tickets[w.index]) > 0
        ]
        claims = [self.party(w).claim_tx(tickets[w.index], self.config.task.rounds) for w in owed]
        refused = [r for r in send_together(claims) if isinstance(r, ChainRejected)]
        if refused:
            raise IntegrityError(f"{len(refused)} claims refused, e.g. {refused[0].reason}")
        state = publisher.task(task_id)
        left = int(state["escrow"]) - int(state["credited"]) - int(state["reclaimed"])
        reclaimed = publisher.reclaim(task_id) if left > 0 else 0
        state = publisher.task(task_id)
        return (
            f"the task was finished; workers claimed {int(state['paid'])} wei they had earned "
            f"and the publisher reclaimed {reclaimed} wei of unearned escrow"
        )

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

from aoichain.chain import ChainRejected, Ticket
from aoichain.chain import Worker as ChainWorker
from aoichain.chain.client import send_together
from aoichain.errors import IntegrityError
from aoichain.workflow.steps import Claimed, Parties, Payout, Phases, Prepared
from aoichain.workflow.workers import Worker

if TYPE_CHECKING:
    from aoichain.workflow.config import RunConfig


class PaymentSteps:
    """``pay``, ``claim`` and ``settle``, mixed into :class:`~aoichain.workflow.FederatedTask`."""

    prepared: Prepared
    config: RunConfig
    network: Parties
    workers: list[Worker]
    phases: Phases

    def party(self, worker: Worker) -> ChainWorker:  # pragma: no cover - FederatedTask's
        raise NotImplementedError

    def pay(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> Payout:
        """The publisher finishes the task; each worker claims its pay with its ticket
        (:meth:`claim`); the publisher reclaims the rest.

        Checks that every claim pays exactly what this run's own accounting
        credited (``credited``: wei per worker), that every balance moved by
        exactly what was paid (less gas), that M's credited and paid totals are
        the run's, and that escrow = earned + reclaimed. A worker that has not
        claimed (one that runs elsewhere and has not yet, or one a resumed run
        left out, without a ticket in ``tickets``) keeps its pay claimable on M;
        the checks say so.
        """
        publisher = self.network.publisher
        with self.phases.timing("ledger"):
            if not publisher.task(task_id)["finished"]:
                publisher.finish(task_id)
            owed = [0] * len(self.workers)
            for w in self.workers:
                if not credited[w.index]:
                    continue
                # A worker without a ticket here earned before a resume that left it out
                # (its SuperNode gone): it cannot claim now, its pay stays claimable.
                if w.index not in tickets or self.party(w).claimable(tickets[w.index]) > 0:
                    owed[w.index] = credited[w.index]
            claims = self.claim(tickets, owed)
            paid, unclaimed = [0] * len(self.workers), []
            for w in self.workers:
                c = claims.get(w.index)
                if c is not None:
                    if c.amount != credited[w.index] or c.moved != c.amount - c.fee:
                        raise IntegrityError(
                            f"worker {w.label}: claimed {c.amount} wei (balance moved "
                            f"{c.moved}, gas {c.fee}), the run credited {credited[w.index]}"
                        )
                    paid[w.index] = c.amount
                elif owed[w.index]:
                    unclaimed.append(w.label)
                else:  # claimed before a crash and a resume, or earned nothing
                    paid[w.index] = credited[w.index]
            budget, earned = self.prepared.task.escrow_wei, sum(credited)
            state = publisher.task(task_id)
            if state["credited"] != earned or state["paid"] != sum(paid):
                raise IntegrityError(
                    f"the main chain credited {state['credited']} and paid {state['paid']} wei, "
                    f"the run credited {earned} and saw {sum(paid)} claimed"
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
            f"{sum(1 for p in paid if p)} claims pay exactly what the run credited",
            f"escrow {budget} wei = earned {earned} + reclaimed {reclaimed}",
        ]
        if unclaimed:
            checks.append(
                f"{len(unclaimed)} workers did not claim ({', '.join(unclaimed)}): their pay "
                f"stays claimable on M"
            )
        return Payout(paid, reclaimed, checks)

    def claim(self, tickets: dict[int, Ticket], owed: Sequence[int]) -> dict[int, Claimed]:
        """Each worker owed pay (``owed``: wei by worker index) claims it on M with its
        ticket, a pull payment for the task's rounds (each signs its own claim; they land
        together); what each claim paid, by worker index.

        Raises
        ------
        IntegrityError
            If M refuses a claim.
        """
        claimants = [w for w in self.workers if owed[w.index] and w.index in tickets]
        before = [self.party(w).balance() for w in claimants]
        txs = [self.party(w).claim_tx(tickets[w.index], self.config.task.rounds) for w in claimants]
        claims = {}
        for w, start, result in zip(claimants, before, send_together(txs), strict=True):
            if isinstance(result, ChainRejected):
                raise IntegrityError(f"worker {w.label}: claim refused: {result.reason}")
            party = self.party(w)
            got = party.withdrawal(result)
            claims[w.index] = Claimed(got.amount, got.fee, party.balance() - start)
        return claims

    def settle(self, task_id: int, tickets: dict[int, Ticket]) -> str:
        """After a failure (or a hard kill): close the open round, finish the task, let
        every worker claim what it earned, reclaim the rest. Returns what was done."""
        publisher = self.network.publisher
        state = publisher.task(task_id)
        if state["round_open"]:
            publisher.close_round(task_id, int(state["rounds_opened"]) - 1)
        if not state["finished"]:
            publisher.finish(task_id)
        owed = [0] * len(self.workers)
        for w in self.workers:
            if w.index in tickets:
                owed[w.index] = self.party(w).claimable(tickets[w.index])
        self.claim(tickets, owed)
        state = publisher.task(task_id)
        left = int(state["escrow"]) - int(state["credited"]) - int(state["reclaimed"])
        reclaimed = publisher.reclaim(task_id) if left > 0 else 0
        state = publisher.task(task_id)
        return (
            f"the task was finished; workers claimed {int(state['paid'])} wei they had earned "
            f"and the publisher reclaimed {reclaimed} wei of unearned escrow"
        )

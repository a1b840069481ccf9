"""The issue's attacks on a whole run: the run finishes and pays exactly what it credited.

Small runs (2 IIoT nodes and their twins, 2 rounds) on embedded py-evm
chains, the outsider's run on anvil too (marker ``anvil``). Each run gets
chains the test keeps open, to read M after the run. The attacker acts from
inside a step of a :class:`FederatedTask` subclass, right where it could in
a real run: after a round opens, or while updates are pending.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from aoichain.chain import ChainRejected, Included, Network, TaskSpec, Ticket
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.keys import Signer
from aoichain.config import build_model
from aoichain.workflow import (
    Enrolled,
    FederatedTask,
    RunConfig,
    RunResult,
    Trained,
    Uploaded,
    load_run_config,
    resolve_plugins,
    run_task,
)
from aoichain.workflow.config import MAX_PHYSICAL
from aoichain.workflow.run import reward_wei_per_round, solve_contract
from aoichain.workflow.updates import sealed_sha256

SMALL: dict[str, Any] = {
    "task": {"rounds": 2, "seed": 3, "target_accuracy": 1.0},
    "workers": {"physical": 2},
}
AOICHAIN = [sys.executable, "-m", "aoichain"]
BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


def small(backend: str = "embedded") -> RunConfig:
    """The small run's config on ``backend``."""
    return load_run_config(overrides={**SMALL, "chain": {"backend": backend}})


def bit(net: Network, bitmap: str, task_id: int, round_no: int, index: int) -> bool:
    """Whether ``index`` is set in M's ``submitted`` or ``included`` bitmap of a round."""
    main = net.view("M").contract(load("main"), net.deployment.chains["M"].contract)
    word = int(net.view("M").call(main, bitmap, task_id, round_no, index // 256))
    return bool(word >> (index % 256) & 1)


def check_paid_exactly(result: RunResult, net: Network) -> None:
    """Every claim paid what the run credited; M holds nothing more of the task's escrow."""
    outcome = result.outcome
    assert outcome.paid_wei == outcome.credited_wei and sum(outcome.paid_wei) > 0
    assert outcome.budget_wei == sum(outcome.paid_wei) + outcome.reclaimed_wei
    state = net.publisher.task(outcome.task_id)
    assert (state["credited"], state["paid"]) == (sum(outcome.paid_wei),) * 2
    assert state["escrow"] == state["paid"] + state["reclaimed"] == outcome.budget_wei
    assert net.view("M").balance(net.deployment.chains["M"].contract) == 0


class Watched(FederatedTask):
    """A run that shows its workers' tickets in ``seen`` (they are public: each is in an
    enrol call on a subchain); a subclass names the dict."""

    seen: dict[int, Ticket]

    def allocate(self, task_id: int) -> Enrolled:
        enrolled = super().allocate(task_id)
        self.seen.update(enrolled.tickets)
        return enrolled


def intruding(log: list[str]) -> type[FederatedTask]:
    """A run where, after each round opens, an outsider with a fresh key tries to enrol on
    P (with a ticket it signed itself, then with a worker's ticket copied from the chain)
    and to record an update; each refusal's reason goes to ``log``."""

    tickets: dict[int, Ticket] = {}

    class Intruded(Watched):
        seen = tickets

        def upload(self, task_id: int, round_no: int, trained: Any) -> Any:
            """Before the workers record their updates, an outsider tries its luck."""
            self.intrude(task_id, round_no)
            return super().upload(task_id, round_no, trained)

        def intrude(self, task_id: int, round_no: int) -> None:
            net = self.network
            intruder = Signer.random("outsider")
            plain = ChainClient(net.view("P"), [])  # plain transactions, not the run's log
            # The deployer sends nothing else during a run: it can fund the intruder.
            plain.transfer(net.keys.deployer, intruder.address, 10**19)
            sub = plain.contract(load("subchain"), net.deployment.chains["P"].contract)
            index = self.prepared.task.stride - 1  # item 0's last index: free
            digest = sub.functions.ticket_digest(task_id, intruder.address, 0, index).call()
            copied = next(t for t in self.seen.values() if t.subchain == "P")
            attempts: list[tuple[Any, ...]] = [
                ("enrol", task_id, 0, index, intruder.sign_digest(digest).as_tuple()),
                ("enrol", task_id, copied.item, copied.index, copied.signature.as_tuple()),
                ("submit_update", task_id, round_no, bytes(range(32)), 10, 1),
            ]
            for fn, *args in attempts:
                try:
                    plain.transact(intruder, sub, fn, *args)
                except ChainRejected as exc:
                    log.append(exc.reason)
                else:
                    log.append(f"{fn} was accepted")

    return Intruded


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_outsider_enrolling_and_recording_during_a_run_changes_nothing(
    tmp_path: Path, backend: str
) -> None:
    """The issue: an outsider's enrolment and one update record aborted the run."""
    cfg, log = small(backend), []
    with Network.start(cfg.chain, workers={"P": 2, "V": 2}) as net:
        result = run_task(cfg, tmp_path / "run", network=net, task_cls=intruding(log))
        assert log == [
            "subchain: not admitted by the publisher",
            "subchain: not admitted by the publisher",
            "subchain: worker not enrolled",
        ] * len(result.rounds)
        assert [(r.accepted, r.rejected) for r in result.rounds] == [(4, 0), (4, 0)]
        assert result.outcome.rejections == []
        for key in ("P", "V"):
            contract = net.view(key).contract(load("subchain"), net.deployment.chains[key].contract)
            assert net.view(key).call(contract, "tasks", result.outcome.task_id)[5] == 2
        check_paid_exactly(result, net)


def copying(pairs: list[tuple[int, str, str]], tickets: dict[int, Ticket]) -> type[FederatedTask]:
    """A run where, each round, the worker on the top item records another worker's pending
    update hash before its author does, instead of its own; ``(round, copier, author)`` go
    to ``pairs``, the run's tickets to ``tickets``."""

    class Copied(Watched):
        seen = tickets

        def upload(self, task_id: int, round_no: int, trained: Sequence[Trained]) -> Uploaded:
            reward = self.prepared.task.menu_reward_wei_per_round
            mine = max(trained, key=lambda t: reward[t.worker.item])
            theirs = next(t for t in trained if t is not mine)
            author = self.party(theirs.worker).address
            _, pending = sealed_sha256(
                theirs.update.blob, task_id=task_id, round_no=round_no, author=author
            )
            self.party(mine.worker).submit_update(
                task_id, round_no, pending, mine.update.samples, round(mine.request.data_time)
            )
            pairs.append((round_no, mine.worker.label, theirs.worker.label))
            return super().upload(task_id, round_no, [t for t in trained if t is not mine])

    return Copied


@pytest.mark.slow
def test_a_front_run_copy_during_a_run_credits_its_author_not_the_copier(
    tmp_path: Path,
) -> None:
    """The issue: M accepted the copier's record, skipped the author's as a repeat and paid
    the copier. Now both records stand; the aggregator reads whose blob it is."""
    cfg, pairs, tickets = small(), [], {}
    with Network.start(cfg.chain, workers={"P": 2, "V": 2}) as net:
        result = run_task(cfg, tmp_path / "run", network=net, task_cls=copying(pairs, tickets))
        outcome, workers = result.outcome, {w.label: w for w in result.prepared.workers}
        reward = result.prepared.task.menu_reward_wei_per_round
        (copier,), (author,) = {c for _, c, _ in pairs}, {a for _, _, a in pairs}
        top = workers[copier].item
        assert reward[top] == max(reward[w.item] for w in workers.values())
        assert [(r.round, r.worker, r.where) for r in outcome.rejections] == [
            (r, copier, "aggregator") for r in range(len(result.rounds))
        ]
        assert all("a copied update hash" in r.reason for r in outcome.rejections)
        assert [(r.accepted, r.rejected) for r in result.rounds] == [(3, 1), (3, 1)]
        w_author, w_copier = workers[author], workers[copier]
        assert outcome.credited_wei[w_author.index] == 2 * reward[w_author.item]
        assert outcome.paid_wei[w_copier.index] == outcome.credited_wei[w_copier.index] == 0
        check_paid_exactly(result, net)
        # The copier's records were attested on M; none was included, nothing to claim.
        for r in range(len(result.rounds)):
            assert bit(net, "submitted", outcome.task_id, r, tickets[w_copier.index].index)
            assert not bit(net, "included", outcome.task_id, r, tickets[w_copier.index].index)
            assert bit(net, "included", outcome.task_id, r, tickets[w_author.index].index)
        party = net.worker(w_copier.space, w_copier.space_index)
        with pytest.raises(ChainRejected, match=r"main: nothing to claim$"):
            party.claim(tickets[w_copier.index], len(result.rounds))


# ---------------------------------------------------------------- the limit


def test_workers_at_the_limit_validate_and_their_task_publishes_and_pays_on_chain() -> None:
    """``--workers`` 25,000: 50,000 workers, the most a task admits (main.vy's MAX_WORKERS).

    Nothing trains here: the config validates, the task its contract solves
    for 50,000 workers is published and escrowed on M, and workers admitted
    at the far end of the top item's range enrol, record, and are paid.
    """
    cfg = load_run_config(overrides={"workers": {"physical": MAX_PHYSICAL}})
    assert cfg.n_workers == 2 * MAX_PHYSICAL == 50_000
    contract = solve_contract(cfg.market, resolve_plugins(cfg).scheme, cfg.task.contract_method)
    rewards = reward_wei_per_round(cfg, cfg.market, contract)
    spec = build_model(
        TaskSpec,
        {
            "model_spec_hash": bytes(32),
            "rounds": cfg.task.rounds,
            "target_accuracy": cfg.task.target_accuracy,
            "menu_f": [float(f) for f in contract.f],
            "menu_reward_wei_per_round": rewards,
            "menu_max_samples": [cfg.train.max_windows] * len(rewards),
            "max_workers": cfg.n_workers,
        },
        source="the task at the limit",
    )
    top = rewards.index(max(rewards))
    with Network.start(cfg.chain, workers={"P": 1, "V": 1}) as net:
        publisher, relayer = net.publisher, net.relayer
        task_id = publisher.publish(spec)
        relayer.relay_task(task_id)
        tickets = []
        for n, w in enumerate((net.worker("P", 0), net.worker("V", 0))):
            index = top * spec.stride + cfg.n_workers - 1 - n
            tickets.append(publisher.admit(task_id, w.address, w.subchain, top, index))
            w.enrol(tickets[-1])
        publisher.open_round(task_id, 0)
        relayer.relay_round_open(task_id, 0)
        for n, w in enumerate((net.worker("P", 0), net.worker("V", 0))):
            w.submit_update(task_id, 0, bytes([n + 1]) * 32, cfg.train.max_windows, 1)
        carried = dict(relayer.relay_records(task_id, 0))
        verified = publisher.verify_records(task_id, 0, carried)
        publisher.record_global_model(
            task_id,
            0,
            bytes([9]) * 32,
            [Included(r.index, r.worker, r.update_sha256) for rs in verified.values() for r in rs],
        )
        relayer.relay_global_model(task_id, 0)
        publisher.close_round(task_id, 0)
        publisher.finish(task_id)
        paid = [
            w.claim(t, spec.rounds).amount
            for w, t in zip((net.worker("P", 0), net.worker("V", 0)), tickets, strict=True)
        ]
        assert paid == [rewards[top]] * 2
        assert publisher.reclaim(task_id) == spec.escrow_wei - 2 * rewards[top]


@pytest.mark.slow  # the command imports the workflow and the report (seconds) before it validates
def test_workers_one_past_the_limit_exit_2_before_any_transaction(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [*AOICHAIN, "run", "--workers", str(MAX_PHYSICAL + 1), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "workers.physical" in line and f"{MAX_PHYSICAL}" in line
    assert not out.exists()

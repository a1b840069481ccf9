"""Workers that miss rounds: seeded dropouts, the retry, workers silent at enrolment, and a
task too starved to go on."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from aoichain.chain import Network, Ticket
from aoichain.workflow import (
    ConfiguredFaults,
    FederatedTask,
    Request,
    RunConfig,
    Worker,
    load_run_config,
    prepare,
    run_task,
)

BASE: dict[str, Any] = {
    "task": {"rounds": 4, "seed": 2, "target_accuracy": 1.0},
    "workers": {"physical": 4},
    "chain": {"backend": "embedded"},
}


def _with(**sections: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) for k, v in BASE.items()}
    for key, values in sections.items():
        out[key] = {**out.get(key, {}), **values}
    return out


def test_dropouts_are_seeded_and_near_their_rate() -> None:
    workers = prepare(load_run_config(overrides=_with(workers={"physical": 10}))).workers
    cases = [(r, w, attempt) for r in range(50) for w in workers for attempt in (0, 1)]
    draws = [ConfiguredFaults(dropout=0.3, seed=7).drops_out(*case) for case in cases]
    assert 0.25 < sum(draws) / len(draws) < 0.35
    assert draws == [ConfiguredFaults(dropout=0.3, seed=7).drops_out(*case) for case in cases]
    assert draws != [ConfiguredFaults(dropout=0.3, seed=8).drops_out(*case) for case in cases]
    assert not any(ConfiguredFaults().drops_out(*case) for case in cases)


def test_a_run_with_dropouts_finishes_and_pays_only_the_rounds_delivered(tmp_path: Path) -> None:
    cfg = load_run_config(overrides=_with(faults={"dropout": 0.3}))
    result = run_task(cfg, tmp_path / "run")
    outcome = result.outcome
    missed = [x for x in outcome.rejections if "missed the round" in x.reason]
    assert missed, "a 30 % dropout over 4 rounds of 8 workers missed nobody"
    assert len(result.rounds) == 4
    label = {w.label: w for w in result.prepared.workers}
    reward = result.prepared.task.menu_reward_wei_per_round
    for x in missed:
        w = label[x.worker]
        assert not outcome.requests.delivered[x.round, w.index]
        assert math.isnan(outcome.requests.aoi[x.round, w.index])
    for w in result.prepared.workers:
        rounds_delivered = int(outcome.requests.delivered[:, w.index].sum())
        expected = reward[w.item] * rounds_delivered if w.item >= 0 else 0
        assert outcome.credited_wei[w.index] == expected
    assert outcome.paid_wei == outcome.credited_wei
    assert sum(outcome.credited_wei) + outcome.reclaimed_wei == outcome.budget_wei
    with (result.out_dir / "workers.csv").open() as fh:  # the run folder lists who missed what
        listed = {row["worker"]: row["rounds_missed"].split() for row in csv.DictReader(fh)}
    for x in missed:
        assert str(x.round) in listed[x.worker]
    assert sum(len(v) for v in listed.values()) == len(missed)


def test_too_few_updates_after_the_retry_stop_the_task_settled(tmp_path: Path) -> None:
    cfg = load_run_config(overrides=_with(faults={"dropout": 0.6}, task={"min_updates": 8}))
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        result = run_task(cfg, tmp_path / "run", network=net)
        task = net.publisher.task(result.outcome.task_id)
    stop = [x for x in result.outcome.rejections if "fewer than min_updates" in x.reason]
    assert len(stop) == 1 and len(result.rounds) == stop[0].round + 1
    assert task["finished"] and not task["round_open"]
    assert task["escrow"] == task["credited"] + task["reclaimed"]
    assert task["paid"] == task["credited"]


def test_a_round_deadline_closes_the_round_without_the_late_workers(tmp_path: Path) -> None:
    deadline = 15.0
    cfg = load_run_config(overrides=_with(task={"deadline_s": deadline}))
    outcome = run_task(cfg, tmp_path / "run").outcome
    late = [x for x in outcome.rejections if x.reason.startswith("late:")]
    assert late, "no worker's latency passed a 15 s deadline"
    label = {w.label: w.index for w in prepare(cfg).workers}
    for x in late:
        assert not outcome.requests.delivered[x.round, label[x.worker]]
    on_time = outcome.requests.latency[outcome.requests.delivered]
    assert (on_time <= deadline).all()
    assert outcome.paid_wei == outcome.credited_wei


class _SilentAtEnrolment(FederatedTask):
    """Two admitted workers never answer their enrolment, as the flower engine's
    :meth:`~aoichain.flower.server.FlowerTask.enrol` reports a SuperNode that is down."""

    silent: ClassVar[frozenset[str]] = frozenset()
    asked: ClassVar[list[str]] = []

    def enrol(self, task_id: int, tickets: dict[int, Ticket]) -> dict[int, str]:
        quiet = {
            w.index: "no answer at enrolment (its SuperNode is not connected)"
            for w in self.workers
            if w.label in self.silent and w.index in tickets
        }
        super().enrol(task_id, {i: t for i, t in tickets.items() if i not in quiet})
        return quiet

    def serve(self, round_no: int, workers: Sequence[Worker], attempt: int = 0) -> list[Request]:
        type(self).asked += [w.label for w in workers]
        return super().serve(round_no, workers, attempt)


def _silent(cfg: RunConfig) -> type[_SilentAtEnrolment]:
    admitted = [w.label for w in prepare(cfg).workers if w.item >= 0]
    return type("Silent", (_SilentAtEnrolment,), {"silent": frozenset(admitted[:2]), "asked": []})


def test_workers_silent_at_enrolment_are_left_out_and_the_run_goes_on(tmp_path: Path) -> None:
    cfg = load_run_config(overrides=_with())
    cls = _silent(cfg)
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        result = run_task(cfg, tmp_path / "run", network=net, task_cls=cls)
        task = net.publisher.task(result.outcome.task_id)
    outcome = result.outcome
    assert len(result.rounds) == 4
    assert cls.asked and not cls.silent & set(cls.asked)  # never asked in any round
    left_out = [x for x in outcome.rejections if x.where == "enrolment"]
    assert sorted(x.worker for x in left_out) == sorted(cls.silent)
    assert {(x.round, x.reason) for x in left_out} == {
        (0, "not enrolled: no answer at enrolment (its SuperNode is not connected)")
    }
    for w in result.prepared.workers:
        if w.label in cls.silent:
            assert w.index not in outcome.tickets
            assert outcome.credited_wei[w.index] == outcome.paid_wei[w.index] == 0
            assert not outcome.requests.delivered[:, w.index].any()
    assert outcome.paid_wei == outcome.credited_wei and sum(outcome.credited_wei) > 0
    assert task["escrow"] == task["credited"] + task["reclaimed"]


def test_too_few_workers_left_after_enrolment_stop_the_task_settled(tmp_path: Path) -> None:
    cfg = load_run_config(overrides=_with(task={"min_updates": 7}))
    cls = _silent(cfg)
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        result = run_task(cfg, tmp_path / "run", network=net, task_cls=cls)
        task = net.publisher.task(result.outcome.task_id)
    stop = [x for x in result.outcome.rejections if "fewer than min_updates" in x.reason]
    assert len(result.rounds) == 1 and len(stop) == 1 and stop[0].round == 0
    assert sum(result.outcome.credited_wei) == 0
    assert task["finished"] and not task["round_open"]
    assert task["escrow"] == task["reclaimed"] and task["paid"] == 0


class _LeftOutAtResume(FederatedTask):
    """Pays as a resumed run would whose worker ``gone`` (credited in earlier rounds)
    was left out at its enrolment: that worker holds no ticket in this run."""

    gone: ClassVar[int] = -1

    def pay(self, task_id: int, tickets: dict[int, Ticket], credited: Sequence[int]) -> Any:
        return super().pay(task_id, {i: t for i, t in tickets.items() if i != self.gone}, credited)


def test_a_worker_left_out_at_a_resume_keeps_what_it_earned_claimable(tmp_path: Path) -> None:
    cfg = load_run_config(overrides=_with(task={"rounds": 2}))
    gone = next(w for w in prepare(cfg).workers if w.item >= 0)
    cls = type("LeftOut", (_LeftOutAtResume,), {"gone": gone.index})
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        result = run_task(cfg, tmp_path / "run", network=net, task_cls=cls)
        outcome = result.outcome
        owed = net.worker(gone.space, gone.space_index).claimable(outcome.tickets[gone.index])
    assert outcome.credited_wei[gone.index] > 0 and outcome.paid_wei[gone.index] == 0
    assert owed == outcome.credited_wei[gone.index]
    assert any(f"did not claim ({gone.label})" in c for c in outcome.balance_checks)
    assert outcome.reclaimed_wei == outcome.budget_wei - sum(outcome.credited_wei)

"""A run that stops resumes from its journal, or is settled by ``recover``.

The chains outlive the run (anvil nodes deployed once, attached as ``rpc``),
as they would in a deployment; a hard crash (a ``BaseException`` the run does
not catch, as a kill) is injected right after a step has acted on the chains
but before the journal wrote the round down, the worst place to stop. The
resumed run must end exactly where an uninterrupted run of the same config
ends: the same global model, the same pay, no step sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aoichain.chain import ChainConfig, Network
from aoichain.errors import InvalidInput
from aoichain.workflow import (
    FederatedTask,
    RunResult,
    load_run_config,
    recover_run,
    resume_run,
    run_task,
)

pytestmark = pytest.mark.anvil

ROUNDS = 3


class HardCrash(BaseException):
    """A kill: not an ``Exception``, so the run does not settle; only the journal is left."""


def crashing(step: str, at_round: int) -> type[FederatedTask]:
    """A task class that dies right after ``step`` of round ``at_round`` acted."""

    class Crashes(FederatedTask):
        pass

    def after(self: FederatedTask, task_id: int, round_no: int, *args: Any, **kw: Any) -> Any:
        result = getattr(FederatedTask, step)(self, task_id, round_no, *args, **kw)
        if round_no == at_round:
            raise HardCrash(f"killed after {step} of round {round_no}")
        return result

    def pay(self: FederatedTask, task_id: int, *args: Any) -> Any:
        self.network.publisher.finish(task_id)
        raise HardCrash("killed while paying")

    setattr(Crashes, step, pay if step == "pay" else after)
    return Crashes


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Four anvil nodes with the contracts deployed, as ``aoichain chains up`` leaves them."""
    folder = tmp_path_factory.mktemp("chains")
    with Network.start(
        ChainConfig(backend="anvil"), workers={}, keys_dir=folder / "keys", for_run=False
    ) as net:
        yield net.deployment.write(folder / "deployments.json")


def _overrides(deployments: Path) -> dict[str, Any]:
    return {
        "task": {"rounds": ROUNDS, "seed": 5, "target_accuracy": 1.0},
        "workers": {"physical": 2},
        "chain": {"backend": "rpc", "rpc_file": str(deployments)},
    }


@pytest.fixture(scope="module")
def reference(deployment: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    cfg = load_run_config(overrides=_overrides(deployment))
    return run_task(cfg, tmp_path_factory.mktemp("reference"))


def _settled(result: RunResult) -> dict[str, Any]:
    with Network.start(
        result.prepared.config.chain.resolved(),
        workers={"P": 2, "V": 2},
        keys_dir=result.out_dir / "keys",
        run_keys=True,
    ) as net:
        return net.publisher.task(result.outcome.task_id)


@pytest.mark.parametrize(
    "step,at_round",
    [("upload", 1), ("relay", 1), ("record", 1), ("announce", 2), ("pay", -1)],
)
def test_a_run_killed_after_a_step_resumes_to_the_same_end(
    step: str, at_round: int, deployment: Path, reference: RunResult, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cfg = load_run_config(overrides=_overrides(deployment))
    with pytest.raises(HardCrash):
        run_task(cfg, out, task_cls=crashing(step, at_round))
    events = [
        json.loads(line)["event"] for line in (out / "journal.jsonl").read_text().splitlines()
    ]
    assert events[:3] == ["started", "published", "enrolled"] and "paid" not in events

    resumed = resume_run(out)

    assert resumed.outcome.task_id != reference.outcome.task_id  # its own task, its own keys
    assert resumed.outcome.global_sha256 == reference.outcome.global_sha256
    assert resumed.outcome.credited_wei == reference.outcome.credited_wei
    assert resumed.outcome.paid_wei == reference.outcome.credited_wei
    assert resumed.outcome.rejections == reference.outcome.rejections  # nothing sent twice
    assert [r.global_sha256 for r in resumed.rounds] == [r.global_sha256 for r in reference.rounds]
    task = _settled(resumed)
    assert task["finished"] and task["paid"] == task["credited"] == sum(
        resumed.outcome.credited_wei
    )
    assert task["escrow"] == task["credited"] + task["reclaimed"]
    assert task["rounds_opened"] == task["rounds_closed"] == ROUNDS
    rows = (out / "rounds.csv").read_text().splitlines()
    assert len(rows) == ROUNDS + 1  # a header and one row a round, none twice
    labels = [json.loads(x)["label"] for x in (out / "receipts.jsonl").read_text().splitlines()]
    assert labels.count("publish_task") == 1 and labels.count("reclaim") <= 1
    assert labels.count("record_global_model") == ROUNDS


def test_recover_returns_the_escrow_of_a_killed_run(deployment: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_run_config(overrides=_overrides(deployment))
    with pytest.raises(HardCrash):
        run_task(cfg, out, task_cls=crashing("upload", 1))
    (out / "journal.jsonl").unlink()  # even with the journal gone: the keys find the task
    (out / "journal.jsonl").write_text("")
    lines = recover_run(out)
    assert len(lines) == 1 and "reclaimed" in lines[0]
    with Network.start(
        cfg.chain.resolved(), workers={"P": 2, "V": 2}, keys_dir=out / "keys", run_keys=True
    ) as net:
        (task_id,) = net.publisher.my_tasks()
        task = net.publisher.task(task_id)
    assert task["finished"] and not task["round_open"]
    assert task["paid"] == task["credited"] > 0  # round 0 was earned and claimed
    assert task["escrow"] == task["credited"] + task["reclaimed"]
    assert recover_run(out)  # again: nothing moves, nothing fails
    with pytest.raises(InvalidInput, match="settled by 'aoichain recover'"):
        resume_run(out)


def test_only_runs_on_chains_that_outlive_them_resume(tmp_path: Path) -> None:
    cfg = load_run_config(
        overrides={
            "task": {"rounds": 1},
            "workers": {"physical": 1},
            "chain": {"backend": "embedded"},
        }
    )
    run_task(cfg, tmp_path / "run")
    with pytest.raises(InvalidInput, match="embedded chains it started itself"):
        resume_run(tmp_path / "run")
    with pytest.raises(InvalidInput, match="no run journal"):
        resume_run(tmp_path / "nothing")

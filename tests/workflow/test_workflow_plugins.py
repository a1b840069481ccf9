"""Plug-in points: a task subclass, rules, schemes, sources and fault injectors from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aoichain.errors import InvalidInput
from aoichain.fl import ModelStore, SensorStream
from aoichain.workflow import (
    FaultInjector,
    FederatedTask,
    GlobalModel,
    Request,
    StreamRequest,
    Trained,
    Worker,
    load_run_config,
    run_task,
)
from aoichain.workflow.sources import generator_source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
TINY: dict[str, Any] = {
    "task": {"rounds": 2, "seed": 1, "target_accuracy": 1.0},
    "workers": {"physical": 2},
}


def _aoichain(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "aoichain", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_the_example_plugins_run_from_toml(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _aoichain(
        "run", "--config", "run.toml", "--out", str(out), "--rounds", "2", "--workers", "2",
        cwd=EXAMPLES,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plugins"]["aggregation"] == "clipped_mean:clipped_mean"
    assert summary["plugins"]["scheme"] == summary["scheme"] == "cost_plus:cost_plus"
    assert summary["updates_accepted"] == 8
    assert summary["paid_wei"] + summary["reclaimed_wei"] == summary["budget_wei"]
    resolved = (out / "config.toml").read_text()
    assert 'scheme = "cost_plus:cost_plus"' in resolved
    assert 'aggregation = "clipped_mean:clipped_mean"' in resolved


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--scheme", "no_such_module:menu", "'task.scheme' plug-in 'no_such_module:menu' does"),
        ("--scheme", "cost_plus:nothing_here", "has no 'nothing_here'"),
        ("--scheme", "clipped_mean:np", "is not a callable (market, method) -> Contract"),
    ],
)
def test_a_wrong_plugin_exits_2_with_one_line(
    flag: str, value: str, needle: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = _aoichain("run", flag, value, "--out", str(out), cwd=EXAMPLES)
    assert proc.returncode == 2
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"train": {"aggregation": "math:pi"}}, "'train.aggregation' plug-in 'math:pi' is not"),
        ({"train": {"aggregation": "nope"}}, "must be one of fedavg, median, trimmed_mean"),
        ({"data": {"source": "math:pi"}}, "'data.source' plug-in 'math:pi' is not"),
        ({"faults": {"injector": "math:sqrt"}}, "'faults.injector' plug-in 'math:sqrt' is not"),
        ({"faults": {"injector": "configured"}}, "must be a dotted path"),
        ({"task": {"scheme": "math"}}, "must be one of CA, CC, CS, flat or a dotted path"),
    ],
)
def test_wrong_plugins_are_named_in_the_config(table: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_run_config(overrides=table)
    assert needle in str(info.value)


class ScaledMean:
    """A zero-argument factory (a class) whose instances are aggregation rules."""

    def __call__(self, stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.asarray(np.average(stacked, axis=0, weights=weights))


class TamperFirst(FaultInjector):
    """Alters the first blob stored in round 1 and records where the loop called it."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def after_store(self, round_no: int, worker: Worker, sha256: bytes, store: ModelStore) -> None:
        self.calls.append((round_no, worker.label))
        if (round_no, worker.label) == (1, "P0"):
            path = store.path(sha256)
            path.write_bytes(path.read_bytes()[:-1] + b"\0")


class SkipTheTwins(FederatedTask):
    """A subclass overriding one step: only the physical workers train."""

    def train(
        self, round_no: int, model: GlobalModel, requests: Sequence[Request]
    ) -> list[Trained]:
        return super().train(round_no, model, [r for r in requests if r.worker.space == "P"])


def test_python_plugins_task_subclass_rule_and_faults(tmp_path: Path) -> None:
    faults = TamperFirst()
    sources: list[StreamRequest] = []

    def source(request: StreamRequest) -> list[SensorStream]:
        sources.append(request)
        return generator_source(request)

    result = run_task(
        load_run_config(overrides=TINY),
        tmp_path / "run",
        task_cls=SkipTheTwins,
        aggregation=ScaledMean(),
        source=source,
        faults=faults,
    )
    assert [r.accepted for r in result.rounds] == [2, 1]  # the tampered blob is refused
    assert [(x.round, x.where) for x in result.outcome.rejections] == [(1, "aggregator")]
    assert faults.calls == [(0, "P0"), (0, "P1"), (1, "P0"), (1, "P1")]
    assert sources and sources[0].nodes == 2
    names = result.summary.plugins
    assert names["aggregation"].endswith("test_workflow_plugins:ScaledMean")
    assert names["faults"].endswith("test_workflow_plugins:TamperFirst")
    assert sum(result.outcome.paid_wei) + result.outcome.reclaimed_wei == result.outcome.budget_wei


def test_a_source_giving_the_wrong_streams_is_refused(tmp_path: Path) -> None:
    def one_stream(request: StreamRequest) -> list[SensorStream]:
        return generator_source(request)[:1]

    out = tmp_path / "run"
    with pytest.raises(InvalidInput, match="must return 2 SensorStreams"):
        run_task(load_run_config(overrides=TINY), out, source=one_stream)
    assert not out.exists()

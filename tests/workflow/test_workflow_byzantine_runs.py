"""Runs with Byzantine workers: every attack completes, the outputs mark the attackers, and
the recommended rule (docs/faults.md) keeps the model near the honest run's."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from aoichain.report.run_report import write_run_report
from aoichain.workflow import RunResult, load_run_config, run_task
from aoichain.workflow.byzantine import ATTACKS, choose_byzantine

SEED = 2
QUARTER: dict[str, Any] = {
    "task": {"rounds": 2, "seed": SEED, "target_accuracy": 1.0},
    "workers": {"physical": 4},  # 8 workers, 2 of them Byzantine: 25 %
    "chain": {"backend": "embedded"},
}


#: The rule docs/faults.md recommends when workers may be Byzantine, and how far below the
#: honest FedAvg run each metric (mean of the last 3 of 6 rounds, on the held-out set) may
#: end under 25 % attackers. Measured (this setting, seed 0): honest FedAvg ROC AUC 0.915,
#: accuracy 0.875, F1 0.555; multi_krum under the four attacks 0.937-0.946, 0.907-0.912,
#: 0.705-0.746; FedAvg loses accuracy to sign_flip (0.646) and label_flip (0.453) and F1 to
#: scale (0.371) and noise (0.365), while its ROC AUC stays 0.84-0.97: no one metric shows
#: every attack.
RECOMMENDED, MARGIN, ROUNDS, LAST = "multi_krum", 0.05, 6, 3
METRICS = ("roc_auc", "accuracy", "f1")


def _run(
    out: Path,
    byzantine: dict[str, Any] | None = None,
    *,
    rule: str = "fedavg",
    rounds: int = 2,
    seed: int = SEED,
) -> RunResult:
    overrides = {
        **QUARTER,
        "task": {**QUARTER["task"], "rounds": rounds, "seed": seed},
        "train": {"aggregation": rule},
        "faults": {"byzantine": byzantine} if byzantine else {},
    }
    return run_task(load_run_config(overrides=overrides), out)


def _late(result: RunResult) -> dict[str, float]:
    """Each of ``METRICS``, the mean of the last rounds' global models (one round's jumps)."""
    return {m: sum(getattr(r, m) for r in result.rounds[-LAST:]) / LAST for m in METRICS}


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return _run(tmp_path_factory.mktemp("honest") / "run")


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_run_with_a_quarter_byzantine_completes_and_marks_them(
    attack: str, honest: RunResult, tmp_path: Path
) -> None:
    result = _run(tmp_path / "run", {"workers": 2, "attack": attack})
    attackers = choose_byzantine(8, 2, SEED)
    # The chains accept the attackers' records: every update is aggregated and paid.
    assert [r.accepted for r in result.rounds] == [8, 8]
    assert not result.outcome.rejections
    assert result.outcome.paid_wei == honest.outcome.paid_wei
    # ... and what they sent changed the global model.
    assert result.outcome.global_sha256 != honest.outcome.global_sha256
    with (result.out_dir / "workers.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    marked = {i for i, row in enumerate(rows) if row["byzantine"] == "True"}
    assert marked == attackers
    assert all(rows[i]["attack"].startswith(attack) for i in attackers)
    assert all(row["attack"] == "" for i, row in enumerate(rows) if i not in attackers)
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["byzantine_workers"] == 2 and summary["byzantine_attack"].startswith(attack)
    report = write_run_report(result).read_text()
    assert "2 of 8 workers are Byzantine" in report
    assert all(f"{rows[i]['worker']}" in report for i in attackers)


@pytest.mark.slow
def test_an_honest_run_names_no_attacker(honest: RunResult) -> None:
    summary = json.loads((honest.out_dir / "summary.json").read_text())
    assert summary["byzantine_workers"] == 0 and summary["byzantine_attack"] is None
    assert "workers are Byzantine" not in write_run_report(honest).read_text()


@pytest.fixture(scope="module")
def honest_fedavg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    return _late(_run(tmp_path_factory.mktemp("fedavg") / "run", rounds=ROUNDS, seed=0))


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_the_recommended_rule_stays_within_the_margin_where_fedavg_falls(
    attack: str, honest_fedavg: dict[str, float], tmp_path: Path
) -> None:
    byzantine = {"workers": 2, "attack": attack}
    robust = _late(_run(tmp_path / "robust", byzantine, rule=RECOMMENDED, rounds=ROUNDS, seed=0))
    plain = _late(_run(tmp_path / "fedavg", byzantine, rounds=ROUNDS, seed=0))
    assert all(robust[m] >= honest_fedavg[m] - MARGIN for m in METRICS), (robust, honest_fedavg)
    # The attack does hurt FedAvg, by one metric or another.
    assert any(plain[m] < honest_fedavg[m] - MARGIN for m in METRICS), (plain, honest_fedavg)

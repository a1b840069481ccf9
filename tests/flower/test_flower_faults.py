"""Faults on Flower's deployment engine: a dead SuperNode is a dropout, a dead SuperLink
is resumed.

One federation (1 IIoT node and its twin: 2 SuperNodes, 4 rounds) on anvil nodes
that outlive it, driven by the command line as an operator would: once round 0
is done, ``kill -9`` of worker V0's SuperNode (V0 misses round 1, never a hang);
once round 1 is done, ``kill -9`` of the SuperLink (the command ends with one
line and exit status 3, and no process it started runs on). Then ``aoichain run
--resume`` starts a new federation (V0 back on a new SuperNode) and finishes
the task: its global model in every round, its credits and its pay are those
of an in-process run of the same config on the same chains whose V0 drops out
of round 1. One test, as a federation costs a minute or more.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_flower_federation import leftovers

from aoichain.chain import ChainConfig, Network
from aoichain.workflow import FaultInjector, Worker, load_run_config, run_task

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

SRC = Path(__file__).resolve().parents[2] / "src"
ROUNDS = 4


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Anvil nodes with the contracts deployed, as ``aoichain chains up`` leaves them."""
    folder = tmp_path_factory.mktemp("chains")
    chain = ChainConfig(
        backend="anvil",
        committee_size=3,
        threshold=2,
        subchain_validators=2,
        subchain_threshold=2,
    )
    with Network.start(chain, workers={}, keys_dir=folder / "keys", for_run=False) as net:
        yield net.deployment.write(folder / "deployments.json")


class V0MissesRound1(FaultInjector):
    """What a SuperNode killed in round 1 and back for round 2 does, in process."""

    def drops_out(self, round_no: int, worker: Worker, attempt: int) -> bool:
        return worker.label == "V0" and round_no == 1


def _child(parent: int, mark: str) -> int:
    """The pid of ``parent``'s child whose command line holds ``mark``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent and mark in cmd:
            return int(entry)
    raise AssertionError(f"no child of {parent} runs {mark}")


def _rounds_done(out: Path) -> int:
    progress = out / "progress.jsonl"
    if not progress.exists():
        return 0
    lines = [json.loads(x) for x in progress.read_text().splitlines() if x.strip()]
    return sum(1 for e in lines if e["event"] == "round")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_a_dead_supernode_is_a_dropout_and_a_dead_superlink_is_resumed(
    deployments: Path, tmp_path: Path
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f"[task]\nrounds = {ROUNDS}\nseed = 3\ntarget_accuracy = 1.0\n"
        "[workers]\nphysical = 1\n"
        f'[chain]\nbackend = "rpc"\nrpc_file = "{deployments}"\n'
    )
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    aoichain = [sys.executable, "-m", "aoichain", "run"]
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [*aoichain, "--engine", "flower", "--config", str(config), "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    killed: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            done = _rounds_done(out)
            if done >= 1 and "V0" not in killed:
                os.kill(_child(proc.pid, "worker-V0.toml"), signal.SIGKILL)
                killed["V0"] = time.monotonic()
            if done >= 2 and "superlink" not in killed:
                os.kill(_child(proc.pid, "flower-superlink"), signal.SIGKILL)
                killed["superlink"] = time.monotonic()
            time.sleep(0.1)
        status = proc.wait(timeout=120)
        ended = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The dead SuperNode cost a bounded wait (Flower's heartbeats), not a hang; the dead
    # SuperLink ends the command at once, with one line naming it and how to go on.
    assert set(killed) == {"V0", "superlink"}, errors.read_text()
    lines = [line for line in errors.read_text().splitlines() if line.strip()]
    message = [line for line in lines if not line.startswith("warning: keystores")]
    assert status == 3, lines
    assert len(message) == 1 and "SuperLink" in message[0] and "--resume" in message[0]
    assert "killed (SIGKILL) after 2 rounds" in message[0]
    assert ended - killed["superlink"] < 60
    assert leftovers(out) == []
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert journal[0]["engine"] == "flower"
    assert [e["row"]["round"] for e in journal if e["event"] == "round"] == [0, 1]
    missed = [r for e in journal if e["event"] == "round" for r in e["rejections"]]
    assert {"round": 1, "worker": "V0", "where": "worker"}.items() <= next(
        r for r in missed if r["worker"] == "V0"
    ).items()
    assert any(r["reason"] == "missed the round (no answer)" for r in missed)

    # --resume: the engine the journal names, a new federation, the rounds left.
    began = time.monotonic()
    resumed = subprocess.run(
        [*aoichain, "--resume", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    resume_s = time.monotonic() - began
    assert leftovers(out) == []

    reference = run_task(load_run_config(config), tmp_path / "in-process", faults=V0MissesRound1())
    rounds = _csv(out / "rounds.csv")
    assert [r["global_sha256"] for r in rounds] == [r.global_sha256 for r in reference.rounds]
    assert [int(r["accepted"]) for r in rounds] == [r.accepted for r in reference.rounds]
    assert [int(r["accepted"]) for r in rounds] == [2, 1, 2, 2]
    workers = _csv(out / "workers.csv")
    assert [int(w["credited_wei"]) for w in workers] == reference.outcome.credited_wei
    assert [int(w["paid_wei"]) for w in workers] == reference.outcome.paid_wei
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paid_wei"] + summary["reclaimed_wei"] == summary["budget_wei"]
    labels = [json.loads(x)["label"] for x in (out / "receipts.jsonl").read_text().splitlines()]
    assert labels.count("publish_task") == 1
    assert labels.count("record_global_model") == ROUNDS
    # What docs/many-machines.md reports (pytest -rP shows it).
    training = [round(float(r["seconds_training"]), 1) for r in rounds]
    print(
        f"training phase per round {training} s; SuperLink kill to exit "
        f"{ended - killed['superlink']:.1f} s; resume {resume_s:.1f} s"
    )

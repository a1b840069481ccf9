"""The federated task on Flower's deployment engine, every party its own process.

One federation of 2 IIoT nodes and their twins (4 SuperNodes), 2 rounds, on
anvil, with a worker that drops out, one that answers after the round's
deadline, one Byzantine worker (its node config adds noise to its updates),
and worker P0 sending bytes other than those it recorded in round 1: it
finishes, pays, rejects P0's round-1 update and goes on, and gives every
round the global model and every worker the pay the in-process engine gives
(there, the same update is altered in the store). Then the ways a federation
ends early: Ctrl-C on the command, and a ServerApp that fails. After each, no
process it started runs and no port it used listens.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aoichain.flower.errors import FederationError
from aoichain.flower.federation import run_federation, still_running
from aoichain.flower.processes import listening
from aoichain.flower.settings import WorkerFaults
from aoichain.workflow import load_run_config, run_task

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

SRC = Path(__file__).resolve().parents[2] / "src"
CHAINS = {
    "backend": "anvil",
    "committee_size": 3,
    "threshold": 2,
    "subchain_validators": 2,
    "subchain_threshold": 2,
}
SMALL: dict[str, Any] = {
    "task": {"rounds": 2, "seed": 3, "target_accuracy": 1.0},
    "workers": {"physical": 2},
    "chain": CHAINS,
}
#: One Byzantine worker (P1, chosen from the seed) adds noise to every update it sends.
BYZANTINE = {"workers": 1, "attack": "noise", "noise_std": 0.1}
#: Round 0: P1 drops out, P0 answers after the deadline (latency 26 s); round 1: P0's
#: update is refused (its bytes differ from its record), P1's noisy one is aggregated. The
#: engines must agree on all of it.
FAULTY: dict[str, Any] = {
    **SMALL,
    "task": {**SMALL["task"], "deadline_s": 25.0},
    "faults": {"dropout": 0.2, "byzantine": BYZANTINE},
}


def leftovers(out: Path) -> list[str]:
    """Processes of the federation in ``out`` that still run, and ports still listening."""
    record = out / "flower" / "processes.json"
    found = [f"{label}: {pids}" for label, pids in still_running(record).items()]
    ports = {p for entry in json.loads(record.read_text()).values() for p in entry["ports"]}
    deployments = out / "chains" / "deployments.json"
    if deployments.exists():
        for chain in json.loads(deployments.read_text())["chains"].values():
            ports.add(int(chain["rpc_url"].rsplit(":", 1)[1]))
    found += [f"port {p} listens" for p in sorted(ports) if listening(p)]
    marks = [str(out), *(f"127.0.0.1:{p}" for p in ports), *(f"--port {p}" for p in ports)]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, UnicodeDecodeError):
            continue
        if state != "Z" and any(m in cmd for m in marks):
            found.append(f"pid {entry}: {cmd[:160]}")
    return found


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


# One test, one federation: pytest-xdist would run a module-scoped fixture once per
# worker, and a federation costs a minute or two.
def test_a_federation_pays_matches_the_in_process_engine_and_survives_a_lying_worker(
    tmp_path: Path,
) -> None:
    result = run_federation(
        load_run_config(overrides=FAULTY),
        tmp_path / "flower",
        worker_faults={"P0": WorkerFaults(tamper_reply_round=1)},
    )
    out, summary = result.out_dir, result.summary
    # It finishes and writes the in-process engine's run folder, and each process's log.
    for name in ("config.toml", "rounds.csv", "workers.csv", "receipts.jsonl", "report.html"):
        assert (out / name).is_file(), name
    for label in ("superlink", "supernode-P0", "supernode-V1", "committee-0", "flwr-run"):
        assert (out / "logs" / f"{label}.log").is_file()
    assert summary.rounds_run == 2
    # It pays: every worker claimed what the run credited, from its own key.
    assert summary.paid_wei > 0
    assert summary.paid_wei + summary.reclaimed_wei == summary.budget_wei
    assert any("claims pay exactly what the run credited" in c for c in summary.balance_checks)
    assert any("checked the last global model" in c for c in summary.balance_checks)
    workers = _csv(out / "workers.csv")
    assert [w["worker"] for w in workers] == ["P0", "P1", "V0", "V1"]
    assert all(int(w["paid_wei"]) == int(w["credited_wei"]) for w in workers)
    senders = {json.loads(line)["sender"] for line in (out / "receipts.jsonl").open()}
    assert {w["address"] for w in workers} <= senders
    # P0's round-1 bytes differ from its record: the aggregator refuses them, the run goes on.
    refused = {(r["round"], r["worker"]): r for r in summary.rejections}
    assert refused[1, "P0"]["where"] == "aggregator"
    assert "has no blob" in str(refused[1, "P0"]["reason"])
    # A worker that drops out is not asked; one whose answer would be late does not train.
    assert "missed the round" in str(refused[0, "P1"]["reason"])
    assert "late" in str(refused[0, "P0"]["reason"])
    rounds = _csv(out / "rounds.csv")
    assert [int(r["accepted"]) for r in rounds] == [2, 3]
    # The in-process engine on anvil, the same update altered in its store, agrees round
    # for round and wei for wei.
    in_process = run_task(
        load_run_config(
            overrides={**FAULTY, "faults": {**FAULTY["faults"], "tamper_blob": [1, 0]}}
        ),
        tmp_path / "in-process",
    )
    assert [r["global_sha256"] for r in rounds] == [r.global_sha256 for r in in_process.rounds]
    assert [int(w["paid_wei"]) for w in workers] == in_process.outcome.paid_wei
    # The attacker is P1's own node (its node config), marked as the in-process run marks it.
    node = (out / "flower" / "nodes" / "worker-P1.toml").read_text()
    assert 'byzantine = "noise"' in node and "noise_std = 0.1" in node
    marked = [(w["worker"], w["byzantine"], w["attack"]) for w in workers]
    assert marked == [
        (w["worker"], w["byzantine"], w["attack"]) for w in _csv(in_process.out_dir / "workers.csv")
    ]
    assert [m[0] for m in marked if m[1] == "True"] == ["P1"]
    # No process outlives it.
    assert leftovers(out) == []


def test_ctrl_c_on_the_command_stops_every_process_it_started(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[chain]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in CHAINS.items()))
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    argv = ["run", "--engine", "flower", "--workers", "1", "--rounds", "3", "--config"]
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aoichain", *argv, str(config), "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        progress = out / "progress.jsonl"
        deadline = time.monotonic() + 300
        while not (progress.exists() and "publishing" in progress.read_text()):
            assert proc.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the federation did not start in 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leftovers(out) == []


def test_a_serverapp_failure_is_one_line_and_stops_everything(tmp_path: Path) -> None:
    config = load_run_config(
        overrides={"task": {"rounds": 1}, "workers": {"physical": 1}, "chain": CHAINS}
    )
    out = tmp_path / "run"
    # Half a second is too short for any ClientApp to answer: no worker is there, so the
    # ServerApp gives up before it publishes.
    with pytest.raises(FederationError) as failed:
        run_federation(config, out, reply_s=0.5)
    message = str(failed.value)
    assert "\n" not in message
    assert "finished:failed" in message and "the task is not published" in message
    assert "no reply within 0.5 s" in message
    assert leftovers(out) == []

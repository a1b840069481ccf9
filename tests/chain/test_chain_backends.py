"""Backends and the boundary: ``chains up`` feeding ``rpc``, bad files and URLs, bad input.

Nothing here may leave a node running: every process started is stopped in
a ``finally`` (and anvil dies with its parent in any case).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_helpers import sha
from pydantic import ValidationError
from typer.testing import CliRunner

from aoichain.chain import ChainConfig, ChainUnavailable, Network, TaskSpec
from aoichain.chain.nodes import AnvilProcess, attach_rpc
from aoichain.cli import app
from aoichain.config import build_model
from aoichain.errors import InvalidInput

# ------------------------------------------------------------- chains up


@pytest.mark.anvil
def test_chains_up_writes_deployments_the_rpc_backend_attaches_to(tmp_path: Path) -> None:
    out = tmp_path / "chains"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aoichain", "chains", "up", "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        file = out / "deployments.json"
        deadline = time.monotonic() + 60
        while not file.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "chains up wrote no deployments.json"
            time.sleep(0.05)
        deployments = json.loads(file.read_text())
        assert {c["chain_id"] for c in deployments["chains"].values()} == set(
            ChainConfig().chain_ids.values()
        )
        assert sorted(p.name for p in (out / "keys").iterdir()) == sorted(
            ["deployer.json", "relayer.json"]
            + [f"committee-{i}.json" for i in range(5)]
            + [f"validator-{k}-{i}.json" for k in "MPV" for i in range(3)]
        )

        cfg = ChainConfig(backend="rpc", rpc_file=file)
        with Network.start(cfg, workers={"P": 1, "V": 1}) as net:
            assert net.deployment.to_json()["chains"] == deployments["chains"]
            spec = TaskSpec(
                model_spec_hash=sha("rpc"), rounds=1, target_accuracy=0.5, menu_f=[1.0],
                menu_reward_wei_per_round=[100], menu_max_samples=[10], max_workers=2,
            )  # fmt: skip
            task = net.publisher.publish(spec)
            net.relayer.relay_task(task)
            worker = net.worker("V", 0)
            worker.enrol(net.publisher.admit(task, worker.address, "V", 0, 0))
            labels = {r.label for r in net.receipts}
            assert labels >= {"publish_task", "enrol", "checkpoint M"}
            assert not any(label.startswith("deploy") for label in labels)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    url = deployments["chains"]["M"]["rpc_url"]
    with pytest.raises(ChainUnavailable, match="no EVM node answers"):
        attach_rpc("M", url)


@pytest.fixture
def four_anvils(tmp_path: Path) -> Iterator[dict[str, str]]:
    procs = {
        k: AnvilProcess(cid + 100, tmp_path / f"anvil-{k}.log")
        for k, cid in ChainConfig().chain_ids.items()
    }
    try:
        yield {k: p.start() for k, p in procs.items()}
    finally:
        for p in procs.values():
            p.stop()


@pytest.mark.anvil
def test_rpc_file_with_urls_only_gets_the_contracts_deployed(
    tmp_path: Path, four_anvils: dict[str, str]
) -> None:
    toml = tmp_path / "nodes.toml"
    toml.write_text("".join(f'[chains.{k}]\nrpc_url = "{url}"\n' for k, url in four_anvils.items()))
    keys = tmp_path / "keys"
    cfg = ChainConfig(backend="rpc", rpc_file=toml)
    with Network.start(cfg, workers={"P": 1, "V": 0}, keys_dir=keys) as net:
        assert sum(r.label.startswith("deploy") for r in net.receipts) == 4
        assert net.deployment.chains["R"].chain_id == ChainConfig().chain_ids["R"] + 100
        assert (keys / "publisher.json").stat().st_mode & 0o777 == 0o600
    bad = tmp_path / "wrong-id.toml"
    bad.write_text(
        "".join(f'[chains.{k}]\nrpc_url = "{u}"\nchain_id = 1\n' for k, u in four_anvils.items())
    )
    with pytest.raises(ChainUnavailable, match="has chain id"):
        Network.start(ChainConfig(backend="rpc", rpc_file=bad))


# --------------------------------------------------------- bad rpc files


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _partial() -> dict[str, object]:
    """Only M names its contract."""
    chains: dict[str, object] = {k: {"rpc_url": "http://127.0.0.1:1"} for k in "RPV"}
    chains["M"] = {"rpc_url": "http://127.0.0.1:1", "contracts": {"main": {"address": "0x1"}}}
    return chains


def _urls(port: int) -> str:
    return "".join(f'[chains.{k}]\nrpc_url = "http://127.0.0.1:{port}"\n' for k in "MRPV")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("missing.json", None, "does not exist"),
        ("broken.json", "{not json", "not valid JSON"),
        ("broken.toml", "[chains.M\n", "not valid TOML"),
        ("no-subchain.toml", _urls(1).split("[chains.P]")[0], "must include M, R and subchains"),
        ("ftp.toml", _urls(1).replace("http://", "ftp://"), "must be an http"),
        ("partial.json", json.dumps({"chains": _partial()}), "every chain lists its contract"),
    ],
)
def test_bad_rpc_files_are_refused_before_any_transaction(
    tmp_path: Path, name: str, text: str | None, match: str
) -> None:
    file = tmp_path / name
    if text is not None:
        file.write_text(text)
    with pytest.raises(ChainUnavailable, match=match) as info:
        Network.start(ChainConfig(backend="rpc", rpc_file=file))
    assert isinstance(info.value, InvalidInput)


def test_unreachable_rpc_url_is_refused_before_any_transaction(tmp_path: Path) -> None:
    file = tmp_path / "nodes.toml"
    file.write_text(_urls(_closed_port()))
    with pytest.raises(
        ChainUnavailable, match=r"chain M: no EVM node answers at http://127\.0\.0\.1"
    ):
        Network.start(ChainConfig(backend="rpc", rpc_file=file))


# ------------------------------------------------------------ boundaries


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"committee_size": 3, "threshold": 4}, "threshold must be at most committee_size"),
        ({"subchain_validators": 2, "subchain_threshold": 3}, "subchain_threshold must be at most"),
        ({"backend": "rpc"}, "needs rpc_file"),
        ({"rpc_file": "x.json"}, "only read by the 'rpc' backend"),
        ({"committee_size": 40}, "committee_size"),
        ({"backend": "geth"}, "backend"),
        ({"subchains": {"P": 0, "V": 1}}, "each space needs 1 to 16 subchains"),
        ({"subchains": {"P": 1}}, "must name exactly P and V"),
        ({"outage_s": -1}, "outage_s"),
    ],
)
def test_chain_config_names_the_bad_parameter(values: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError):
        ChainConfig(**values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=match):
        build_model(ChainConfig, values, source="run.toml [chain]")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model_spec_hash": b"short"}, "model_spec_hash"),
        ({"rounds": 0}, "rounds"),
        ({"target_accuracy": 1.5}, "target_accuracy"),
        ({"menu_f": [1.0, 2.0]}, "same length"),
        ({"menu_f": [0.0]}, "finite frequency"),
        ({"menu_reward_wei_per_round": [-1]}, "non-negative"),
        ({"menu_max_samples": [0]}, "sample cap"),
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 50_001}, "max_workers"),
    ],
)
def test_a_bad_task_is_refused_before_any_transaction(
    embedded: Network, kwargs: dict[str, object], match: str
) -> None:
    task: dict[str, object] = {
        "model_spec_hash": sha("ok"),
        "rounds": 2,
        "target_accuracy": 0.9,
        "menu_f": [1.0],
        "menu_reward_wei_per_round": [5],
        "menu_max_samples": [10],
        "max_workers": 3,
    }
    with pytest.raises(InvalidInput, match=match):
        build_model(TaskSpec, {**task, **kwargs})


def test_bad_worker_arguments_are_refused_before_any_transaction(embedded: Network) -> None:
    n = len(embedded.receipts)
    worker = embedded.worker("P", 0)
    with pytest.raises(InvalidInput, match="'update_sha256'"):
        worker.submit_update(1, 0, b"not a hash", 1, 1)
    with pytest.raises(InvalidInput, match="'samples'"):
        worker.submit_update(1, 0, sha("u"), -1, 1)
    with pytest.raises(InvalidInput, match=r"'subchain' parameter of Publisher\.admit"):
        embedded.publisher.admit(1, worker.address, "Q", 0, 0)
    with pytest.raises(InvalidInput, match="no task message"):
        embedded.relayer.relay_task(10**6)
    assert len(embedded.receipts) == n


def test_chains_up_with_bad_options_exits_2_and_starts_nothing() -> None:
    result = CliRunner().invoke(app, ["chains", "up", "--committee-size", "2", "--threshold", "3"])
    assert result.exit_code == 2
    assert "threshold" in result.output

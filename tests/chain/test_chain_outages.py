"""Nodes that keep their state, and parties that ride out a node's short outage.

The issue's operator killed P's anvil in the middle of a run: ``chains up``
stopped the three healthy nodes too, every chain's state was lost, and the
run died with a traceback blaming M. Now a node ``chains up`` started keeps
its chain in ``OUT/state/``, is restarted from it on its URL when it dies,
and comes back with the rest when ``chains up`` runs again on the same
folder; a party whose node stops answering waits for it (reporting the
wait), and gives up with ``ChainDown`` naming the chain and its URL (exit
status 3) if it does not come back.

Nothing here may leave a node running: every process started is stopped in
a ``finally`` (and anvil dies with its parent in any case).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from chain_helpers import Lines, anvil_pid, call, chains_up, new_task, wait_for, wait_until
from typer.testing import CliRunner
from web3.types import RPCEndpoint

from aoichain.chain import ChainConfig, ChainDown, ChainOutageWarning, ChainRewound, Network
from aoichain.chain.client import ChainClient, Receipt
from aoichain.chain.keys import Signer
from aoichain.chain.nodes import AnvilProcess, http_web3
from aoichain.chain.views import ChainView
from aoichain.cli import app
from aoichain.cli._app import EXIT_OUTAGE, cli_errors
from aoichain.errors import AoichainError, InvalidInput

CHAIN_ID = 31_999
PAYEE = "0x" + "11" * 20
URLS_ONLY = {k: {"rpc_url": "http://127.0.0.1:1"} for k in "MRPV"}


def saved_head(state: Path) -> int:
    """The latest block of a chain's state file (it is replaced whole, never torn)."""
    return int(json.loads(state.read_text())["best_block_number"])


def rpc_network(out: Path, **workers: int) -> Network:
    """The network of a run attached to the nodes ``chains up --out OUT`` keeps."""
    cfg = ChainConfig(backend="rpc", rpc_file=out / "deployments.json", outage_s=30)
    return Network.start(cfg, workers=workers)


# ------------------------------------------------------------- chains up


@pytest.mark.anvil
def test_chains_up_restarts_a_killed_node_from_its_state_on_its_url(tmp_path: Path) -> None:
    out = tmp_path / "chains"
    with chains_up(out) as proc:
        stderr = Lines(proc.stderr)
        deployments = wait_for(out / "deployments.json", proc)
        ids = {k: c["chain_id"] for k, c in deployments["chains"].items()}
        healthy = {k: anvil_pid(proc.pid, ids[k]) for k in ("M", "R", "V")}
        with rpc_network(out, P=1, V=1) as net:
            task = new_task(net, enrol={"P0": 0}, rounds=2)
            worker_p0 = net.worker("P", 0)
            before = (worker_p0.balance("P"), call(net, "P", "tasks", task.task_id))
            head = net.view("P").head()
            wait_until(lambda: saved_head(out / "state" / "P.json") >= head, what="P saved")

            os.kill(anvil_pid(proc.pid, ids["P"]), signal.SIGKILL)
            url = deployments["chains"]["P"]["rpc_url"]
            line = stderr.wait_for(r"^chain P: its node .* restarted")
            assert re.fullmatch(
                rf"chain P: its node \({re.escape(url)}\) stopped \(killed by SIGKILL\); "
                rf"restarted from \S+P\.json at block {head} in [0-9.]+ s",
                line,
            )
            assert {k: anvil_pid(proc.pid, ids[k]) for k in healthy} == healthy
            assert net.view("P").head() == head  # the same URL, the same chain
            assert (worker_p0.balance("P"), call(net, "P", "tasks", task.task_id)) == before
            task.submit("P0", 0)  # and the worker goes on
    assert sum("restarted" in line for line in stderr.lines) == 1


@pytest.mark.anvil
def test_chains_up_again_on_its_folder_brings_every_chain_back(tmp_path: Path) -> None:
    out = tmp_path / "chains"
    with chains_up(out) as proc:
        deployments = wait_for(out / "deployments.json", proc)
        with rpc_network(out, P=1, V=1) as net:
            task = new_task(net, enrol={"P0": 0, "V0": 1})
            block = net.relayer.checkpoint("P")
            p_id = net.deployment.chains["P"].chain_id
            escrow = net.view("M").balance(net.deployment.chains["M"].contract)
            held = {
                "task": call(net, "M", "tasks", task.task_id),
                "checkpoint": call(net, "R", "checkpoint", p_id, block),
                "on P": call(net, "P", "tasks", task.task_id),
                "worker V0": net.worker("V", 0).balance("V"),
            }
    saved = (out / "deployments.json").read_bytes()

    with chains_up(out) as proc:
        assert json.loads(proc.stdout.readline() if proc.stdout else b"")["resumed"] is True
        assert (out / "deployments.json").read_bytes() == saved
        assert json.loads(saved) == deployments
        with rpc_network(out, V=1) as net:
            assert net.view("M").balance(net.deployment.chains["M"].contract) == escrow
            assert {
                "task": call(net, "M", "tasks", task.task_id),
                "checkpoint": call(net, "R", "checkpoint", p_id, block),
                "on P": call(net, "P", "tasks", task.task_id),
                "worker V0": held["worker V0"],
            } == held
            # The committee's and validators' keys still sign: a new task crosses to V.
            new_task(net, enrol={"V0": 0})

    # A folder with part of a deployment, or other options, is refused before any node starts.
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / "state" / "V.json").unlink()
    runner = CliRunner()
    result = runner.invoke(app, ["chains", "up", "--out", str(partial)])
    assert result.exit_code == 2, result.output
    assert "holds an incomplete deployment: state/V.json missing" in result.output
    result = runner.invoke(app, ["chains", "up", "--out", str(out), "--committee-size", "4"])
    assert result.exit_code == 2, result.output
    assert "committee_size 4 (it has 5)" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"keys/deployer.json": "{}"}, "holds keys but no deployments.json"),
        ({"state/M.json": "{}"}, "holds state but no deployments.json"),
        (
            {
                "deployments.json": json.dumps(
                    {"chains": {k: {"rpc_url": "http://x"} for k in "MRPV"}}
                )
            },
            "records no contracts, not anvil nodes",
        ),
        ({"deployments.json": "{not json"}, "is not a deployments file"),
    ],
)
def test_chains_up_refuses_a_folder_holding_part_of_a_deployment(
    tmp_path: Path, files: dict[str, str], needle: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = CliRunner().invoke(app, ["chains", "up", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split())


# ------------------------------------------------------------- outages


@pytest.fixture
def node(tmp_path: Path) -> Iterator[AnvilProcess]:
    """One anvil node keeping its chain in ``tmp_path/state/P.json``."""
    proc = AnvilProcess(CHAIN_ID, tmp_path / "anvil.log", state_path=tmp_path / "state" / "P.json")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop(save=False)


def _party(node: AnvilProcess, outage_s: float) -> tuple[ChainView, ChainClient, Signer]:
    """A view and a client of the node, and a funded payer."""
    assert node.url is not None
    view = ChainView("P", CHAIN_ID, http_web3("P", node.url), node.url, outage_s=outage_s)
    payer = Signer.random("payer")
    view.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [payer.address, hex(10**20)])
    log: list[Receipt] = []
    return view, ChainClient(view, log), payer


@pytest.mark.anvil
def test_a_view_rides_out_a_short_outage_and_reports_the_wait(node: AnvilProcess) -> None:
    view, client, payer = _party(node, outage_s=30)
    client.transfer(payer, PAYEE, 5)
    node.stop()  # saves its state
    comeback = threading.Timer(0.5, node.start)
    comeback.start()
    try:
        url = re.escape(str(node.url))
        with pytest.warns(
            ChainOutageWarning,
            match=rf"^chain P \({url}\) does not answer \(reading a balance: .*\); "
            rf"waiting up to 30 s for it to come back$",
        ) as reported:
            assert view.balance(PAYEE) == 5
        assert len(reported) == 1
        client.transfer(payer, PAYEE, 5)  # and the client goes on
        assert view.balance(PAYEE) == 10
    finally:
        comeback.join()


@pytest.mark.anvil
def test_a_node_that_stays_down_is_chain_down_naming_the_chain_and_its_url(
    node: AnvilProcess,
) -> None:
    view, _, _ = _party(node, outage_s=0.3)
    node.stop()
    with (
        pytest.warns(ChainOutageWarning),
        pytest.raises(
            ChainDown, match=rf"^chain P \({re.escape(str(node.url))}\) is down: "
        ) as info,
    ):
        view.balance(PAYEE)
    assert "no answer for 0.3 s (reading a balance: ConnectionRefusedError" in str(info.value)
    assert (info.value.chain, info.value.url) == ("P", node.url)
    assert not isinstance(info.value, InvalidInput)


@pytest.mark.anvil
def test_a_transaction_in_flight_when_the_connection_dies_is_not_sent_twice(
    node: AnvilProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, client, payer = _party(node, outage_s=30)
    provider: Any = view.w3.provider
    once = provider.make_request_once
    lost: list[str] = []

    def answer_lost(method: RPCEndpoint, params: Any) -> Any:
        answer = once(method, params)  # the node takes the transaction ...
        if method.startswith("eth_sendRawTransaction") and not lost:
            lost.append(method)
            raise ConnectionResetError("... and the connection dies before its answer")
        return answer

    monkeypatch.setattr(provider, "make_request_once", answer_lost)
    receipt = client.send(payer, PAYEE, b"", value=7, label="pay", gas=21_000)
    assert lost and receipt["status"] == 1
    assert view.balance(PAYEE) == 7
    assert view.w3.eth.get_transaction_count(payer.address) == 1  # type: ignore[arg-type]
    assert [r.label for r in client._log] == ["pay"]

    # A copy of a signed transaction the chain already holds is read back, not refused.
    signed = client.sign(payer, PAYEE, b"", value=3, label="pay again", gas=21_000)
    provider.make_request(RPCEndpoint("eth_sendRawTransaction"), ["0x" + signed.raw.hex()])
    (again,) = client.send_together([signed])
    assert isinstance(again, dict) and again["status"] == 1
    assert view.balance(PAYEE) == 10


@pytest.mark.anvil
def test_a_node_back_without_blocks_a_party_saw_is_chain_rewound(node: AnvilProcess) -> None:
    _, client, payer = _party(node, outage_s=30)
    client.transfer(payer, PAYEE, 1)
    node.save_state(force=True)
    client.transfer(payer, PAYEE, 1)  # a block the state file does not hold
    lost = client.last_receipt.block
    assert node.pid is not None
    os.kill(node.pid, signal.SIGKILL)
    node.restart()
    with pytest.raises(
        ChainRewound, match=rf"^chain P \(\S+\) came back without block {lost} this process saw"
    ):
        client.transfer(payer, PAYEE, 1)


# ------------------------------------------------------------- exit status 3


def test_an_outage_exits_3_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    down = ChainDown("P", "http://127.0.0.1:8547", "is down: no answer for 15 s " + "(...)" * 40)
    with pytest.raises(typer.Exit) as info, cli_errors():
        raise down
    assert info.value.exit_code == EXIT_OUTAGE == 3
    assert capsys.readouterr().err == f"error: {down}\n"
    # An error raised from an outage (a run aborted because a chain was down) too.
    with pytest.raises(typer.Exit) as info, cli_errors():
        raise AoichainError(f"round 2 of task 1 failed: {down}") from down
    assert info.value.exit_code == 3
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.anvil
@pytest.mark.slow
def test_a_run_whose_node_dies_exits_3_then_resumes_to_the_uninterrupted_end(
    tmp_path: Path,
) -> None:
    """kill -9 of P's node mid-run, with chains up paused so nothing brings it back: the
    run stops with exit 3 and one line naming P; chains up restarts P from its state;
    ``run --resume`` ends where a run never interrupted ends."""
    out, run_dir, reference = tmp_path / "chains", tmp_path / "run", tmp_path / "reference"
    config = tmp_path / "run.toml"
    config.write_text("[chain]\noutage_s = 1\n[task]\nseed = 4\ntarget_accuracy = 1.0\n")

    def aoichain(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "aoichain", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    with chains_up(out) as up:
        deployments = wait_for(out / "deployments.json", up)
        p = deployments["chains"]["P"]
        common = ["--config", str(config), "--chains", str(out / "deployments.json"),
                  "--rounds", "3", "--workers", "2", "--json"]  # fmt: skip
        run = aoichain("run", *common, "--out", str(run_dir))
        try:
            journal = run_dir / "journal.jsonl"
            wait_until(  # round 0 is written down: P dies in the middle of the run
                lambda: (
                    (journal.exists() and '"round"' in journal.read_text())
                    or run.poll() is not None
                ),
                300,
                "round 0 in the journal",
            )
            os.kill(up.pid, signal.SIGSTOP)
            try:
                os.kill(anvil_pid(up.pid, p["chain_id"]), signal.SIGKILL)
                _, err = run.communicate(timeout=120)
            finally:
                os.kill(up.pid, signal.SIGCONT)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        lines = err.decode().splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        assert run.returncode == 3, err.decode()
        assert len(errors) == 1 and "Traceback" not in err.decode()
        assert f"chain P ({p['rpc_url']}) is down: no answer for 1 s" in errors[0]
        assert f"aoichain run --resume {run_dir}" in errors[0]
        assert any(re.match(r"warning: chain P \(.*\) does not answer", line) for line in lines)

        wait_until(lambda: _answers(p["rpc_url"]), 60, "P restarted by chains up")
        resumed = aoichain("run", "--resume", str(run_dir), "--json")
        never = aoichain("run", *common, "--out", str(reference))
        outs = [proc.communicate(timeout=600) for proc in (resumed, never)]
        for proc, (_, e) in zip((resumed, never), outs, strict=True):
            assert proc.returncode == 0, e.decode()
    a, b = (json.loads(o.decode()) for o, _ in outs)
    assert a["global_sha256"] == b["global_sha256"]
    assert a["paid_wei"] == b["paid_wei"] and a["reclaimed_wei"] == b["reclaimed_wei"]
    assert a["rounds_run"] == b["rounds_run"] == 3
    columns = ("round", "accuracy", "global_sha256", "accepted", "rejected")
    assert _rounds(run_dir, columns) == _rounds(reference, columns)
    paid = [(r["worker"], r["paid_wei"]) for r in _workers(run_dir)]
    assert paid == [(r["worker"], r["paid_wei"]) for r in _workers(reference)]


def _answers(url: str) -> bool:
    try:
        return http_web3("P", url).eth.block_number >= 0
    except Exception:
        return False


def _rounds(run_dir: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    with (run_dir / "rounds.csv").open() as fh:
        return [tuple(row[c] for c in columns) for row in csv.DictReader(fh)]


def _workers(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "workers.csv").open() as fh:
        return list(csv.DictReader(fh))

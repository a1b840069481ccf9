"""``aoichain run`` and ``aoichain compare``: thin shells, clear errors, nothing half-written."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoichain.cli import app

runner = CliRunner()
SMALL = ["--rounds", "2", "--workers", "2", "--seed", "5"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_clean_failure(result: object, out: Path, needle: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    text = result.output  # type: ignore[attr-defined]
    assert needle in text
    assert "Traceback" not in text
    assert not out.exists(), "a failed run must not leave a run folder behind"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rounds", "0"], "'task.rounds'"),
        (["--scheme", "XX"], "'task.scheme'"),
        (["--workers", "0"], "'workers.physical'"),
        (["--data", "/nonexistent/folder"], "/nonexistent/folder"),
        (["--chains", "/nonexistent/deployments.json"], "does not exist"),
        (["--config", "/nonexistent/run.toml"], "does not exist"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args: list[str], needle: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--out", str(out), *args])
    _assert_clean_failure(result, out, needle)


def test_a_folder_of_non_streams_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.csv").write_text("hello;world\nthis is;not a sensor stream\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--out", str(out), "--data", str(data)])
    _assert_clean_failure(result, out, "notes.csv")


def test_unreachable_chain_urls_are_refused_before_any_transaction(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    rpc = tmp_path / "deployments.json"
    rpc.write_text(
        json.dumps(
            {
                "chains": {
                    key: {"rpc_url": f"http://127.0.0.1:{port}", "chain_id": 100 + i}
                    for i, key in enumerate("MRPV")
                }
            }
        )
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--out", str(out), "--chains", str(rpc)])
    _assert_clean_failure(result, out, str(port))


def test_a_malformed_config_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[task\nrounds = 3\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--out", str(out), "--config", str(config)])
    _assert_clean_failure(result, out, "not valid TOML")


@pytest.mark.slow
def test_run_prints_one_json_summary(tmp_path: Path) -> None:
    """In a real process, as a script reads it: stdout is the JSON alone (progress: stderr)."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "aoichain", "run", "--out", str(out), "--json", *SMALL]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rounds_run"] == 2
    assert summary["paid_wei"] + summary["reclaimed_wei"] == summary["budget_wei"]
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_compare_writes_one_comparison(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", "--out", str(out), "--rounds", "1", "--workers", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["scheme"] for r in rows] == ["CA", "CC", "CS", "flat"]
    assert (out / "comparison.csv").read_text().count("\n") == 5
    assert (out / "report.html").is_file()
    for scheme in ("CA", "CC", "CS", "flat"):
        assert (out / scheme / "report.html").is_file()
    by = {r["scheme"]: r for r in rows}
    assert by["CC"]["sp_utility_contract"] >= by["CA"]["sp_utility_contract"]
    assert by["CA"]["sp_utility_contract"] >= by["flat"]["sp_utility_contract"]

"""``aoichain contract``: defaults, JSON shape, CSV, config files and every bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoichain.cli import app
from aoichain.incentive import Market, solve

runner = CliRunner()

TOP_KEYS = [
    "scheme",
    "method",
    "formulas",
    "market",
    "items",
    "sp_utility",
    "workers_utility",
    "social_welfare",
    "feasibility",
]


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["contract", "--json", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_default_is_the_papers_ca_contract_as_a_table() -> None:
    result = runner.invoke(app, ["contract"])
    assert result.exit_code == 0
    assert "CA contract (exact, paper forms)" in result.stdout
    assert "SP utility" in result.stdout and "IC" in result.stdout


def test_json_is_one_object_with_the_issue_shape() -> None:
    out = run_json()
    assert list(out) == TOP_KEYS
    assert (out["scheme"], out["method"], out["formulas"]) == ("CA", "exact", "paper")
    assert len(out["items"]) == 10
    assert out["feasibility"]["ic"] and out["feasibility"]["ir"]
    expected = solve(Market.paper_default())
    assert out["sp_utility"] == pytest.approx(expected.sp_utility_total, rel=1e-12)
    assert out["items"][4]["f"] == pytest.approx(expected.f[4], rel=1e-12)


def test_flags_choose_scheme_method_and_market() -> None:
    out = run_json("--scheme", "CC", "--formulas", "corrected", "--a", "3", "--alpha", "0.7")
    assert out["scheme"] == "CC" and out["formulas"] == "corrected"
    assert out["market"]["a"] == 3.0 and out["market"]["alpha"] == 0.7
    assert not out["feasibility"]["ic"] and out["workers_utility"] == 0.0
    out = run_json("--types", "25", "--method", "integer")
    assert len(out["items"]) == 25
    assert all(abs(item["c"] - round(item["c"])) < 1e-9 for item in out["items"])
    out = run_json("--method", "algorithm1", "--phi", "1e-5", "--scheme", "CS")
    assert out["method"] == "algorithm1" and out["scheme"] == "CS"


def test_config_file_market_and_flag_precedence(tmp_path: Path) -> None:
    config = tmp_path / "market.toml"
    config.write_text(
        "[market]\n"
        "t = 1.5\nworkers = 7\ngammas = [0.001, 0.004, 0.006]\n"
        "probs = [0.2, 0.3, 0.5]\nalpha = [0.3, 0.5, 0.7]\nc_max = 12\n"
        "[other]\nignored = true\n"
    )
    out = run_json("--config", str(config), "--a", "2")
    market = out["market"]
    assert market["t"] == 1.5 and market["workers"] == 7 and market["a"] == 2.0
    assert market["alpha"] == [0.3, 0.5, 0.7] and market["c_max"] == 12.0
    assert [item["q"] for item in out["items"]] == [0.2, 0.3, 0.5]
    # --types replaces the types, so a per-type alpha of the file no longer fits
    result = runner.invoke(app, ["contract", "--config", str(config), "--types", "4"])
    assert result.exit_code == 2 and "one per type" in result.stderr
    out = run_json("--config", str(config), "--types", "4", "--alpha", "0.4")
    assert len(out["items"]) == 4 and out["market"]["t"] == 1.5


def test_csv_holds_the_items(tmp_path: Path) -> None:
    target = tmp_path / "menu.csv"
    result = runner.invoke(app, ["contract", "--out", str(target)])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 10 and list(rows[0])[:3] == ["type", "gamma", "q"]
    expected = solve(Market.paper_default())
    assert float(rows[9]["reward"]) == pytest.approx(expected.reward[9], rel=1e-12)
    # --json and --out together: still exactly one JSON object on stdout
    result = runner.invoke(app, ["contract", "--json", "--out", str(target)])
    json.loads(result.stdout)


BAD_ARGS = [
    (["--scheme", "XX"], "--scheme must be one of CA, CC, CS"),
    (["--method", "grid"], "--method must be one of"),
    (["--formulas", "exact"], "--formulas must be one of"),
    (["--alpha", "1.7"], "'alpha'"),
    (["--a", "0.5"], "'a'"),
    (["--types", "0"], "number of types"),
    (["--phi", "1e-5"], "only to method='algorithm1'"),
    (["--method", "algorithm1", "--phi", "-1"], "must be a number > 0"),
    (["--config", "/nonexistent/market.toml"], "does not exist"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    target = tmp_path / "menu.csv"
    result = runner.invoke(app, ["contract", *args, "--out", str(target)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[market\nt = 2", "not valid TOML"),
        ("[task]\nrounds = 3\n", "no [market] table"),
        ("market = 3\n", "'market' must be a table"),
        ("[market]\nt = -1\ncolour = 'blue'\n", "'colour'"),
        ("[market]\nK = 1.0\nH = 1.0\n", "g <= 0"),
    ],
)
def test_bad_config_files(text: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = runner.invoke(app, ["contract", "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unwritable_out_is_refused_before_solving(tmp_path: Path) -> None:
    result = runner.invoke(app, ["contract", "--out", str(tmp_path / "missing" / "menu.csv")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = runner.invoke(app, ["contract", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_python_m_aoichain_contract_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aoichain", "contract", "--json", "--types", "3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out) == TOP_KEYS and len(out["items"]) == 3

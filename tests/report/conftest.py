"""Shared runs of `aoichain reproduce`: each computed once per test process and reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aoichain.cli import app
from aoichain.report.reproduce import ReproduceConfig, Reproduction, compute


def _cli(out: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    result = CliRunner().invoke(app, ["reproduce", "--out", str(out), "--json", *args])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run the command once with its defaults, as a user would: its folder and JSON output."""
    return _cli(tmp_path_factory.mktemp("reproduce") / "results")


@pytest.fixture(scope="session")
def cli_run_capped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The same with Table I's bound, ``--c-max 15``, under both closed forms."""
    return _cli(tmp_path_factory.mktemp("reproduce-capped") / "results", "--c-max", "15")


@pytest.fixture(scope="session")
def rep() -> Reproduction:
    """The default computation (no bound on c), with its c ≤ 15 variant."""
    return compute(ReproduceConfig())

"""The CLI starts instantly: ``--help`` imports no framework, each command imports its own.

Every check runs a fresh interpreter, since this test process has long since
imported everything. ``PYTHONPATH`` points it at the package under test, not
whichever copy happens to be installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import aoichain

# Imported only by the command that needs them, when it runs.
HEAVY = (
    "torch",
    "web3",
    "eth_tester",
    "matplotlib",
    "scipy",
    "aoichain.workflow",
    "aoichain.chain",
    "aoichain.fl",
    "aoichain.report",
    "aoichain.flower",
    "flwr",
)
SRC = str(Path(aoichain.__file__).resolve().parents[1])


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
    )


def _heavy(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_imports_no_framework() -> None:
    proc = _python("-c", "import sys, aoichain.cli; print('\\n'.join(sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert _heavy(proc.stdout.split()) == []


HELP = [
    ([], ["run", "compare", "contract", "reproduce", "chains", "keys", "verifier", "--version"]),
    (["run"], ["--config", "--rounds", "--workers", "--scheme", "--data", "--chains", "--seed"]),
    (["compare"], ["--config", "--out", "--rounds", "--workers", "--data", "--chains", "--json"]),
    (["contract"], ["--config", "--scheme", "--method", "--formulas", "--types", "--json"]),
    (["reproduce"], ["--out", "--formulas", "--json"]),
    (["chains"], ["up"]),
    (["chains", "up"], ["--out", "--committee-size", "--threshold", "--physical-subchains"]),
    (["keys", "new"], ["role", "--out", "--password-file"]),
    (["verifier"], ["--key", "--deployments", "--node", "--port", "--ready"]),
]


@pytest.mark.parametrize(("command", "flags"), HELP, ids=[" ".join(c) or "-" for c, _ in HELP])
def test_help_of_every_command_lists_its_options_and_imports_no_framework(
    command: list[str], flags: list[str]
) -> None:
    # -X importtime names every module imported, one per stderr line, last field.
    proc = _python("-X", "importtime", "-m", "aoichain", *command, "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in flags:
        assert flag in proc.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()]
    assert _heavy(imported) == []

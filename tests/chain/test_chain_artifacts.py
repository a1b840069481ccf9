"""The committed artifacts are what the sources compile to; the sources are documented."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import pytest

from aoichain.chain import artifacts
from aoichain.chain.compile import (
    COMPILER_VERSION,
    CONTRACTS,
    MODULES,
    REGENERATE,
    source_digests,
)
from aoichain.chain.compile import main as check_artifacts

EXTERNAL = re.compile(r"@external\n(?:@\w+\n)*def (\w+)\(.*?\).*?:\n(\s+\"\"\"(.*?)\"\"\")?", re.S)


def _committed(name: str) -> str:
    return (files("aoichain.chain") / "contracts" / f"{name}.json").read_text()


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifacts_name_the_compiler_and_the_sources_they_were_built_from(name: str) -> None:
    header = json.loads(_committed(name))["generated"]
    assert artifacts.load(name).compiler == header["compiler"] == f"vyper {COMPILER_VERSION}"
    assert header["regenerate"] == REGENERATE
    assert header["sources_sha256"] == source_digests(), f"sources changed: run `{REGENERATE}`"


@pytest.mark.slow
def test_artifacts_match_a_fresh_compilation(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_artifacts(["--check"]) == 0, capsys.readouterr().err


def test_the_check_names_an_artifact_that_drifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for file in (files("aoichain.chain") / "contracts").iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    relay = (tmp_path / "relay.vy").read_text()
    (tmp_path / "relay.vy").write_text(relay.replace('"relay: unknown chain"', '"relay: no chain"'))
    monkeypatch.setattr("aoichain.chain.compile.CONTRACTS_DIR", tmp_path)
    assert check_artifacts(["--check"]) == 1
    assert "relay.json" in capsys.readouterr().err


@pytest.mark.parametrize("name", CONTRACTS + MODULES)
def test_every_external_function_has_natspec(name: str) -> None:
    text = artifacts.source(name)
    found = EXTERNAL.findall(text)
    assert len(found) == text.count("@external")
    for fn, _, doc in found:
        assert "@notice" in doc, f"{name}.{fn} has no NatSpec @notice"


@pytest.mark.parametrize("name", CONTRACTS + MODULES)
def test_every_revert_reason_names_its_contract(name: str) -> None:
    reasons = re.findall(r'assert .*?, "([^"]*)"', artifacts.source(name))
    assert all(r.startswith(f"{name}: ") for r in reasons), [
        r for r in reasons if not r.startswith(f"{name}: ")
    ]

"""The committed artifacts are what the sources compile to; the sources are documented."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from aoichain.chain import artifacts
from aoichain.chain.compile import (
    COMPILER_VERSION,
    CONTRACTS,
    MODULES,
    REGENERATE,
    artifact_text,
    compile_contract,
    source_digests,
)

EXTERNAL = re.compile(r"@external\n(?:@\w+\n)*def (\w+)\(.*?\).*?:\n(\s+\"\"\"(.*?)\"\"\")?", re.S)


def _committed(name: str) -> str:
    return (files("aoichain.chain") / "contracts" / f"{name}.json").read_text()


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifacts_name_the_compiler_and_the_sources_they_were_built_from(name: str) -> None:
    header = json.loads(_committed(name))["generated"]
    assert artifacts.load(name).compiler == header["compiler"] == f"vyper {COMPILER_VERSION}"
    assert header["regenerate"] == REGENERATE
    assert header["sources_sha256"] == source_digests(), f"sources changed: run `{REGENERATE}`"


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifacts_match_a_fresh_compilation(name: str) -> None:
    assert _committed(name) == artifact_text(compile_contract(name)), f"run `{REGENERATE}`"


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

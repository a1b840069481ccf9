"""The package skeleton: layering, error wording, CLI shell."""

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from aoichain.cli import app
from aoichain.config import build_model, load_toml
from aoichain.errors import InvalidInput

SRC = Path(__file__).resolve().parents[1] / "src" / "aoichain"

# Which aoichain subpackages each layer may import (besides itself and the leaf modules).
ALLOWED = {
    "incentive": set(),
    "chain": set(),
    "fl": set(),
    "workflow": {"incentive", "chain", "fl"},
    "report": {"incentive", "chain", "fl", "workflow"},
    "flower": {"incentive", "chain", "fl", "workflow", "report"},
}
LEAVES = {"errors", "config", "jsonio", "__init__"}


def _imported_aoichain_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    parts = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            bits = name.split(".")
            if bits[0] == "aoichain" and len(bits) > 1:
                parts.add(bits[1])
    return parts


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_downward_only(layer: str) -> None:
    for file in (SRC / layer).rglob("*.py"):
        used = _imported_aoichain_parts(file) - {layer} - LEAVES
        assert used <= ALLOWED[layer], f"{file.relative_to(SRC)} imports {used - ALLOWED[layer]}"


def test_incentive_layer_imports_no_io_or_frameworks() -> None:
    forbidden = {"torch", "web3", "eth_tester", "matplotlib", "rich", "typer", "os", "pathlib"}
    for file in (SRC / "incentive").rglob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                tops = {node.module.split(".")[0]}
            else:
                continue
            assert not tops & forbidden, f"{file.name} imports {tops & forbidden}"


class _Demo(BaseModel):
    alpha: float = Field(ge=0, le=1)
    t: float = Field(gt=0)


def test_build_model_names_every_bad_key_and_the_source() -> None:
    with pytest.raises(InvalidInput) as info:
        build_model(_Demo, {"alpha": 1.7, "t": -1}, source="x.toml [market]")
    text = str(info.value)
    assert "'alpha'" in text and "'t'" in text and "x.toml [market]" in text and "1.7" in text


def test_load_toml_rejects_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[market\nt = 2")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_toml(bad)


def test_cli_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "aoichain" in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0

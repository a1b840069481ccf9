"""The compiled contracts, read from the package with :mod:`importlib.resources`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

CONTRACT_NAMES = ("main", "relay", "subchain")


@dataclass(frozen=True)
class Artifact:
    """ABI, deployment bytecode and storage layout of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    storage_layout: dict[str, Any]
    compiler: str

    def slot(self, variable: str) -> int:
        """The storage slot of a top-level variable (what eth_getProof is asked for)."""
        return int(self.storage_layout[variable]["slot"])


@cache
def load(name: str) -> Artifact:
    """The committed artifact of ``main``, ``relay`` or ``subchain``."""
    if name not in CONTRACT_NAMES:
        raise KeyError(f"no contract named {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    data = json.loads((files("aoichain.chain") / "contracts" / f"{name}.json").read_text())
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        storage_layout=data["storage_layout"],
        compiler=data["generated"]["compiler"],
    )


def source(name: str) -> str:
    """The Vyper source of a contract or module (``main``, ``quorum``, ...)."""
    return (files("aoichain.chain") / "contracts" / f"{name}.vy").read_text()

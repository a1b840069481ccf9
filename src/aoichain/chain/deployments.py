"""Reading the file the ``rpc`` backend attaches with.

Two shapes are accepted, as JSON or TOML (by suffix):

- a ``deployments.json`` as written by ``aoichain chains up`` or any run
  (see :meth:`aoichain.chain.Ledger.deployments`): chain ids, URLs,
  contract addresses; the ledger attaches to those contracts;
- a file with only URLs, e.g. ::

      [chains.M]
      rpc_url = "http://127.0.0.1:8545"
      [chains.R]
      rpc_url = "http://127.0.0.1:8546"
      [chains.P]
      rpc_url = "http://127.0.0.1:8547"
      [chains.V]
      rpc_url = "http://127.0.0.1:8548"

  (optional ``chain_id`` per chain); the ledger deploys the contracts.

Every problem is a :class:`~aoichain.chain.errors.ChainUnavailable` naming
the file, raised before any node is contacted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from aoichain.chain.config import CHAIN_KEYS
from aoichain.chain.errors import ChainUnavailable
from aoichain.config import describe_validation_error, load_toml
from aoichain.errors import InvalidInput

FORMAT = "aoichain-deployments/1"
#: Which contract each chain carries.
CONTRACT_OF = {"M": "main", "R": "relay", "P": "subchain", "V": "subchain"}


class ContractRef(BaseModel):
    """Where a contract lives (the ABI in the file is informative; the package's is used)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    address: str


class ChainEntry(BaseModel):
    """One chain of an RPC file."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    rpc_url: str
    chain_id: int | None = None
    contracts: dict[str, ContractRef] = {}


class RpcFile(BaseModel):
    """The chains an ``rpc`` ledger attaches to."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    chains: dict[str, ChainEntry]

    @model_validator(mode="after")
    def _four_chains(self) -> RpcFile:
        if sorted(self.chains) != sorted(CHAIN_KEYS):
            raise ValueError(f"chains must be exactly M, R, P and V; got {sorted(self.chains)}")
        with_addresses = [k for k, c in self.chains.items() if c.contracts]
        if with_addresses and len(with_addresses) != len(CHAIN_KEYS):
            raise ValueError(
                f"either every chain lists its contract or none does; only {with_addresses} do"
            )
        for key, chain in self.chains.items():
            if chain.contracts and CONTRACT_OF[key] not in chain.contracts:
                raise ValueError(f"chain {key} must list the {CONTRACT_OF[key]!r} contract")
        return self

    def addresses(self) -> dict[str, str] | None:
        """Contract address per chain, or None if the contracts are to be deployed."""
        if not self.chains["M"].contracts:
            return None
        return {k: c.contracts[CONTRACT_OF[k]].address for k, c in self.chains.items()}


def read_rpc_file(path: str | Path) -> RpcFile:
    """Read and validate an RPC / deployments file (JSON or TOML).

    Raises
    ------
    ChainUnavailable
        If the file is missing, unreadable, malformed, or lacks a chain.
    """
    file = Path(path)
    data: Any
    try:
        if file.suffix == ".toml":
            data = load_toml(file)
        else:
            if not file.is_file():
                raise ChainUnavailable(f"RPC file {str(file)!r} does not exist.")
            data = json.loads(file.read_text())
    except InvalidInput as exc:
        if isinstance(exc, ChainUnavailable):
            raise
        raise ChainUnavailable(str(exc)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChainUnavailable(f"RPC file {str(file)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ChainUnavailable(f"RPC file {str(file)!r} must hold a table/object with 'chains'.")
    try:
        return RpcFile.model_validate(data)
    except ValidationError as err:
        raise ChainUnavailable(describe_validation_error(err, "RpcFile", str(file))) from None

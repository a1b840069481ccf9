"""Deploying the contracts, and ``deployments.json``: the public record of a deployment.

A deployment is the chains (M, R, the subchains), their contracts, the relay
committee and every chain's validator set. Its record holds public data
only: chain ids, endpoint URLs, contract addresses and ABIs, the members'
and validators' addresses, and each verifier's own endpoints if it has any.
No seed, no key: the parties' keystores live in ``keys/`` beside it (see
:mod:`aoichain.chain.keys`), each readable by its owner only.

:func:`deploy` creates the contracts with the deployer's key and wires them:
the main chain registers every subchain as a source; the relay chain
registers M and every subchain with its validators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.config import SPACES, chain_name, space_of
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.keys import Signer
from aoichain.config import describe_validation_error, load_toml
from aoichain.errors import InvalidInput

FORMAT = "aoichain-deployments/2"


def contract_of(key: str) -> str:
    """Which contract a chain carries: ``main``, ``relay`` or ``subchain``."""
    return {"M": "main", "R": "relay"}.get(key, "subchain")


@dataclass(frozen=True)
class ChainRecord:
    """One chain of a deployment (public)."""

    key: str
    chain_id: int
    rpc_url: str | None
    contract: str
    validators: tuple[str, ...] = ()
    validator_threshold: int | None = None

    @property
    def name(self) -> str:
        """``main``, ``relay``, ``physical``, ``virtual-2``..."""
        return chain_name(self.key)


@dataclass(frozen=True)
class Deployment:
    """The public record of a deployment (``deployments.json``).

    Attributes
    ----------
    backend
        ``embedded``, ``anvil`` or ``rpc``.
    chains
        Every chain by key: ``M``, ``R``, then the subchains (``P``, ``V`` or
        ``P1``, ``P2``, ...).
    committee, threshold
        The relay committee's members and how many must sign a message.
    owner
        The deployer, owner of the registries on M and R.
    views
        Verifiers' own endpoints, ``{"committee-0": {"P": url}}``.
    """

    backend: str
    chains: dict[str, ChainRecord]
    committee: tuple[str, ...]
    threshold: int
    owner: str
    views: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def subchains(self) -> list[str]:
        """Keys of the subchains, physical first."""
        return [k for k in self.chains if k not in ("M", "R")]

    def subchains_of(self, space: str) -> list[str]:
        """Keys of the subchains of one space (``P`` or ``V``)."""
        return [k for k in self.subchains if space_of(k) == space]

    def key_of(self, chain_id: int) -> str:
        """The key of the chain with ``chain_id``."""
        for k, c in self.chains.items():
            if c.chain_id == chain_id:
                return k
        raise KeyError(f"no chain with id {chain_id} in this deployment")

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``deployments.json`` (public data only)."""
        return {
            "format": FORMAT,
            "backend": self.backend,
            "compiler": load("main").compiler,
            "owner": self.owner,
            "committee": {"members": list(self.committee), "threshold": self.threshold},
            "chains": {
                k: {
                    "name": c.name,
                    "chain_id": c.chain_id,
                    "rpc_url": c.rpc_url,
                    "contracts": {
                        contract_of(k): {"address": c.contract, "abi": load(contract_of(k)).abi}
                    },
                    "validators": list(c.validators),
                    "validator_threshold": c.validator_threshold,
                }
                for k, c in self.chains.items()
            },
            "views": self.views,
        }

    def write(self, path: str | Path) -> Path:
        """Write ``deployments.json`` atomically (readers never see half a file)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(target)
        return target


# ------------------------------------------------------------------------- reading


class _ContractRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    address: str


class _ChainEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    rpc_url: str
    chain_id: int | None = None
    contracts: dict[str, _ContractRef] = {}
    validators: list[str] = []
    validator_threshold: int | None = None


class _Committee(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    members: list[str]
    threshold: int


class RpcFile(BaseModel):
    """A deployments file (or a file of URLs only), as read."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    chains: dict[str, _ChainEntry]
    committee: _Committee | None = None
    owner: str | None = None
    views: dict[str, dict[str, str]] = {}

    @model_validator(mode="after")
    def _chains(self) -> RpcFile:
        keys = set(self.chains)
        if not {"M", "R"} <= keys or not any(k[0] in SPACES for k in keys - {"M", "R"}):
            raise ValueError(f"chains must include M, R and subchains; got {sorted(keys)}")
        bad = [
            k for k in keys - {"M", "R"} if k[0] not in SPACES or (not k[1:].isdigit() and k[1:])
        ]
        if bad:
            raise ValueError(f"subchain keys are P, V, P1, P2, ...; got {sorted(bad)}")
        listed = [k for k, c in self.chains.items() if c.contracts]
        if listed and len(listed) != len(keys):
            raise ValueError(
                f"either every chain lists its contract or none does; only {listed} do"
            )
        for key, chain in self.chains.items():
            if chain.contracts and contract_of(key) not in chain.contracts:
                raise ValueError(f"chain {key} must list the {contract_of(key)!r} contract")
        if listed and self.committee is None:
            raise ValueError("a deployments file with contracts must name its committee")
        return self

    @property
    def deployed(self) -> bool:
        """Whether the file names deployed contracts (else they are to be deployed)."""
        return bool(self.chains["M"].contracts)

    def subchain_counts(self) -> dict[str, int]:
        """Subchains per space the file lists."""
        keys = [k for k in self.chains if k not in ("M", "R")]
        return {s: sum(1 for k in keys if k[0] == s) for s in SPACES}


def read_rpc_file(path: str | Path) -> RpcFile:
    """Read and validate a deployments file or a file of URLs (JSON, or TOML by suffix).

    Raises
    ------
    ChainUnavailable
        If the file is missing, unreadable or malformed (naming the file).
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
    except ChainUnavailable:
        raise
    except InvalidInput as exc:
        raise ChainUnavailable(str(exc)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChainUnavailable(f"RPC file {str(file)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ChainUnavailable(f"RPC file {str(file)!r} must hold a table/object with 'chains'.")
    try:
        return RpcFile.model_validate(data)
    except ValidationError as err:
        raise ChainUnavailable(describe_validation_error(err, "RpcFile", str(file))) from None


# ------------------------------------------------------------------------ deploying


def deploy(
    clients: Mapping[str, ChainClient],
    deployer: Signer,
    committee: Sequence[str],
    threshold: int,
    validators: Mapping[str, Sequence[str]],
    validator_threshold: int,
) -> dict[str, str]:
    """Deploy every chain's contract and wire them; the contract address per chain key.

    ``clients`` has M, R and the subchains (keys ``P``/``V`` or ``P1``...);
    ``validators`` names each chain's validators (M and every subchain).
    """
    main_id = clients["M"].chain_id
    addresses = {
        "M": clients["M"].deploy(deployer, load("main"), list(committee), threshold),
        "R": clients["R"].deploy(deployer, load("relay"), list(committee), threshold),
    }
    subchains = [k for k in clients if k not in ("M", "R")]
    for key in subchains:
        addresses[key] = clients[key].deploy(
            deployer,
            load("subchain"),
            list(committee),
            threshold,
            main_id,
            addresses["M"],
            SPACES[space_of(key)],
        )
    main = clients["M"].contract(load("main"), addresses["M"])
    relay = clients["R"].contract(load("relay"), addresses["R"])
    for key in subchains:
        clients["M"].transact(
            deployer,
            main,
            "register_source",
            clients[key].chain_id,
            addresses[key],
            SPACES[space_of(key)],
            label=f"register_source {key}",
        )
    for key in ("M", *subchains):
        clients["R"].transact(
            deployer,
            relay,
            "register_chain",
            clients[key].chain_id,
            chain_name(key)[:16],
            list(validators[key]),
            validator_threshold,
            label=f"register_chain {key}",
        )
    return addresses


def record_of(
    backend: str,
    chain_ids: Mapping[str, int],
    urls: Mapping[str, str | None],
    addresses: Mapping[str, str],
    committee: Sequence[str],
    threshold: int,
    validators: Mapping[str, Sequence[str]],
    validator_threshold: int,
    owner: str,
    views: Mapping[str, Mapping[str, str]] | None = None,
) -> Deployment:
    """The public record of a deployment."""
    return Deployment(
        backend=backend,
        chains={
            k: ChainRecord(
                key=k,
                chain_id=chain_ids[k],
                rpc_url=urls[k],
                contract=addresses[k],
                validators=tuple(validators.get(k, ())),
                validator_threshold=validator_threshold if k != "R" else None,
            )
            for k in chain_ids
        },
        committee=tuple(committee),
        threshold=threshold,
        owner=owner,
        views={k: dict(v) for k, v in (views or {}).items()},
    )


def check_deployed(
    views: Mapping[str, Any], deployment: Deployment, members: Sequence[str], threshold: int
) -> None:
    """Check the contracts of a record exist and carry the record's committee and validators.

    Raises
    ------
    ChainUnavailable
        Naming the chain whose contract is missing or differs.
    """
    for key, record in deployment.chains.items():
        view = views[key]
        address = view.w3.to_checksum_address(record.contract)
        if not view.w3.eth.get_code(address):
            raise ChainUnavailable(f"{view.where}: no contract at {address}")
        contract = view.contract(load(contract_of(key)), address)
        try:
            deployed = list(view.call(contract, "members", 0))
            k = int(view.call(contract, "threshold", 0))
        except Exception as exc:
            raise ChainUnavailable(
                f"{view.where}: the contract at {address} is not aoichain's ({exc})"
            ) from None
        if deployed != list(members) or k != threshold:
            raise ChainUnavailable(
                f"{view.where}: the deployed relay committee ({k} of {len(deployed)}) is not the "
                f"one the deployments file names ({threshold} of {len(members)})"
            )
    relay_view = views["R"]
    relay = relay_view.contract(load("relay"), deployment.chains["R"].contract)
    for key, record in deployment.chains.items():
        if key == "R":
            continue
        registered = list(relay_view.call(relay, "members", record.chain_id))
        if registered != list(record.validators):
            raise ChainUnavailable(
                f"chain {key}: the validators registered on the relay chain are not those the "
                f"deployments file names"
            )

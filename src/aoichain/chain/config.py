"""The ledger's parameters, validated once at the boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The four chains, by key: main, relay, physical subchain, virtual subchain.
CHAIN_KEYS = ("M", "R", "P", "V")
CHAIN_NAMES = {"M": "main", "R": "relay", "P": "physical", "V": "virtual"}
#: Subchain keys and the ``space`` number the contracts use for them.
SPACES = {"P": 1, "V": 2}
DEFAULT_CHAIN_IDS = {"M": 31401, "R": 31402, "P": 31403, "V": 31404}
MAX_SET_SIZE = 32  # quorum.MAX_MEMBERS in the contracts


class LedgerConfig(BaseModel):
    """How to run the four chains and their relay committee.

    Parameters
    ----------
    backend
        ``"embedded"``: four in-process py-evm chains (no server);
        ``"anvil"``: four local anvil nodes started and stopped by the ledger;
        ``"rpc"``: nodes already running, listed in ``rpc_file``.
    rpc_file
        For ``"rpc"`` only: a ``deployments.json`` written by
        ``aoichain chains up`` (or any run), or a JSON/TOML file with
        ``[chains.M] rpc_url = "http://..."`` for each of M, R, P, V. If it
        holds no contract addresses the ledger deploys the contracts.
    committee_size, threshold
        The relay committee: ``n`` members, ``k`` signatures per message.
    subchain_validators, subchain_threshold
        Each chain's validator set (M, P and V): ``n`` validators, ``k``
        signatures per checkpoint accepted on the relay chain.
    key_seed
        Derives every key (deployer, publisher, aggregator, relayer,
        committee, validators, workers), so a seed names one set of accounts.
        Separate from a task's seed, so runs of any seed attach to nodes
        deployed by ``aoichain chains up``.
    chain_ids
        Chain ids for the chains the ledger starts (embedded, anvil); the
        ``rpc`` backend reads them from the nodes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["embedded", "anvil", "rpc"] = "embedded"
    rpc_file: Path | None = None
    committee_size: int = Field(5, ge=1, le=MAX_SET_SIZE)
    threshold: int = Field(3, ge=1, le=MAX_SET_SIZE)
    subchain_validators: int = Field(3, ge=1, le=MAX_SET_SIZE)
    subchain_threshold: int = Field(2, ge=1, le=MAX_SET_SIZE)
    key_seed: int = Field(0, ge=0)
    chain_ids: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_CHAIN_IDS))

    @model_validator(mode="after")
    def _consistent(self) -> LedgerConfig:
        if self.threshold > self.committee_size:
            raise ValueError(
                f"threshold must be at most committee_size ({self.committee_size}); "
                f"got {self.threshold}"
            )
        if self.subchain_threshold > self.subchain_validators:
            raise ValueError(
                f"subchain_threshold must be at most subchain_validators "
                f"({self.subchain_validators}); got {self.subchain_threshold}"
            )
        if self.backend == "rpc" and self.rpc_file is None:
            raise ValueError("the 'rpc' backend needs rpc_file (a deployments.json or TOML)")
        if self.backend != "rpc" and self.rpc_file is not None:
            raise ValueError(f"rpc_file is only read by the 'rpc' backend, not {self.backend!r}")
        if sorted(self.chain_ids) != sorted(CHAIN_KEYS):
            raise ValueError(
                f"chain_ids must name exactly M, R, P and V; got {sorted(self.chain_ids)}"
            )
        ids = list(self.chain_ids.values())
        if len(set(ids)) != len(ids) or min(ids) <= 0:
            raise ValueError(f"chain_ids must be distinct positive integers; got {self.chain_ids}")
        return self


class TaskSpec(BaseModel):
    """A task as the publisher posts it on the main chain (validated before any transaction).

    Frequencies and accuracies go on chain as integers in 1e-6 units, rewards
    in wei per round; the escrow is ``max_workers * max(reward) * rounds``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_spec_hash: bytes = Field(min_length=32, max_length=32)
    rounds: int = Field(ge=1, le=2**32)
    target_accuracy: float = Field(ge=0.0, le=1.0)
    menu_f: list[float] = Field(min_length=1, max_length=16)
    menu_reward_wei_per_round: list[int] = Field(min_length=1, max_length=16)
    max_workers: int = Field(ge=1, le=256)

    @model_validator(mode="after")
    def _menu(self) -> TaskSpec:
        if len(self.menu_f) != len(self.menu_reward_wei_per_round):
            raise ValueError(
                f"menu_f and menu_reward_wei_per_round must have the same length; got "
                f"{len(self.menu_f)} and {len(self.menu_reward_wei_per_round)}"
            )
        if any(not (f * 1e6 >= 0.5) or f != f or f == float("inf") for f in self.menu_f):
            raise ValueError(f"every menu_f must be a finite frequency >= 1e-6; got {self.menu_f}")
        if any(r < 0 or r >= 2**200 for r in self.menu_reward_wei_per_round):
            raise ValueError(
                "every reward must be a non-negative number of wei; got "
                f"{self.menu_reward_wei_per_round}"
            )
        return self

    @property
    def escrow_wei(self) -> int:
        """The budget escrowed at publication: ``max_workers * max(reward) * rounds``."""
        return self.max_workers * max(self.menu_reward_wei_per_round) * self.rounds

    @property
    def menu_f_micro(self) -> list[int]:
        """Frequencies as on chain (1e-6 units)."""
        return [round(f * 1_000_000) for f in self.menu_f]

    @property
    def target_accuracy_ppm(self) -> int:
        """Target accuracy as on chain (parts per million)."""
        return round(self.target_accuracy * 1_000_000)

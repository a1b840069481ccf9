"""The chains' parameters, validated once at the boundary.

A deployment has one main chain ``M``, one relay chain ``R`` and subchains
of two spaces: physical ``P`` and virtual ``V`` (the paper's hierarchy
allows several of each; one of each by default). Subchain keys are ``P``
and ``V`` when a space has one subchain, ``P1, P2, ...`` when it has more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The two spaces and the ``space`` number the contracts use for them.
SPACES = {"P": 1, "V": 2}
SPACE_NAMES = {"P": "physical", "V": "virtual"}
#: Chain id of M; R, then the subchains (P first), take the following ids.
FIRST_CHAIN_ID = 31401
MAX_SET_SIZE = 32  # quorum.MAX_MEMBERS in the contracts
#: Subchains per space a deployment may have.
MAX_SUBCHAINS = 16
#: Seconds a party waits by default for a node that stopped answering.
OUTAGE_S = 15.0


def subchain_keys(subchains: dict[str, int]) -> list[str]:
    """Keys of the subchains, P's first: ``["P", "V"]`` or ``["P1", "P2", "V1"]``."""
    keys = []
    for space in SPACES:
        n = subchains.get(space, 0)
        keys += [space] if n == 1 else [f"{space}{i + 1}" for i in range(n)]
    return keys


def space_of(key: str) -> str:
    """``"P"`` or ``"V"`` for a subchain key (``"P2"`` -> ``"P"``)."""
    return key[0]


def chain_name(key: str) -> str:
    """A readable name: ``main``, ``relay``, ``physical``, ``virtual-2``..."""
    if key == "M":
        return "main"
    if key == "R":
        return "relay"
    name = SPACE_NAMES[space_of(key)]
    return f"{name}-{key[1:]}" if len(key) > 1 else name


class ChainConfig(BaseModel):
    """How to run the chains, their relay committee and their validators.

    Parameters
    ----------
    backend
        ``"auto"`` (the default): ``anvil`` when its binary is installed
        (``npm ci``), else ``embedded``. The backend changes no result of a
        run (models, payments and gas are the same on every backend), only
        its speed: anvil executes a transaction in well under a millisecond,
        py-evm in process in 10-30 ms.
        ``"embedded"``: in-process py-evm chains (no server);
        ``"anvil"``: local anvil nodes started and stopped with the run;
        ``"rpc"``: nodes already running, listed in ``rpc_file``.
    rpc_file
        For ``"rpc"`` only: a ``deployments.json`` written by ``aoichain
        chains up`` (its parties' keystores are in ``keys/`` beside it), or a
        JSON/TOML file with ``[chains.M] rpc_url = "http://..."`` for M, R
        and each subchain, whose contracts the run then deploys.
    committee_size, threshold
        The relay committee: ``n`` members, ``k`` signatures per message.
    subchain_validators, subchain_threshold
        Each chain's validator set (M and every subchain): ``n`` validators,
        ``k`` signatures per checkpoint accepted on the relay chain.
    subchains
        Subchains per space, e.g. ``{"P": 2, "V": 2}``; worker ``i`` of a
        space lives on subchain ``i mod n`` of that space, so a node's twin
        lives on the virtual subchain paired with its node's.
    key_seed
        **Insecure, embedded backend only**: derives every party's key from
        this seed (reproducible addresses for tests and examples). Node
        backends give every party a fresh random key in a keystore file.
    password_file
        Where node backends read the keystore password (default: the
        ``AOICHAIN_KEY_PASSWORD`` environment variable; empty is allowed on
        loopback with a warning).
    views
        Each verifier's own endpoints: ``{"committee-0": {"P": url, ...},
        "validator-P-1": {"P": url}}``; a verifier reads every chain not
        listed through the chain's default URL.
    outage_s
        Seconds a party waits for a node that stopped answering (node
        backends) before it gives up with ``ChainDown``: a node that
        ``aoichain chains up`` restarts is back well within the default.
        0 gives up at once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["auto", "embedded", "anvil", "rpc"] = "auto"
    rpc_file: Path | None = None
    committee_size: int = Field(5, ge=1, le=MAX_SET_SIZE)
    threshold: int = Field(3, ge=1, le=MAX_SET_SIZE)
    subchain_validators: int = Field(3, ge=1, le=MAX_SET_SIZE)
    subchain_threshold: int = Field(2, ge=1, le=MAX_SET_SIZE)
    subchains: dict[str, int] = Field(default_factory=lambda: {"P": 1, "V": 1})
    key_seed: int = Field(0, ge=0)
    password_file: Path | None = None
    views: dict[str, dict[str, str]] = Field(default_factory=dict)
    outage_s: float = Field(OUTAGE_S, ge=0.0, le=3600.0)

    @field_validator("subchains")
    @classmethod
    def _subchains(cls, value: dict[str, int]) -> dict[str, int]:
        if set(value) != set(SPACES):
            raise ValueError(f"must name exactly P and V; got {sorted(value)}")
        if any(not 1 <= n <= MAX_SUBCHAINS for n in value.values()):
            raise ValueError(f"each space needs 1 to {MAX_SUBCHAINS} subchains; got {value}")
        return {k: value[k] for k in SPACES}

    @model_validator(mode="after")
    def _consistent(self) -> ChainConfig:
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
        return self

    def resolved(self) -> ChainConfig:
        """This config with ``"auto"`` resolved: ``anvil`` if installed, else ``embedded``."""
        if self.backend != "auto":
            return self
        from aoichain.chain.errors import ChainUnavailable
        from aoichain.chain.nodes import find_anvil

        try:
            find_anvil()
        except ChainUnavailable:
            return self.model_copy(update={"backend": "embedded"})
        return self.model_copy(update={"backend": "anvil"})

    @property
    def chain_keys(self) -> list[str]:
        """Every chain: ``M``, ``R``, then the subchains."""
        return ["M", "R", *subchain_keys(self.subchains)]

    @property
    def chain_ids(self) -> dict[str, int]:
        """Chain ids of the chains a backend starts: consecutive from 31401."""
        return {k: FIRST_CHAIN_ID + i for i, k in enumerate(self.chain_keys)}


class TaskSpec(BaseModel):
    """A task as the publisher posts it on the main chain (validated before any transaction).

    Frequencies and accuracies go on chain as integers in 1e-6 units, rewards
    in wei per round; the escrow is ``max_workers * max(reward) * rounds``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_spec_hash: bytes = Field(min_length=32, max_length=32)
    rounds: int = Field(ge=1, le=10_000)
    target_accuracy: float = Field(ge=0.0, le=1.0)
    menu_f: list[float] = Field(min_length=1, max_length=16)
    menu_reward_wei_per_round: list[int] = Field(min_length=1, max_length=16)
    menu_max_samples: list[int] = Field(min_length=1, max_length=16)
    max_workers: int = Field(ge=1, le=50_000)

    @model_validator(mode="after")
    def _menu(self) -> TaskSpec:
        n = len(self.menu_f)
        if len(self.menu_reward_wei_per_round) != n or len(self.menu_max_samples) != n:
            raise ValueError(
                f"menu_f, menu_reward_wei_per_round and menu_max_samples must have the same "
                f"length; got {n}, {len(self.menu_reward_wei_per_round)} and "
                f"{len(self.menu_max_samples)}"
            )
        if any(not (f * 1e6 >= 0.5) or f != f or f == float("inf") for f in self.menu_f):
            raise ValueError(f"every menu_f must be a finite frequency >= 1e-6; got {self.menu_f}")
        if any(r < 0 or r >= 2**200 for r in self.menu_reward_wei_per_round):
            raise ValueError(
                "every reward must be a non-negative number of wei; got "
                f"{self.menu_reward_wei_per_round}"
            )
        if any(c < 1 or c >= 2**64 for c in self.menu_max_samples):
            raise ValueError(f"every sample cap must be at least 1; got {self.menu_max_samples}")
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

    @property
    def stride(self) -> int:
        """Worker indices per menu item: ``max_workers`` rounded up to whole 256-bit words."""
        return -(-self.max_workers // 256) * 256

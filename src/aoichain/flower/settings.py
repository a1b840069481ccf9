"""A worker's private settings (its SuperNode's ``--node-config``) and the ServerApp's.

A worker's settings never leave its machine: its keystore, its chain nodes,
its data, its privacy policy, and the private facts of the paper's model (its
type, the menu item it chose, the phase of its update cycle). They live in a
TOML file given to ``flower-supernode --node-config FILE``; Flower flattens it
into ``context.node_config`` (``aoichain.key``, ``aoichain.data.seed``...),
which only that SuperNode's ClientApp sees, never the SuperLink. Flower's node
config holds scalars only, so the privacy policy and the generator's
overrides are JSON strings.

:func:`worker_settings` derives a worker's settings from a run config exactly
as the in-process engine draws them (:func:`aoichain.workflow.prepare`), so a
local federation reproduces an in-process run bit for bit; ``aoichain flower
node-config`` writes them for one worker.

The ServerApp's settings (:class:`ServerSettings`) are paths on the
publisher's host, passed as Flower's run config: no secret goes there (the
SuperLink stores the run config and shows it to anyone with CLI access);
the keystores are read with ``$AOICHAIN_KEY_PASSWORD`` or a password file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aoichain.config import describe_validation_error
from aoichain.errors import InvalidInput

if TYPE_CHECKING:
    from aoichain.chain import Deployment
    from aoichain.workflow import ConfiguredFaults, Prepared
    from aoichain.workflow.byzantine import ByzantineSettings

#: The table every aoichain key of a node config sits in.
PREFIX = "aoichain"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkerData(_Frozen):
    """Where a worker's sensor stream comes from: stream ``stream`` of a data source.

    The fields are those of :class:`aoichain.workflow.StreamRequest` (``time_scale``
    0 for unset, ``generator`` a JSON object of the generator's overrides).
    """

    source: str = "generator"
    stream: int = Field(ge=0)
    nodes: int = Field(ge=1)
    seed: int = Field(ge=0)
    slots: int = Field(ge=1)
    slot_s: float = Field(gt=0)
    records_per_slot: int = Field(ge=1)
    time_scale: float = Field(default=0.0, ge=0)
    folder: str = ""
    generator: str = "{}"
    augment_seed: int = Field(
        default=-1, description="V: seed of the data generated in the virtual space; -1: none."
    )
    holdout: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the stream held out for evaluation."
    )
    holdout_block: int = Field(default=32, ge=1, description="Records per held-out block.")


#: A Byzantine worker's strengths, each of its own attack only, and their defaults: those of
#: ``[faults] byzantine`` (:class:`~aoichain.workflow.byzantine.ByzantineSettings`, not
#: imported here: it brings torch into every ClientApp message).
_STRENGTH = {"sign_flip": "sign_flip_scale", "scale": "scale_factor", "noise": "noise_std"}
_DEFAULT = {"sign_flip_scale": 1.0, "scale_factor": 10.0, "noise_std": 1.0}


def _strength(key: str, what: str) -> Any:
    return Field(default=_DEFAULT[key], gt=0, allow_inf_nan=False, description=what)


class WorkerFaults(_Frozen):
    """Misbehaviour on purpose, to watch the aggregator refuse or survive it.

    ``byzantine`` makes the worker an attacker (see :mod:`aoichain.workflow.byzantine`):
    every round it poisons its data or its update as ``[faults] byzantine`` does in
    process, and still signs a valid record of what it sends.
    """

    tamper_reply_round: int = Field(
        default=-1,
        description=(
            "In this round the worker records its update's hash but replies with other "
            "bytes (the last byte flipped); -1: never."
        ),
    )
    byzantine: Literal["", "sign_flip", "scale", "noise", "label_flip"] = Field(
        default="",
        description="The attack it mounts every round (empty: none).",
    )
    sign_flip_scale: float = _strength("sign_flip_scale", "s of sign_flip (model - s delta).")
    scale_factor: float = _strength("scale_factor", "lambda of scale (model + lambda delta).")
    noise_std: float = _strength("noise_std", "sigma of noise (on every weight).")

    @model_validator(mode="after")
    def _strength_of_its_attack(self) -> WorkerFaults:
        for attack, key in _STRENGTH.items():
            if attack != self.byzantine and getattr(self, key) != _DEFAULT[key]:
                raise ValueError(
                    f"{key} applies to byzantine = {attack!r} only, not to {self.byzantine!r}"
                )
        return self

    def attack(self) -> ByzantineSettings | None:
        """The worker's attack, as ``[faults] byzantine`` states one; None if honest."""
        from aoichain.workflow.byzantine import ByzantineSettings

        if not self.byzantine:
            return None
        strengths = {key: getattr(self, key) for key in _STRENGTH.values()}
        return ByzantineSettings(workers=1, attack=self.byzantine, **strengths)

    def injector(self, seed: int, index: int) -> ConfiguredFaults:
        """The in-process fault injector of this worker (index ``index``) in a run seeded
        ``seed``: what it poisons is what the in-process engine's attacker poisons."""
        from aoichain.workflow import ConfiguredFaults

        attack = self.attack()
        return ConfiguredFaults(
            seed=seed,
            byzantine=attack,
            byzantine_workers=frozenset({index}) if attack else frozenset(),
        )

    @classmethod
    def of_run(cls, prepared: Prepared, index: int) -> dict[str, Any]:
        """The faults keys of worker ``index`` of a run whose ``[faults] byzantine`` picks
        it as an attacker (the attack and its strengths); empty otherwise."""
        from aoichain.workflow import ConfiguredFaults

        faults = prepared.plugins.faults
        if not isinstance(faults, ConfiguredFaults) or faults.byzantine is None:
            return {}
        if index not in faults.byzantine_workers:
            return {}
        attack = faults.byzantine
        return {"byzantine": attack.attack, **{k: getattr(attack, k) for k in _STRENGTH.values()}}


class WorkerSettings(_Frozen):
    """Everything one worker's ClientApp needs, private to its SuperNode."""

    key: str = Field(min_length=1, description="Its keystore file.")
    password_file: str = Field(default="", description="Empty: $AOICHAIN_KEY_PASSWORD.")
    deployments: str = Field(min_length=1, description="The public deployments.json.")
    space: Literal["P", "V"]
    node: int = Field(ge=0, description="The IIoT node it is (P) or mirrors (V).")
    subchain: str = Field(min_length=1)
    chains: dict[str, str] = Field(
        default_factory=dict,
        description="Its own node URL of M and of its subchain (default: the file's).",
    )
    type: int = Field(ge=0, description="Its private type (0-based).")
    gamma: float = Field(gt=0, description="1 / its unit cost.")
    item: int = Field(ge=-1, description="The menu item it chose (-1: none).")
    phase: int = Field(ge=0, description="The slot one of its update cycles starts at.")
    privacy: str = Field(default="{}", description="Its node's PrivacyPolicy as JSON.")
    data: WorkerData
    faults: WorkerFaults = WorkerFaults()
    cache: str = Field(
        default="", description="A folder for what it may keep between messages (its streams)."
    )

    @property
    def label(self) -> str:
        """``P0``, ``V3``..."""
        return f"{self.space}{self.node}"

    def generator(self) -> dict[str, Any]:
        """The data source's generator overrides."""
        return dict(json.loads(self.data.generator))


def settings_from_node_config(node_config: Mapping[str, Any]) -> WorkerSettings:
    """A worker's settings from Flower's flattened ``context.node_config``.

    Raises
    ------
    InvalidInput
        Naming every bad or missing key.
    """
    nested: dict[str, Any] = {}
    for flat, value in node_config.items():
        head, *rest = str(flat).split(".")
        if head != PREFIX or not rest:
            continue
        here = nested
        for part in rest[:-1]:
            here = here.setdefault(part, {})
        here[rest[-1]] = value
    try:
        return WorkerSettings.model_validate(nested)
    except ValidationError as err:
        raise InvalidInput(
            describe_validation_error(err, "WorkerSettings", "the SuperNode's node config")
        ) from None


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def node_config_toml(settings: WorkerSettings) -> str:
    """The node config file of a worker (give it to ``flower-supernode --node-config``)."""
    data = settings.model_dump(mode="json")
    lines = [
        f"# aoichain worker {settings.label}: private to its SuperNode, never sent anywhere",
        f"[{PREFIX}]",
    ]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines += [f"{k} = {_toml_scalar(v)}" for k, v in data.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{PREFIX}.{name}]"]
        lines += [f"{k} = {_toml_scalar(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_node_config(path: str | Path, settings: WorkerSettings) -> Path:
    """Write a worker's node config file (readable by its owner only: it names its key)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(node_config_toml(settings))
    target.chmod(0o600)
    return target


def worker_settings(
    prepared: Prepared,
    deployment: Deployment,
    space: str,
    node: int,
    *,
    key: str | Path,
    deployments: str | Path,
    password_file: str | Path | None = None,
    chains: Mapping[str, str] | None = None,
    faults: WorkerFaults | None = None,
    cache: str | Path | None = None,
) -> WorkerSettings:
    """The settings of worker ``space``/``node`` of a prepared run, as the in-process engine
    draws them: its type, item and phase, its node's stream and privacy policy, its
    subchain (worker ``i`` of a space lives on that space's subchain ``i mod n``), and,
    if the run's ``[faults] byzantine`` picks it, its attack (unless ``faults`` names
    one).

    Raises
    ------
    InvalidInput
        If there is no such worker.
    """
    from aoichain.workflow.run import stream_request

    config = prepared.config
    n = config.workers.physical
    if space not in ("P", "V") or not 0 <= node < n:
        raise InvalidInput(
            f"There is no worker {space}{node}: the run has IIoT nodes 0 to {n - 1}, "
            f"spaces P and V."
        )
    worker = prepared.workers[node if space == "P" else n + node]
    given = faults or WorkerFaults()
    if not given.byzantine:  # the attackers [faults] byzantine picks attack from their node
        attack = WorkerFaults.of_run(prepared, worker.index)
        if attack:
            given = WorkerFaults(**{**given.model_dump(), **attack})
    request = stream_request(config, prepared.warmup_slots)
    mine = deployment.subchains_of(space)
    augment = config.task.seed + node if space == "V" and config.workers.virtual_augment else -1
    return WorkerSettings(
        key=str(key),
        password_file=str(password_file or ""),
        deployments=str(deployments),
        space=space,
        node=node,
        subchain=mine[node % len(mine)],
        chains=dict(chains or {}),
        type=worker.type_index,
        gamma=worker.gamma,
        item=worker.item,
        phase=worker.phase,
        privacy=prepared.policies[node].model_dump_json(),
        data=WorkerData(
            source=config.data.source,
            stream=node,
            nodes=request.nodes,
            seed=request.seed,
            slots=request.slots,
            slot_s=request.slot_s,
            records_per_slot=request.records_per_slot,
            time_scale=request.time_scale or 0.0,
            folder=request.folder or "",
            generator=json.dumps(dict(request.generator)),
            augment_seed=augment,
            holdout=config.data.holdout,
            holdout_block=config.data.holdout_block,
        ),
        faults=given,
        cache=str(cache or ""),
    )


class ServerSettings(_Frozen):
    """The ServerApp's settings: paths on the publisher's host (Flower's run config).

    Keys in the run config are kebab-case, as Flower's (``run-dir``,
    ``publisher-key``...).
    """

    run_dir: str = Field(min_length=1, description="The run folder it writes.")
    config: str = Field(min_length=1, description="The run's resolved config (TOML).")
    deployments: str = Field(min_length=1)
    publisher_key: str = Field(min_length=1)
    relayer_key: str = Field(min_length=1)
    verifiers: str = Field(min_length=1, description="Where each verifier listens (JSON).")
    password_file: str = ""
    nodes: int = Field(ge=2, description="SuperNodes to wait for: every worker's.")
    wait_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Longest wait for the SuperNodes to connect; then the run goes on with those "
            "connected (a worker missing is left out)."
        ),
    )
    reply_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Longest wait for one step's replies: a worker that has not answered by then "
            "missed the round (Flower reports a SuperNode that stopped sooner, when it "
            "misses its heartbeats)."
        ),
    )
    resume: bool = Field(default=False, description="Continue the task of run_dir's journal.")

    def run_config(self) -> dict[str, Any]:
        """As Flower's run config (kebab-case keys)."""
        return {k.replace("_", "-"): v for k, v in self.model_dump().items()}

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> ServerSettings:
        """From Flower's ``context.run_config``.

        Raises
        ------
        InvalidInput
            Naming every bad or missing key.
        """
        values = {str(k).replace("-", "_"): v for k, v in run_config.items()}
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise InvalidInput(
                describe_validation_error(err, "ServerSettings", "the Flower run config")
            ) from None

"""The run's configuration: one TOML file, every value with a default.

``aoichain run`` alone works offline: embedded chains, the built-in stream
generator, the paper's market. Every table is validated once, here, into
frozen pydantic models (``[market]`` into a :class:`~aoichain.incentive.Market`,
``[chain]`` into the ledger's own :class:`~aoichain.chain.LedgerConfig`); the
rest of the workflow takes the plain values. All errors of a file are
reported at once, naming the file and the key. Plug-in names (a built-in or
a dotted path ``"package.module:name"``, see :mod:`aoichain.workflow.plugins`)
are imported and checked here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aoichain.chain import ChainConfig
from aoichain.config import describe_validation_error, load_toml
from aoichain.errors import InvalidInput
from aoichain.fl import AGGREGATION_RULES, TARGET_METRICS, ModelSpec, TrainConfig, get_rule
from aoichain.fl.aggregation import largest_krum_f
from aoichain.fl.metrics import TargetMetric
from aoichain.incentive import Market, equal_types
from aoichain.workflow.byzantine import ByzantineSettings
from aoichain.workflow.faults import FAULT_KIND
from aoichain.workflow.plugins import (
    AGGREGATION_KIND,
    Kind,
    build_plugin,
    is_dotted,
    load_dotted,
)
from aoichain.workflow.schemes import BUILTIN_SCHEMES, SCHEME_KIND
from aoichain.workflow.sources import BUILTIN_SOURCES, SOURCE_KIND

#: Most IIoT nodes a run may have: each has a twin, and a task admits at most
#: 50,000 workers (``main.vy``'s MAX_WORKERS).
MAX_PHYSICAL = 25_000


def _plugin_name(value: str, kind: Kind, builtins: Mapping[str, object] | tuple[str, ...]) -> str:
    """Check a plug-in name: a built-in, or a dotted path that imports and has the right shape."""
    if not is_dotted(value):
        if value not in builtins:
            raise ValueError(
                f"must be one of {', '.join(builtins)} or a dotted path 'package.module:name'"
            )
        return value
    try:
        build_plugin(load_dotted(value, kind.key), kind, value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetSettings(_Frozen):
    """When the task stops early: a metric of the held-out evaluation and its value.

    The target counts only when the evaluation set holds enough windows of
    each class to judge (``[data] eval_min_windows``) and the metric beats
    the best constant predictor on that set (:func:`aoichain.fl.judge_target`).
    On the main chain the task posts ``value`` (in ppm, as its
    ``target_accuracy_ppm``): the target value of whichever metric is named here.
    """

    metric: TargetMetric = Field(default="f1", description=f"One of {', '.join(TARGET_METRICS)}.")
    value: float = Field(default=0.9, gt=0, le=1, description="Stop once the metric reaches it.")


class TaskSettings(_Frozen):
    """What the publisher asks for and how the run is driven."""

    rounds: int = Field(default=20, ge=1, le=10_000, description="Round limit.")
    target: TargetSettings = Field(
        default_factory=TargetSettings,
        description="Stop once the held-out metric reaches its value (and beats chance).",
    )
    scheme: str = Field(
        default="CA",
        description="Incentive scheme: CA, CC, CS, flat, or a plug-in 'package.module:name'.",
    )
    contract_method: Literal["exact", "algorithm1", "integer"] = Field(
        default="integer",
        description="Contract solver; 'integer' gives whole collection slots (the slot clock).",
    )
    flat_c: int | None = Field(
        default=None,
        ge=1,
        description=(
            "With scheme 'flat': impose the single item's collection slots instead of the "
            "best one (a controlled freshness experiment)."
        ),
    )
    seed: int = Field(default=0, ge=0, description="Seeds types, data, phases and training.")
    deadline_s: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Round deadline, simulated seconds after the request: a worker whose latency is "
            "longer misses the round (the round closes with whoever delivered). None: no deadline."
        ),
    )
    min_updates: int = Field(
        default=1,
        ge=1,
        description=(
            "Fewest attested updates a round needs: below it the round is retried once "
            "(the missing workers are asked again), then the task stops, settled."
        ),
    )
    wei_per_reward_unit: int = Field(
        default=10**15, ge=1, description="Wei paid per unit of contract reward per second."
    )

    @field_validator("scheme")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _plugin_name(value, SCHEME_KIND, BUILTIN_SCHEMES)

    @model_validator(mode="before")
    @classmethod
    def _older_target(cls, data: Any) -> Any:
        """``target_accuracy = x``, the older spelling of ``target = { metric = "accuracy",
        value = x }`` (give one or the other)."""
        if isinstance(data, Mapping) and "target_accuracy" in data:
            if "target" in data:
                raise ValueError("give 'target' or the older 'target_accuracy', not both")
            rest = {k: v for k, v in data.items() if k != "target_accuracy"}
            return {**rest, "target": {"metric": "accuracy", "value": data["target_accuracy"]}}
        return data

    @property
    def target_accuracy(self) -> float:
        """The target's value, as the task posts it on M (``TaskSpec.target_accuracy``,
        in ppm there): the value of whichever metric ``target`` names."""
        return self.target.value


class WorkerSettings(_Frozen):
    """The IIoT nodes of the physical space; each has one virtual twin."""

    physical: int = Field(
        default=10,
        ge=1,
        le=MAX_PHYSICAL,
        description="IIoT nodes (= virtual twins); a task admits at most 50,000 workers.",
    )
    virtual_augment: bool = Field(
        default=True, description="Twins add data generated in the virtual space."
    )


class DataSettings(_Frozen):
    """Where the sensor streams come from and how simulated time maps onto them."""

    source: str = Field(
        default="generator",
        description="generator, folder, or a plug-in 'package.module:name'.",
    )
    folder: str | None = Field(default=None, description="A folder of SKAB-format CSV streams.")
    time_scale: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Stream seconds per simulated second. Unset: chosen so that one slot spans "
            "about `records_per_slot` records (1 for the generator's 50 Hz streams, "
            "25 for SKAB's 1 Hz ones), less if the run would outlast the shortest stream."
        ),
    )
    records_per_slot: int = Field(default=50, ge=1)
    cache: Literal["window", "fixed"] = Field(
        default="window",
        description=(
            "A worker's cache: 'window' holds what its last collection phase sensed (c slots: "
            "freshness and size move together); 'fixed' holds the last `cache_slots` slots "
            "up to the end of that phase (size fixed, only freshness moves)."
        ),
    )
    cache_slots: float = Field(default=5.0, gt=0, description="Slots a 'fixed' cache spans.")
    holdout: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of every stream held out for evaluation (no worker trains on it).",
    )
    holdout_block: int = Field(
        default=32, ge=1, description="Records per held-out block (at least the model window)."
    )
    eval_slots: float = Field(
        default=10.0,
        gt=0,
        description=(
            "The global model is evaluated on the held-out windows of the last this-many "
            "slots of every stream (topped up per stream to hold both classes)."
        ),
    )
    eval_min_windows: int = Field(
        default=10,
        ge=1,
        description=(
            "Fewest anomalous and normal evaluation windows needed to judge the target "
            "(fewer: the round says so and the run goes on)."
        ),
    )
    generator: dict[str, Any] = Field(
        default_factory=dict, description="Overrides for the built-in generator."
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _plugin_name(value, SOURCE_KIND, BUILTIN_SOURCES)

    @model_validator(mode="after")
    def _folder_given(self) -> DataSettings:
        if self.source == "folder" and not self.folder:
            raise ValueError("source = 'folder' needs a 'folder' path")
        return self


class SatisfactionSettings(_Frozen):
    """Where the publisher's satisfaction ``G`` comes from (TOML: keys of ``[market]``).

    ``paper``: eqs. (11)-(12) with the market's ``beta, K, H, alpha``.
    ``learned``: before publishing, a short pilot (off-chain, the run's own
    streams and clock, one flat item per ``pilot_c``) measures the target
    metric against AoI; ``G = accuracy_value * fit(AoI)`` with the fit in the
    paper's concave family (:func:`aoichain.incentive.fit_satisfaction`).
    """

    satisfaction: Literal["paper", "learned"] = "paper"
    accuracy_value: float = Field(
        default=100.0,
        gt=0,
        description="Reward units per second that one unit of the target metric is worth.",
    )
    pilot_rounds: int = Field(default=6, ge=1, le=1000, description="Rounds of each pilot run.")
    pilot_c: tuple[int, ...] = Field(
        default=(1, 3, 6, 10, 15), min_length=2, description="Collection slots the pilot tries."
    )

    @field_validator("pilot_c")
    @classmethod
    def _distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) < 2 or min(value) < 1:
            raise ValueError("must hold at least two distinct whole numbers >= 1")
        return tuple(sorted(set(value)))


#: The ``[market]`` keys that choose the satisfaction (not the paper's market).
SATISFACTION_KEYS = tuple(SatisfactionSettings.model_fields)


class NodePrivacy(_Frozen):
    """The privacy policy of one IIoT node (by index), overriding the default."""

    node: int = Field(ge=0)
    sensitive_columns: tuple[str, ...] = ()
    sensitive_windows: tuple[tuple[float, float], ...] = ()
    sensitive_rules: tuple[dict[str, Any], ...] = ()


class PrivacySettings(_Frozen):
    """What each node keeps to itself; its twin sees only the rest."""

    sensitive_columns: tuple[str, ...] = ()
    sensitive_windows: tuple[tuple[float, float], ...] = ()
    sensitive_rules: tuple[dict[str, Any], ...] = ()
    nodes: tuple[NodePrivacy, ...] = ()


def _default(model: type[BaseModel], name: str) -> Any:
    """The default of ``model.name``: one place holds each tuned number."""
    return model.model_fields[name].default


class TrainSettings(_Frozen):
    """The model and local training (defaults: those of :mod:`aoichain.fl`), and aggregation."""

    window: int = Field(default=_default(ModelSpec, "window"), ge=2, le=512)
    hidden: int = Field(default=_default(ModelSpec, "hidden"), ge=1, le=512)
    epochs: int = Field(default=_default(TrainConfig, "epochs"), ge=1, le=100)
    batch_size: int = Field(default=_default(TrainConfig, "batch_size"), ge=1, le=4096)
    lr: float = Field(default=_default(TrainConfig, "lr"), gt=0, le=10)
    momentum: float = Field(default=_default(TrainConfig, "momentum"), ge=0, lt=1)
    max_windows: int = Field(
        default=256, ge=8, description="Windows a worker samples from its cache per round."
    )
    batched: bool = Field(
        default=True,
        description=(
            "Train a round's workers in one vectorised pass (aoichain.fl.train_batch: the same "
            "bytes as one by one, faster); false trains them one by one (train_local)."
        ),
    )
    aggregation: str = Field(
        default="fedavg",
        description=(
            "fedavg, median, trimmed_mean, norm_clip, krum, multi_krum, or a plug-in "
            "'package.module:name'."
        ),
    )
    aggregation_options: dict[str, int | float] = Field(
        default_factory=dict,
        description=(
            "Options of a built-in rule: trim (trimmed_mean), bound (norm_clip), "
            "f (krum, multi_krum), m (multi_krum)."
        ),
    )

    @field_validator("aggregation")
    @classmethod
    def _aggregation(cls, value: str) -> str:
        return _plugin_name(value, AGGREGATION_KIND, AGGREGATION_RULES)

    @model_validator(mode="after")
    def _rule_options(self) -> TrainSettings:
        if self.aggregation_options:
            if is_dotted(self.aggregation):
                raise ValueError(
                    "aggregation_options are options of a built-in rule; a plug-in rule "
                    "takes its settings itself (e.g. from a zero-argument factory)"
                )
            try:
                get_rule(self.aggregation, **self.aggregation_options)
            except InvalidInput as exc:
                raise ValueError(f"aggregation_options: {exc}") from None
        return self


class FaultSettings(_Frozen):
    """Faults injected on purpose, to watch the ledger reject them or the run survive them."""

    tamper_blob: tuple[int, int] | None = Field(
        default=None, description="(round, worker): that worker's stored blob is altered."
    )
    lying_relayer: int | None = Field(
        default=None, ge=0, description="Round in which one relayer forwards a false payload."
    )
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Probability that a worker misses a round (seeded; the retry draws anew).",
    )
    byzantine: ByzantineSettings | None = Field(
        default=None,
        description=(
            "Byzantine workers: { workers = K, attack = 'sign_flip' | 'scale' | 'noise' | "
            "'label_flip' } and the attack's strength (sign_flip_scale, scale_factor, noise_std)."
        ),
    )
    injector: str | None = Field(
        default=None,
        description="A plug-in FaultInjector 'package.module:name' (replaces the keys above).",
    )

    @field_validator("injector")
    @classmethod
    def _injector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_dotted(value):
            raise ValueError("must be a dotted path 'package.module:name'")
        return _plugin_name(value, FAULT_KIND, ())


class RunConfig(_Frozen):
    """Everything one federated run needs. Every value has a default."""

    task: TaskSettings = TaskSettings()
    market: Market = Field(
        default_factory=lambda: Market(),
        description=(
            "The paper's market with the [market] table's overrides (keys as in `aoichain "
            "contract`, plus `types = N` for N equally spaced types); `workers` is twice "
            "the IIoT nodes. The paper's closed forms are the default: with whole slots "
            "(c <= 15) the corrected forms put every type at c = 15, and the menu no "
            "longer tells types apart."
        ),
    )
    satisfaction: SatisfactionSettings = Field(
        default_factory=SatisfactionSettings,
        description="Written under [market] in TOML (satisfaction = 'paper' | 'learned', ...).",
    )
    workers: WorkerSettings = WorkerSettings()
    data: DataSettings = DataSettings()
    privacy: PrivacySettings = PrivacySettings()
    train: TrainSettings = TrainSettings()
    chain: ChainConfig = ChainConfig()
    faults: FaultSettings = FaultSettings()

    @model_validator(mode="before")
    @classmethod
    def _market_of_the_run(cls, data: Any) -> Any:
        """Fill ``[market]``: ``types = N`` and M = twice the IIoT nodes (unless stated)."""
        if not isinstance(data, Mapping) or isinstance(data.get("market"), Market):
            return data
        table = data.get("market", {})
        if not isinstance(table, Mapping):
            return data
        market = dict(table)
        chosen = {k: market.pop(k) for k in SATISFACTION_KEYS if k in market}
        if chosen:
            try:
                data = {**data, "satisfaction": SatisfactionSettings.model_validate(chosen)}
            except ValidationError as err:
                first = err.errors()[0]
                key = ".".join(str(x) for x in first["loc"])
                raise ValueError(
                    f"market.{key}: {first['msg']} (got {first.get('input')!r})"
                ) from None
        if "types" in market:
            try:
                market["gammas"], market["probs"] = equal_types(market.pop("types"))
            except InvalidInput as exc:
                raise ValueError(f"market.types: {exc}") from None
        workers = data.get("workers", {})
        physical = _default(WorkerSettings, "physical")
        if isinstance(workers, Mapping):
            physical = workers.get("physical", physical)
        if isinstance(physical, int) and "workers" not in market:
            market["workers"] = 2 * physical
        return {**data, "market": market}

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        m = self.market.workers
        if m != 2 * self.workers.physical:
            raise ValueError(
                f"market.workers ({m}) must equal twice workers.physical "
                f"({2 * self.workers.physical}): each IIoT node has one virtual twin"
            )
        for node in self.privacy.nodes:
            if node.node >= self.workers.physical:
                raise ValueError(
                    f"privacy.nodes names node {node.node}, but there are only "
                    f"{self.workers.physical} nodes"
                )
        if self.data.holdout_block < self.train.window:
            raise ValueError(
                f"data.holdout_block ({self.data.holdout_block}) must be at least "
                f"train.window ({self.train.window}), or no held-out window fits in a block"
            )
        f = self.train.aggregation_options.get("f")
        if self.train.aggregation in ("krum", "multi_krum") and f is not None:
            most = largest_krum_f(self.n_workers)
            if f > most:
                raise ValueError(
                    f"train.aggregation_options.f = {f} is more Byzantine workers than "
                    f"{self.train.aggregation} tolerates among {self.n_workers} workers "
                    f"(at most {most}: 2 f + 3 <= workers)"
                )
        byzantine = self.faults.byzantine
        if byzantine is not None and byzantine.workers > self.n_workers:
            raise ValueError(
                f"faults.byzantine.workers ({byzantine.workers}) must be at most the number of "
                f"workers ({self.n_workers}: workers.physical and their twins)"
            )
        if self.faults.tamper_blob is not None:
            r, w = self.faults.tamper_blob
            if not 0 <= w < 2 * self.workers.physical or r < 0:
                raise ValueError("faults.tamper_blob must name a valid (round, worker)")
        return self

    @property
    def n_workers(self) -> int:
        """All workers: physical nodes and their twins."""
        return 2 * self.workers.physical

    def with_absolute_paths(self) -> RunConfig:
        """This config with its file paths absolute, so a run folder's copy works from anywhere."""
        chain, data = self.chain, self.data
        files = {
            k: Path(v).resolve() for k in ("rpc_file", "password_file") if (v := getattr(chain, k))
        }
        folder = {"folder": str(Path(data.folder).resolve())} if data.folder else {}
        return self.model_copy(
            update={"chain": chain.model_copy(update=files), "data": data.model_copy(update=folder)}
        )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_run_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Read a run config from TOML (optional) and apply overrides (e.g. CLI flags).

    Parameters
    ----------
    path : str or Path, optional
        A TOML file with any of the tables ``[task] [market] [workers] [data]
        [privacy] [train] [chain] [faults]``; missing values take defaults.
    overrides : dict, optional
        Nested values that win over the file, e.g. ``{"task": {"rounds": 5}}``.

    Raises
    ------
    InvalidInput
        Naming the file, every bad key and its rule.
    """
    values: dict[str, Any] = {}
    source = "the run config"
    if path is not None:
        values = load_toml(path)
        source = str(path)
    values = _merge(values, overrides or {})
    try:
        return RunConfig.model_validate(values)
    except ValidationError as err:
        raise InvalidInput(describe_validation_error(err, "RunConfig", source)) from None


def config_to_toml(config: RunConfig) -> str:
    """Render a resolved config as TOML, so a run folder records what ran."""
    lines: list[str] = []
    data = config.model_dump(mode="json")
    data["market"].update(data.pop("satisfaction"))
    for table, values in data.items():
        scalars = {k: v for k, v in values.items() if not _is_table_list(v)}
        lines.append(f"[{table}]")
        for key, value in scalars.items():
            if value is None:
                continue
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        lines.append("")
        for key, value in values.items():
            if _is_table_list(value):
                for item in value:
                    lines.append(f"[[{table}.{key}]]")
                    for k, v in item.items():
                        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
                    lines.append("")
    return "\n".join(lines)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else f'"{key}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot write {value!r} as TOML")

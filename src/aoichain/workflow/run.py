"""``run_task``: the whole federated task from a config, and its run folder.

Order matters for the promise "bad input ends before anything is written on
a chain or on disk": the config is validated, the streams read, the privacy
policies checked against the streams' columns, the contract solved and the
chains reached (:class:`aoichain.chain.ChainUnavailable` for a bad URL)
before the run folder is created or a transaction is sent.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from aoichain.chain import ChainOutageWarning, ChainRewound, Network, TaskSpec
from aoichain.config import build_model, describe_validation_error
from aoichain.errors import InvalidInput, Outage
from aoichain.fl import (
    AGGREGATION_RULES,
    AggregationRule,
    HeldOut,
    ModelSpec,
    ModelStore,
    PrivacyPolicy,
    SensorStream,
    fit_normaliser,
    get_rule,
    holdout_split,
    twin_view,
)
from aoichain.incentive import DEFAULT_C_MAX_INTEGER, Contract, LearnedSatisfaction, Market
from aoichain.workflow.byzantine import choose_byzantine
from aoichain.workflow.config import RunConfig, config_to_toml
from aoichain.workflow.faults import FAULT_KIND, ConfiguredFaults, FaultInjector
from aoichain.workflow.journal import Journal, check_resumable
from aoichain.workflow.outputs import write_run_folder
from aoichain.workflow.plugins import AGGREGATION_KIND, describe, resolve
from aoichain.workflow.schemes import SCHEME_KIND, Scheme, builtin_schemes
from aoichain.workflow.sources import (
    BUILTIN_SOURCES,
    SOURCE_KIND,
    DataSource,
    StreamRequest,
    time_scale,
)
from aoichain.workflow.steps import Plugins, Prepared, RoundMetrics, TaskOutcome
from aoichain.workflow.summary import RunSummary
from aoichain.workflow.task import FederatedTask, RunInterrupted
from aoichain.workflow.workers import build_workers

#: How often one run starts over from its journal when a node comes back from an older state.
REJOINS = 3


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_task` returns; the same facts are in the run folder."""

    prepared: Prepared
    outcome: TaskOutcome
    out_dir: Path
    deployments: dict[str, Any]
    receipts: list[dict[str, Any]]
    summary: RunSummary

    @property
    def rounds(self) -> list[RoundMetrics]:
        """Per-round metrics."""
        return self.outcome.rounds


def warmup_slots_for(contract: Contract, market: Market) -> int:
    """Slots before round 0, so that even the longest cycle has sensed a full cache."""
    finite = np.asarray(contract.c)[np.isfinite(contract.c)]
    return math.ceil(float(finite.max()) + float(market.a)) + 1


def resolve_plugins(
    config: RunConfig,
    *,
    aggregation: AggregationRule | None = None,
    scheme: Scheme | None = None,
    source: DataSource | None = None,
    faults: FaultInjector | None = None,
) -> Plugins:
    """The run's plug-ins: objects given here win over the names in ``config``.

    Names are built-ins or dotted paths ``"package.module:name"`` (see
    :mod:`aoichain.workflow.plugins`); what ran is recorded by name (or, for an
    object, by its dotted path).
    """
    f = config.faults
    attackers = choose_byzantine(
        config.n_workers, f.byzantine.workers if f.byzantine else 0, config.task.seed
    )
    names = {
        "aggregation": config.train.aggregation,
        "scheme": config.task.scheme,
        "source": config.data.source,
        "faults": f.injector or "configured",
    }
    given = {"aggregation": aggregation, "scheme": scheme, "source": source, "faults": faults}
    names.update({k: describe(obj) for k, obj in given.items() if obj is not None})
    options = config.train.aggregation_options
    rules = {name: functools.partial(get_rule, name, **options) for name in AGGREGATION_RULES}
    return Plugins(
        aggregation=aggregation or resolve(names["aggregation"], AGGREGATION_KIND, rules),
        scheme=scheme or resolve(names["scheme"], SCHEME_KIND, builtin_schemes(config.task.flat_c)),
        source=source or resolve(names["source"], SOURCE_KIND, BUILTIN_SOURCES),
        faults=faults
        or resolve(
            names["faults"],
            FAULT_KIND,
            {
                "configured": lambda: ConfiguredFaults(
                    f.tamper_blob,
                    f.lying_relayer,
                    f.dropout,
                    config.task.seed,
                    byzantine=f.byzantine,
                    byzantine_workers=attackers,
                )
            },
        ),
        names=names,
    )


def stream_request(config: RunConfig, warmup_slots: int) -> StreamRequest:
    """What the run asks its data source for.

    The slots of the warm-up and the rounds, and a warm-up's worth more: a
    request waits up to one cycle (shorter than the warm-up) to be served, and
    the round's model is judged once its last request was served.
    """
    return StreamRequest(
        nodes=config.workers.physical,
        seed=config.task.seed,
        slots=2 * warmup_slots + config.task.rounds,
        slot_s=float(config.market.t),
        records_per_slot=config.data.records_per_slot,
        time_scale=config.data.time_scale,
        folder=config.data.folder,
        generator=config.data.generator,
    )


def load_streams(
    config: RunConfig, source: DataSource, request: StreamRequest
) -> list[SensorStream]:
    """One stream per physical node from the run's data source, checked.

    Raises
    ------
    InvalidInput
        If the source gives the wrong number of streams or streams whose
        sensor columns differ.
    """
    nodes = request.nodes
    streams = list(source(request))
    if len(streams) != nodes or not all(isinstance(s, SensorStream) for s in streams):
        raise InvalidInput(
            f"The data source {config.data.source!r} must return {nodes} SensorStreams "
            f"(one per IIoT node). Got {len(streams)} objects instead."
        )
    if any(s.columns != streams[0].columns for s in streams):
        raise InvalidInput("all streams must have the same sensor columns")
    return streams


def build_policies(config: RunConfig, streams: list[SensorStream]) -> list[PrivacyPolicy]:
    """Each node's privacy policy (the default, or its own), checked against its columns."""
    p = config.privacy
    default = {
        "sensitive_columns": p.sensitive_columns,
        "sensitive_windows": p.sensitive_windows,
        "sensitive_rules": p.sensitive_rules,
    }
    own = {n.node: n for n in p.nodes}
    policies = []
    for i, stream in enumerate(streams):
        values = dict(default)
        if i in own:
            values = {
                "sensitive_columns": own[i].sensitive_columns,
                "sensitive_windows": own[i].sensitive_windows,
                "sensitive_rules": own[i].sensitive_rules,
            }
        try:
            policy = PrivacyPolicy.model_validate(values)
        except ValidationError as err:
            where = f"[privacy] (node {i})"
            raise InvalidInput(describe_validation_error(err, "PrivacyPolicy", where)) from None
        policy.check_columns(stream.columns)
        policies.append(policy)
    return policies


def solve_contract(market: Market, scheme: Scheme, method: str) -> Contract:
    """The menu the publisher offers: the scheme's, checked to be one item per type."""
    contract = scheme(market, method)
    if not isinstance(contract, Contract) or len(contract.f) != market.n_types:
        raise InvalidInput(
            f"The scheme must return an aoichain.incentive.Contract with one item per type "
            f"({market.n_types}). Got {type(contract).__name__} instead."
        )
    return contract


def longest_collection(config: RunConfig, contract: Contract) -> float:
    """The longest collection phase (slots) any menu of this config may have.

    ``[market] c_max``, or the integer method's 15, or the flat item imposed,
    and never less than the menu's own; without any bound (a continuous
    method and no ``c_max``) the menu's own. It sets the warm-up, and so the
    streams' length, so that every scheme of a seed gets the same streams.

    Raises
    ------
    InvalidInput
        A learned satisfaction without a bound (the pilot runs before the menu exists).
    """
    market, learned = config.market, config.satisfaction
    own = np.asarray(contract.c)[np.isfinite(contract.c)]
    bound = market.c_max
    if bound is None and config.task.contract_method == "integer":
        bound = DEFAULT_C_MAX_INTEGER
    if bound is None:
        if learned.satisfaction == "learned":
            raise InvalidInput(
                "The 'market.satisfaction' parameter of RunConfig: 'learned' needs a bound on "
                "the collection phase: set [market] c_max, or use [task] contract_method = "
                "'integer'."
            )
        return float(own.max())
    longest = max(float(bound), float(own.max()), float(config.task.flat_c or 0))
    if learned.satisfaction == "learned":
        longest = max(longest, *map(float, learned.pilot_c))
    return longest


def prepare(config: RunConfig, plugins: Plugins | None = None) -> Prepared:
    """Validate and compute everything that needs no chain and writes nothing.

    Every stream is split into what the workers hold and a held-out part
    only the evaluation reads (``[data] holdout``). With ``[market]
    satisfaction = "learned"`` a pilot (:func:`aoichain.workflow.pilot.learn_satisfaction`)
    fits ``G`` first and the scheme solves the contract in the fitted market.
    """
    plugins = plugins or resolve_plugins(config)
    market = config.market
    contract = solve_contract(market, plugins.scheme, config.task.contract_method)
    learning = config.satisfaction.satisfaction == "learned"
    longest = longest_collection(config, contract)
    warmup = math.ceil(longest + float(market.a)) + 1
    request = stream_request(config, warmup)
    streams = load_streams(config, plugins.source, request)
    policies = build_policies(config, streams)
    stream_scale = time_scale(
        request,
        float(np.median([s.period for s in streams])),
        stream_s=min(float(s.times[-1]) for s in streams),
    )
    splits = [
        holdout_split(
            s,
            fraction=config.data.holdout,
            block=config.data.holdout_block,
            seed=config.task.seed * 1_000_003 + i,
        )
        for i, s in enumerate(streams)
    ]
    training = [kept for kept, _ in splits]
    held_out = HeldOut.of([held for _, held in splits], config.train.window)
    start = warmup * float(market.t) * stream_scale
    visible = [twin_view(s, pol).until(start) for s, pol in zip(training, policies, strict=True)]
    center, scale = fit_normaliser(visible)
    spec = ModelSpec(
        n_sensors=streams[0].n_sensors,
        window=config.train.window,
        hidden=config.train.hidden,
        center=center,
        scale=scale,
    )

    def assemble(contract: Contract, learned: LearnedSatisfaction | None) -> Prepared:
        solved_in = learned.market if learned is not None else market
        workers = build_workers(
            plugins.scheme,
            solved_in,
            contract,
            training,
            policies,
            seed=config.task.seed,
            virtual_augment=config.workers.virtual_augment,
        )
        task = build_model(
            TaskSpec,
            {
                "model_spec_hash": spec.sha256(),
                "rounds": config.task.rounds,
                # The target value of the metric [task] target names, whichever it is.
                "target_accuracy": config.task.target.value,
                "menu_f": [float(f) for f in contract.f],
                "menu_reward_wei_per_round": reward_wei_per_round(config, solved_in, contract),
                "menu_max_samples": sample_caps(config, contract, streams, stream_scale),
                "max_workers": len(workers),
            },
            source="the task to post on the main chain",
        )
        return Prepared(
            config=config,
            plugins=plugins,
            contract=contract,
            streams=streams,
            policies=policies,
            workers=workers,
            spec=spec,
            time_scale=stream_scale,
            warmup_slots=warmup,
            task=task,
            held_out=held_out,
            learned=learned,
        )

    if not learning:
        return assemble(contract, None)
    from aoichain.workflow.pilot import learn_satisfaction

    learned = learn_satisfaction(assemble(contract, None))
    return assemble(
        solve_contract(learned.market, plugins.scheme, config.task.contract_method), learned
    )


def sample_caps(
    config: RunConfig, contract: Contract, streams: Sequence[SensorStream], time_scale: float
) -> list[int]:
    """Most samples (windows) an update of each menu item can have been trained on.

    An item's cache spans its ``c`` collection slots; a worker holds at most
    two streams (a twin: its view and the virtual data), each cut into at
    most ``max_windows // streams`` windows. The subchain refuses a record
    that claims more, so no worker can inflate its FedAvg weight.
    """
    spacing = min(float(np.min(np.diff(s.times), initial=np.inf)) for s in streams)
    spacing = spacing if np.isfinite(spacing) and spacing > 0 else 1e-9
    max_windows = config.train.max_windows
    caps = []
    fixed = config.data.cache == "fixed"
    for c in np.asarray(contract.c, dtype=float):
        slots = config.data.cache_slots if fixed else float(c)
        span = slots * float(config.market.t) * time_scale if np.isfinite(slots) else 0.0
        records = math.floor(span / spacing) + 1
        windows = max(1, records - config.train.window + 1)
        caps.append(int(min(max_windows, 2 * windows)))
    return caps


def reward_wei_per_round(config: RunConfig, market: Market, contract: Contract) -> list[int]:
    """Each item's reward for one round (one slot of ``t`` seconds), in wei.

    The contract's ``R`` is a rate, like the cost ``f / gamma`` it compensates
    (eq. 10), so one round of ``t`` seconds earns ``R t`` reward units.
    """
    unit = config.task.wei_per_reward_unit
    return [round(float(r) * float(market.t) * unit) for r in contract.reward]


def _play(
    config: RunConfig,
    out: Path,
    prepared: Prepared,
    chains: AbstractContextManager[Network],
    journal: Journal,
    task_cls: type[FederatedTask],
    on_round: Callable[[RoundMetrics], None] | None,
    status: Callable[[str], None],
    *,
    resume: bool,
) -> tuple[TaskOutcome, dict[str, Any]]:
    """Play (or resume) the task on ``chains``; its outcome and the deployment's JSON.

    Raises
    ------
    RunInterrupted
        A node of chains that outlive the run (``rpc``) went down past the wait,
        or came back without blocks the run saw (its ``__cause__`` says which).
    """
    with chains as network:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            journal.clear()
            (out / "config.toml").write_text(config_to_toml(config.with_absolute_paths()))
        store = ModelStore(out / "store")
        status("resuming the task" if resume else "publishing the task")
        task = task_cls(prepared, network, store, on_round=on_round, journal=journal)
        try:
            outcome = task.run()
        except Outage as exc:
            if config.chain.backend != "rpc":
                raise
            raise RunInterrupted(
                f"{exc}; the task waits in {out}: once the node is back, "
                f"'aoichain run --resume {out}' finishes it, 'aoichain recover {out}' settles it"
            ) from exc
        finally:
            journal.receipts(network.receipts)
        return outcome, network.deployment.to_json()


def run_task(
    config: RunConfig,
    out_dir: str | Path,
    on_round: Callable[[RoundMetrics], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    network: Network | None = None,
    *,
    task_cls: type[FederatedTask] = FederatedTask,
    aggregation: AggregationRule | None = None,
    scheme: Scheme | None = None,
    source: DataSource | None = None,
    faults: FaultInjector | None = None,
    resume: bool = False,
) -> RunResult:
    """Run one federated task end to end and write its run folder.

    The run writes its journal (:mod:`aoichain.workflow.journal`) to the
    folder as it goes; with ``resume`` it continues the task that journal
    holds, on the same chains with the same parties' keys, and finishes it
    (use :func:`resume_run` to resume from the folder alone).

    Parameters
    ----------
    config : RunConfig
        From :func:`aoichain.workflow.load_run_config`.
    out_dir : str or Path
        The run folder (created; existing files in it are replaced).
    on_round : callable, optional
        Receives each round's metrics as it ends (progress display).
    on_status : callable, optional
        Receives a short line at each stage (setting up, deploying, paying).
    network : Network, optional
        Chains and parties that already run (e.g. to inspect them after the
        run, or to run several tasks on one deployment). It must have
        ``workers.physical`` workers in each space. By default the run starts
        its own from ``config.chain`` and stops it at the end; on chains that
        outlive the run (``rpc``) the new parties' keystores go to ``out_dir/keys``.
    task_cls : type, optional
        The task class whose :meth:`~FederatedTask.run` drives the run: a
        subclass of :class:`FederatedTask` overriding any of its steps.
    aggregation, scheme, source, faults : optional
        Plug-ins that win over the config's names (see
        :mod:`aoichain.workflow.plugins`): an aggregation rule, an incentive
        scheme (menu builder), a data source, a fault injector.
    resume : bool
        Continue the task of the journal in ``out_dir`` (``rpc`` chains only:
        chains a run started itself die with it).

    Raises
    ------
    InvalidInput
        Bad config values, plug-ins, data or chain URLs; raised before anything is written.
    RunAborted
        A round failed after the task was published; the task was settled.
    RunInterrupted
        A node of chains that outlive the run went down past the wait; the
        task waits in the journal (resume or recover it). A node that comes
        back without blocks the run saw (restarted from an older state) is no
        interruption: the run warns (``ChainOutageWarning``) and resumes from
        its journal, up to ``REJOINS`` times.
    """
    status = on_status or (lambda _msg: None)
    status("solving the contract and reading the streams")
    plugins = resolve_plugins(
        config, aggregation=aggregation, scheme=scheme, source=source, faults=faults
    )
    prepared = prepare(config, plugins)
    chain = config.chain.resolved()
    status(f"starting the {chain.backend} chains")
    out = Path(out_dir)
    n = config.workers.physical
    # The run's own parties (publisher, workers) keep their keys only where the chains
    # outlive the run: embedded chains and anvil nodes started here die with it.
    keys_dir = out / "keys" if config.chain.backend == "rpc" and network is None else None
    journal = Journal(out)
    if resume:
        check_resumable(out, config.chain.backend, network is not None)
    elif keys_dir is not None and keys_dir.exists() and any(keys_dir.iterdir()):
        raise InvalidInput(
            f"{keys_dir} holds the keys of an earlier run (their tasks may still owe or hold "
            f"money): resume it (--resume {out}), settle it (aoichain recover {out}), or "
            f"choose another --out"
        )
    for rejoin in range(REJOINS + 1):
        chains: AbstractContextManager[Network] = (
            nullcontext(network)
            if network is not None
            else Network.start(chain, workers={"P": n, "V": n}, keys_dir=keys_dir, run_keys=resume)
        )
        try:
            outcome, deployments = _play(
                config, out, prepared, chains, journal, task_cls, on_round, status, resume=resume
            )
            break
        except RunInterrupted as exc:
            # A node back from an older state: what the run saw of it is gone, so the run
            # starts over from its journal on fresh connections, as --resume would.
            if (
                network is not None
                or rejoin == REJOINS
                or not isinstance(exc.__cause__, ChainRewound)
            ):
                raise
            warnings.warn(
                f"{exc.__cause__}: resuming the task from its journal",
                ChainOutageWarning,
                stacklevel=2,
            )
            resume = True
    receipts = journal.written_receipts()
    summary = write_run_folder(out, prepared, outcome, deployments, receipts)
    return RunResult(
        prepared=prepared,
        outcome=outcome,
        out_dir=out,
        deployments=deployments,
        receipts=receipts,
        summary=summary,
    )

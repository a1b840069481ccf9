"""``run_task``: the whole federated task from a config, and its run folder.

Order matters for the promise "bad input ends before anything is written on
a chain or on disk": the config is validated, the streams read, the privacy
policies checked against the streams' columns, the contract solved and the
chains reached (:class:`aoichain.chain.ChainUnavailable` for a bad URL)
before the run folder is created or a transaction is sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from aoichain.chain import Ledger, LedgerConfig, TaskSpec
from aoichain.config import build_model, describe_validation_error
from aoichain.errors import InvalidInput
from aoichain.fl import (
    GeneratorConfig,
    ModelSpec,
    ModelStore,
    PrivacyPolicy,
    SensorStream,
    fit_normaliser,
    generate_streams,
    read_stream_folder,
    twin_view,
)
from aoichain.incentive import Contract, Market, equal_types, solve
from aoichain.incentive.flat import flat_contract
from aoichain.workflow.config import RunConfig
from aoichain.workflow.outputs import write_run_folder
from aoichain.workflow.task import FederatedTask, Prepared, RoundMetrics, TaskOutcome
from aoichain.workflow.workers import Worker, build_workers


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_task` returns; the same facts are in the run folder."""

    prepared: Prepared
    outcome: TaskOutcome
    out_dir: Path
    deployments: dict[str, Any]
    receipts: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def rounds(self) -> list[RoundMetrics]:
        """Per-round metrics."""
        return self.outcome.rounds


def time_scale_for(
    config: RunConfig,
    period_s: float,
    t: float,
    stream_s: float = math.inf,
    slots: int = 1,
) -> float:
    """Stream seconds per simulated second.

    As configured; otherwise ``records_per_slot`` records a slot, shrunk if
    needed so that ``slots`` slots fit in the shortest stream (``stream_s``
    seconds): a run past the end of its data would train on a frozen cache.
    """
    if config.data.time_scale is not None:
        return config.data.time_scale
    wanted = max(1.0, config.data.records_per_slot * period_s / t)
    return min(wanted, stream_s / (slots * t))


def warmup_slots_for(contract: Contract, market: Market) -> int:
    """Slots before round 0, so that even the longest cycle has sensed a full cache."""
    finite = np.asarray(contract.c)[np.isfinite(contract.c)]
    return math.ceil(float(finite.max()) + float(market.a)) + 1


def load_streams(config: RunConfig, market: Market, warmup_slots: int) -> list[SensorStream]:
    """One stream per physical node: the generator's, or a folder's files round-robin.

    Generated streams are made just long enough for the run (warm-up, rounds
    and the evaluation span), unless the config sets ``duration_s``.
    """
    nodes = config.workers.physical
    if config.data.source == "folder":
        found = read_stream_folder(config.data.folder or "")
        return [found[i % len(found)] for i in range(nodes)]
    try:
        gen = GeneratorConfig.model_validate(
            {"n_streams": nodes, "seed": config.task.seed, **config.data.generator}
        )
    except ValidationError as err:
        raise InvalidInput(
            describe_validation_error(err, "GeneratorConfig", "[data.generator]")
        ) from None
    if "duration_s" not in config.data.generator:
        t = float(market.t)
        scale = time_scale_for(config, gen.period_s, t)
        slots = warmup_slots + config.task.rounds + 2
        gen = gen.model_copy(update={"duration_s": slots * t * scale})
    return generate_streams(gen)


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


def solve_contract(config: RunConfig) -> tuple[Market, Contract]:
    """The market of the run (M = 2 x nodes) and the menu the publisher offers."""
    values = Market.paper_default().model_dump()
    overrides = dict(config.market)
    if "types" in overrides:
        values["gammas"], values["probs"] = equal_types(overrides.pop("types"))
    values.update(overrides, workers=config.n_workers)
    market = Market.from_mapping(values, source="[market]")
    method = config.task.contract_method
    if config.task.scheme == "flat":
        return market, flat_contract(market, method=method, c=config.task.flat_c)
    return market, solve(market, scheme=config.task.scheme, method=method)


def prepare(config: RunConfig) -> Prepared:
    """Validate and compute everything that needs no chain and writes nothing."""
    market, contract = solve_contract(config)
    warmup = warmup_slots_for(contract, market)
    streams = load_streams(config, market, warmup)
    if any(s.columns != streams[0].columns for s in streams):
        raise InvalidInput("all streams must have the same sensor columns")
    policies = build_policies(config, streams)
    t = float(market.t)
    time_scale = time_scale_for(
        config,
        float(np.median([s.period for s in streams])),
        t,
        stream_s=min(float(s.times[-1]) for s in streams),
        slots=warmup + config.task.rounds,
    )
    start = warmup * t * time_scale
    visible = [twin_view(s, pol).until(start) for s, pol in zip(streams, policies, strict=True)]
    center, scale = fit_normaliser(visible)
    spec = ModelSpec(
        n_sensors=streams[0].n_sensors,
        window=config.train.window,
        hidden=config.train.hidden,
        center=center,
        scale=scale,
    )
    workers = build_workers(
        config.task.scheme,
        market,
        contract,
        streams,
        policies,
        seed=config.task.seed,
        virtual_augment=config.workers.virtual_augment,
    )
    task = build_model(
        TaskSpec,
        {
            "model_spec_hash": spec.sha256(),
            "rounds": config.task.rounds,
            "target_accuracy": config.task.target_accuracy,
            "menu_f": [float(f) for f in contract.f],
            "menu_reward_wei_per_round": reward_wei_per_round(config, market, contract),
            "max_workers": len(workers),
        },
        source="the task to post on the main chain",
    )
    return Prepared(
        config=config,
        market=market,
        contract=contract,
        streams=streams,
        policies=policies,
        workers=workers,
        spec=spec,
        time_scale=time_scale,
        warmup_slots=warmup,
        task=task,
    )


def reward_wei_per_round(config: RunConfig, market: Market, contract: Contract) -> list[int]:
    """Each item's reward for one round (one slot of ``t`` seconds), in wei.

    The contract's ``R`` is a rate, like the cost ``f / gamma`` it compensates
    (eq. 10), so one round of ``t`` seconds earns ``R t`` reward units.
    """
    unit = config.task.wei_per_reward_unit
    return [round(float(r) * float(market.t) * unit) for r in contract.reward]


def ledger_config(config: RunConfig) -> LedgerConfig:
    """The chain settings of the run as the ledger takes them."""
    c = config.chain
    return LedgerConfig(
        backend=c.backend,
        rpc_file=c.rpc_file,
        committee_size=c.committee_size,
        threshold=c.threshold,
        subchain_validators=c.subchain_validators,
        subchain_threshold=c.subchain_threshold,
        seed=c.key_seed,
    )


def run_task(
    config: RunConfig,
    out_dir: str | Path,
    on_round: Callable[[RoundMetrics], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    ledger: Ledger | None = None,
) -> RunResult:
    """Run one federated task end to end and write its run folder.

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
    ledger : Ledger, optional
        Chains that already run (e.g. to inspect them after the run, or to run
        several tasks on one ledger). Its parties must include
        ``workers.physical`` workers on P and on V. By default the run starts
        its own from ``config.chain`` and stops it at the end.

    Raises
    ------
    InvalidInput
        Bad config values, data or chain URLs; raised before anything is written.
    """
    status = on_status or (lambda _msg: None)
    status("solving the contract and reading the streams")
    prepared = prepare(config)
    status(f"starting the {config.chain.backend} chains")
    n = config.workers.physical
    chains: AbstractContextManager[Ledger] = (
        nullcontext(ledger)
        if ledger is not None
        else Ledger.start(ledger_config(config), n_workers={"P": n, "V": n})
    )
    with chains as ledger:
        workers = [
            _with_address(w, ledger.workers[w.space][w.space_index]) for w in prepared.workers
        ]
        prepared = _replace_workers(prepared, workers)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        store = ModelStore(out / "store")
        status("publishing the task")
        outcome = FederatedTask(prepared, ledger, store, on_round=on_round).run()
        deployments = ledger.deployments()
        receipts = [r.to_dict() for r in ledger.receipts]
    summary = write_run_folder(out, prepared, outcome, deployments, receipts)
    return RunResult(
        prepared=prepared,
        outcome=outcome,
        out_dir=out,
        deployments=deployments,
        receipts=receipts,
        summary=summary,
    )


def _with_address(worker: Worker, address: str) -> Worker:
    return replace(worker, address=address)


def _replace_workers(prepared: Prepared, workers: list[Worker]) -> Prepared:
    return replace(prepared, workers=workers)

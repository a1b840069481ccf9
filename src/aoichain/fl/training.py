"""Local training, evaluation, and a plain (chain-free) federated loop for baselines.

Training is deterministic: for a given spec, global blob, dataset and
:class:`TrainConfig`, :func:`train_local` returns the same bytes on every run
(one CPU thread, deterministic kernels, a forked and seeded RNG), and
:func:`train_batch` returns, for many workers at once, the bytes
:func:`train_local` returns for each.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field

from aoichain.errors import InvalidInput
from aoichain.fl.aggregation import AggregationRule, aggregate
from aoichain.fl.data import Dataset
from aoichain.fl.metrics import Metrics, classification_metrics
from aoichain.fl.model import (
    ModelSpec,
    deterministic_torch,
    features,
    init_model,
    load_network,
    load_parameters,
    normaliser,
    serialize_state,
)
from aoichain.fl.optim import OptimizerName, init_slots
from aoichain.fl.steps import train_stacked, worker_step


class TrainConfig(BaseModel):
    """How a worker trains locally.

    Parameters
    ----------
    epochs : int
        Passes over the worker's cache per round.
    batch_size : int
        Windows per optimiser step.
    lr : float
        Learning rate.
    seed : int
        Seeds the shuffling (and nothing else: the starting point is the
        global model). Give each worker and round its own seed.
    optimizer : {"sgd", "adam"}
        SGD with momentum, or Adam (betas 0.9, 0.999); see
        :mod:`aoichain.fl.optim`.
    momentum : float
        SGD's momentum (unused by Adam).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(default=2, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1, le=65536)
    lr: float = Field(default=0.05, gt=0, le=10)
    seed: int = Field(default=0, ge=0, lt=2**63)
    optimizer: OptimizerName = "sgd"
    momentum: float = Field(default=0.9, ge=0, lt=1)


@dataclass(frozen=True)
class LocalUpdate:
    """A worker's trained model: its bytes, their sha256 (32 raw bytes), and what it saw."""

    blob: bytes
    sha256: bytes
    samples: int
    loss: float


def _check_fits(spec: ModelSpec, dataset: Dataset) -> None:
    want = (spec.window, 2 * spec.n_sensors)
    if dataset.x.ndim != 3 or dataset.x.shape[1:] != want:
        raise InvalidInput(
            f"The dataset's windows have shape {dataset.x.shape[1:]}, but the model spec "
            f"expects {want} (window, 2 * n_sensors)."
        )


def _tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(dataset.x)), torch.from_numpy(
        np.ascontiguousarray(dataset.y)
    )


def _unchanged(global_bytes: bytes) -> LocalUpdate:
    return LocalUpdate(global_bytes, hashlib.sha256(global_bytes).digest(), 0, math.nan)


def _update(state: dict[str, torch.Tensor], samples: int, loss: float) -> LocalUpdate:
    blob = serialize_state(state)
    return LocalUpdate(blob, hashlib.sha256(blob).digest(), samples, loss)


def train_local(
    spec: ModelSpec, global_bytes: bytes, dataset: Dataset, cfg: TrainConfig
) -> LocalUpdate:
    """Train the global model on one worker's cache (step c of the workflow).

    ``cfg.optimizer`` (SGD with momentum by default) on the mean binary
    cross-entropy, ``cfg.epochs`` passes in an order shuffled with
    ``cfg.seed``, batches of ``cfg.batch_size`` windows (the last one of a
    pass takes the rest). An empty dataset returns the global model unchanged
    with ``samples=0`` (give it weight 0, or leave it out of the aggregation).
    :func:`train_batch` gives the same bytes for many workers at once.

    Returns
    -------
    LocalUpdate
        The trained weights' bytes and sha256, the number of windows trained
        on, and the mean loss of the last epoch.
    """
    _check_fits(spec, dataset)
    n = len(dataset)
    if n == 0:
        return _unchanged(global_bytes)
    x, y = _tensors(dataset)
    with deterministic_torch(cfg.seed):
        params = load_parameters(spec, global_bytes)
        names, tensors = list(params), list(params.values())
        slots = init_slots(cfg.optimizer, tensors, cfg.momentum)
        feats = features(x, *normaliser(spec))
        gen = torch.Generator().manual_seed(cfg.seed)
        total, step = 0.0, 0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for lo in range(0, n, cfg.batch_size):
                idx = order[lo : lo + cfg.batch_size]
                step += 1
                loss = worker_step(
                    names,
                    tensors,
                    slots,
                    feats[idx],
                    y[idx],
                    step=step,
                    optimizer=cfg.optimizer,
                    lr=cfg.lr,
                    momentum=cfg.momentum,
                )
                total += float(loss) * idx.numel()
        return _update(params, n, total / n)


def train_batch(
    spec: ModelSpec,
    global_bytes: bytes,
    datasets: Sequence[Dataset],
    cfgs: Sequence[TrainConfig],
    *,
    chunk: int = 64,
) -> list[LocalUpdate]:
    """Train the global model on many workers' caches at once: :func:`train_local` for each.

    Worker ``k`` trains on ``datasets[k]`` with ``cfgs[k]``, and gets the
    bytes (and loss, and sample count) that ``train_local(spec, global_bytes,
    datasets[k], cfgs[k])`` returns; only the time differs. Workers whose
    configurations agree but for the seed train together, up to ``chunk`` at
    a time, in one vectorised pass (grouped convolutions over stacked
    weights; :mod:`aoichain.fl.steps` says how it keeps the bytes).

    The bytes are equal because both paths run the same floating-point
    operations on each worker's numbers, on one thread, with the same
    kernels; where torch's kernels would differ, the pass falls back to
    per-worker steps. ``tests/fl/test_fl_batched.py`` checks the equality on
    the machine it runs on; should another platform's kernels break it,
    :func:`train_local` is the reference (and stays the default of
    :func:`federated_train`).

    Parameters
    ----------
    datasets, cfgs : sequences of Dataset and TrainConfig
        One each per worker, in the same order.
    chunk : int
        Most workers per pass. Memory grows with it (under 1 MB per worker
        with 256 windows of the default model); speed saturates from about
        16 on.

    Returns
    -------
    list of LocalUpdate
        One per worker, in order.
    """
    if len(datasets) != len(cfgs):
        raise InvalidInput(
            f"train_batch needs one TrainConfig per dataset: got {len(datasets)} datasets "
            f"and {len(cfgs)} configs."
        )
    if chunk < 1:
        raise InvalidInput(f"The 'chunk' parameter of train_batch must be >= 1. Got {chunk}.")
    for d in datasets:
        _check_fits(spec, d)
    params = load_parameters(spec, global_bytes)
    norm = normaliser(spec)
    updates = [_unchanged(global_bytes)] * len(datasets)
    together: dict[tuple[object, ...], list[int]] = {}
    for k, (d, c) in enumerate(zip(datasets, cfgs, strict=True)):
        if len(d):
            key = (c.epochs, c.batch_size, c.lr, c.optimizer, c.momentum)
            together.setdefault(key, []).append(k)
    with deterministic_torch(0):
        for members in together.values():
            c = cfgs[members[0]]
            for lo in range(0, len(members), chunk):
                part = members[lo : lo + chunk]
                data = [_tensors(datasets[k]) for k in part]
                stacked, losses = train_stacked(
                    params,
                    [features(x, *norm) for x, _ in data],
                    [y for _, y in data],
                    [cfgs[k].seed for k in part],
                    epochs=c.epochs,
                    batch_size=c.batch_size,
                    optimizer=c.optimizer,
                    lr=c.lr,
                    momentum=c.momentum,
                )
                for i, k in enumerate(part):
                    state = {name: t[i] for name, t in stacked.items()}
                    updates[k] = _update(state, len(datasets[k]), losses[i])
    return updates


def predict(spec: ModelSpec, blob: bytes, dataset: Dataset) -> npt.NDArray[np.float64]:
    """Anomaly probability of each window, shape ``(B,)``."""
    _check_fits(spec, dataset)
    if len(dataset) == 0:
        return np.zeros(0)
    x, _ = _tensors(dataset)
    with deterministic_torch(0), torch.no_grad():
        net = load_network(spec, blob)
        net.eval()
        logits = torch.cat([net(x[i : i + 4096]) for i in range(0, x.shape[0], 4096)])
    return torch.sigmoid(logits.double()).numpy()


def evaluate(spec: ModelSpec, blob: bytes, dataset: Dataset) -> Metrics:
    """The model ``blob``'s :class:`Metrics` on ``dataset`` (threshold 0.5, mean BCE loss)."""
    _check_fits(spec, dataset)
    if len(dataset) == 0:
        return classification_metrics(np.zeros(0), np.zeros(0))
    return classification_metrics(dataset.y, predict(spec, blob, dataset))


@dataclass(frozen=True)
class RoundRecord:
    """One round of :func:`federated_train`: the new global model's hash and quality."""

    round: int
    global_sha256: bytes
    train_loss: float
    metrics: Metrics | None


@dataclass(frozen=True)
class FederatedHistory:
    """What :func:`federated_train` returns: the final global blob and every round."""

    global_blob: bytes
    rounds: list[RoundRecord] = field(default_factory=list)


def federated_train(
    spec: ModelSpec,
    datasets: Sequence[Dataset],
    rounds: int,
    cfg: TrainConfig,
    rule: str | AggregationRule = "fedavg",
    *,
    eval_dataset: Dataset | None = None,
    init_seed: int = 0,
    initial: bytes | None = None,
    batched: bool = False,
) -> FederatedHistory:
    """Plain synchronous federated training, no chains: a baseline and a test harness.

    Each round every worker with data trains the global model on its dataset
    (seed ``cfg.seed + 1000 * round + worker``) and the updates are combined by
    ``rule`` with sample-count weights.

    Parameters
    ----------
    spec, cfg : ModelSpec, TrainConfig
        The model and the local training settings.
    datasets : sequence of Dataset
        One per worker; fixed over the rounds.
    rounds : int
        Number of rounds.
    rule : str or AggregationRule
        See :func:`~aoichain.fl.aggregation.aggregate`.
    eval_dataset : Dataset, optional
        If given, every round's global model is evaluated on it.
    init_seed : int
        Seed of :func:`~aoichain.fl.model.init_model` (ignored with ``initial``).
    initial : bytes, optional
        Starting global model.
    batched : bool
        Train each round's workers with :func:`train_batch` instead of one
        by one with :func:`train_local`: the same bytes, sooner.
    """
    blob = init_model(spec, init_seed) if initial is None else initial
    history: list[RoundRecord] = []
    for r in range(rounds):
        busy = [(k, d) for k, d in enumerate(datasets) if len(d)]
        cfgs = [cfg.model_copy(update={"seed": cfg.seed + 1000 * r + k}) for k, _ in busy]
        caches = [d for _, d in busy]
        if batched:
            updates = train_batch(spec, blob, caches, cfgs)
        else:
            updates = [train_local(spec, blob, d, c) for d, c in zip(caches, cfgs, strict=True)]
        if not updates:
            raise InvalidInput("federated_train: no worker has any data.")
        blob = aggregate(
            [u.blob for u in updates], [u.samples for u in updates], rule, reference=blob
        )
        samples = sum(u.samples for u in updates)
        history.append(
            RoundRecord(
                round=r,
                global_sha256=hashlib.sha256(blob).digest(),
                train_loss=sum(u.loss * u.samples for u in updates) / samples,
                metrics=None if eval_dataset is None else evaluate(spec, blob, eval_dataset),
            )
        )
    return FederatedHistory(global_blob=blob, rounds=history)

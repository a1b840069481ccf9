"""Local training, evaluation, and a plain (chain-free) federated loop for baselines.

Training is deterministic: for a given spec, global blob, dataset and
:class:`TrainConfig`, :func:`train_local` returns the same bytes on every run
(one CPU thread, deterministic kernels, a forked and seeded RNG).
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
from aoichain.fl.steps import worker_step


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


@dataclass(frozen=True)
class Metrics:
    """Quality of a model on a dataset (threshold 0.5 on the predicted probability).

    ``roc_auc`` is ``nan`` when the data hold only one class; ``f1`` is 0 when
    there are no true positives.
    """

    accuracy: float
    f1: float
    roc_auc: float
    loss: float
    samples: int


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


def roc_auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic (ties get mean ranks).

    ``AUC = (sum of positives' ranks - P (P + 1) / 2) / (P N)``; ``nan`` if
    either class is absent.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # Average rank of each run of equal scores.
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [s.size]])
    run_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


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
    """Accuracy, F1, ROC AUC and mean BCE loss of the model ``blob`` on ``dataset``."""
    _check_fits(spec, dataset)
    n = len(dataset)
    if n == 0:
        return Metrics(math.nan, math.nan, math.nan, math.nan, 0)
    p = predict(spec, blob, dataset)
    y = dataset.y.astype(bool)
    pred = p >= 0.5
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    eps = 1e-12
    loss = -np.mean(np.where(y, np.log(p + eps), np.log(1 - p + eps)))
    return Metrics(
        accuracy=float(np.mean(pred == y)),
        f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        roc_auc=roc_auc(y, p),
        loss=float(loss),
        samples=n,
    )


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
    """
    blob = init_model(spec, init_seed) if initial is None else initial
    history: list[RoundRecord] = []
    for r in range(rounds):
        busy = [(k, d) for k, d in enumerate(datasets) if len(d)]
        cfgs = [cfg.model_copy(update={"seed": cfg.seed + 1000 * r + k}) for k, _ in busy]
        caches = [d for _, d in busy]
        updates = [train_local(spec, blob, d, c) for d, c in zip(caches, cfgs, strict=True)]
        if not updates:
            raise InvalidInput("federated_train: no worker has any data.")
        blob = aggregate([u.blob for u in updates], [u.samples for u in updates], rule)
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

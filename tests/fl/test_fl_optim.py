"""The written-out optimisers give torch.optim's bytes, and so does train_local built on them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from aoichain.fl import (
    Dataset,
    ModelSpec,
    SensorStream,
    TrainConfig,
    init_model,
    load_network,
    make_windows,
    serialize_state,
    train_local,
)
from aoichain.fl.model import deterministic_torch
from aoichain.fl.optim import init_slots, optimizer_step

SHAPES = [(1,), (16,), (48,), (1, 48), (16, 16, 5), (7, 3)]


def _tensors(seed: int, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) for s in shapes]


@pytest.mark.parametrize(
    ("name", "momentum"), [("sgd", 0.9), ("sgd", 0.5), ("sgd", 0.0), ("adam", 0.9)]
)
def test_optimizer_step_gives_torch_optims_bytes(name: str, momentum: float) -> None:
    ours = _tensors(0, SHAPES)
    theirs = [nn.Parameter(p.clone()) for p in ours]
    lr = 0.05
    opt = (
        torch.optim.Adam(theirs, lr=lr)
        if name == "adam"
        else torch.optim.SGD(theirs, lr=lr, momentum=momentum)
    )
    slots = init_slots(name, ours, momentum)
    for step in range(1, 6):
        grads = _tensors(step, SHAPES)
        for p, g in zip(theirs, grads, strict=True):
            p.grad = g.clone()
        opt.step()
        optimizer_step(name, ours, grads, slots, step=step, lr=lr, momentum=momentum)
        assert all(torch.equal(a, b.detach()) for a, b in zip(ours, theirs, strict=True))


def test_a_step_on_stacked_tensors_is_the_step_on_each_row() -> None:
    """The optimiser is elementwise: K workers' stacked tensors step as each would alone."""
    k = 5
    rows = [_tensors(10 + i, SHAPES) for i in range(k)]
    stacked = [torch.stack([r[j] for r in rows]) for j in range(len(SHAPES))]
    slots_rows = [init_slots("adam", r, 0.9) for r in rows]
    slots_stacked = init_slots("adam", stacked, 0.9)
    for step in range(1, 4):
        grads = [_tensors(100 * step + i, SHAPES) for i in range(k)]
        for r, s, g in zip(rows, slots_rows, grads, strict=True):
            optimizer_step("adam", r, g, s, step=step, lr=0.01, momentum=0.9)
        g_stacked = [torch.stack([g[j] for g in grads]) for j in range(len(SHAPES))]
        optimizer_step("adam", stacked, g_stacked, slots_stacked, step=step, lr=0.01, momentum=0.9)
    for j in range(len(SHAPES)):
        assert torch.equal(stacked[j], torch.stack([r[j] for r in rows]))


def torch_optim_train_local(
    spec: ModelSpec, global_bytes: bytes, dataset: Dataset, cfg: TrainConfig
) -> tuple[bytes, float]:
    """train_local as it was written before the optimisers were: nn.Module and torch.optim."""
    x, y = torch.from_numpy(dataset.x), torch.from_numpy(dataset.y)
    n = len(dataset)
    with deterministic_torch(cfg.seed):
        net = load_network(spec, global_bytes)
        opt: torch.optim.Optimizer
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        loss_fn = nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(cfg.seed)
        total = 0.0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for lo in range(0, n, cfg.batch_size):
                idx = order[lo : lo + cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
        return serialize_state(net.state_dict()), total / n


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(seed=3),
        TrainConfig(seed=4, batch_size=7, epochs=3, momentum=0.0),
        TrainConfig(seed=5, batch_size=1, epochs=1),
        TrainConfig(seed=6, optimizer="adam", lr=0.01),
    ],
)
@pytest.mark.parametrize(
    "spec",
    [ModelSpec(n_sensors=3, window=8, hidden=4, kernel=3), ModelSpec(n_sensors=8)],
)
def test_train_local_gives_the_bytes_of_torch_optim(spec: ModelSpec, cfg: TrainConfig) -> None:
    rng = np.random.default_rng(0)
    stream = SensorStream(
        "s",
        tuple(f"c{i}" for i in range(spec.n_sensors)),
        np.arange(120.0),
        rng.normal(size=(120, spec.n_sensors)).astype(np.float32),
        (rng.random(120) < 0.3).astype(np.int8),
    )
    data = make_windows(stream, spec.window)
    g = init_model(spec, 1)
    blob, loss = torch_optim_train_local(spec, g, data, cfg)
    update = train_local(spec, g, data, cfg)
    assert update.blob == blob and update.sha256 == hashlib.sha256(blob).digest()
    assert update.loss == loss

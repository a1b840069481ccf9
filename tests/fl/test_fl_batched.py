"""train_batch: for every worker, the bytes train_local gives it, from one vectorised pass."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aoichain.errors import InvalidInput
from aoichain.fl import (
    Dataset,
    LocalUpdate,
    ModelSpec,
    TrainConfig,
    federated_train,
    init_model,
    train_batch,
    train_local,
)
from aoichain.fl.model import deterministic_torch
from aoichain.fl.steps import _grouped_is_exact, _on_onednn

SMALL = ModelSpec(n_sensors=3, window=8, hidden=4, kernel=3)  # channels padded to 16
DEFAULT = ModelSpec(n_sensors=8)  # window 16, hidden 16: no padding
WIDE = ModelSpec(n_sensors=2, window=10, hidden=20, kernel=2)  # hidden padded to 32
POINTWISE = ModelSpec(n_sensors=3, window=6, hidden=4, kernel=1)  # never grouped
# Empty, one window, partial batches, whole batches: caches of ragged sizes.
SIZES = [0, 1, 2, 13, 32, 33, 64, 70]


def cache(spec: ModelSpec, n: int, seed: int) -> Dataset:
    """``n`` random windows for ``spec``, one sensor masked in some of them."""
    rng = np.random.default_rng(seed)
    s = spec.n_sensors
    mask = np.ones(s, dtype=np.float32)
    if seed % 3 == 0:
        mask[0] = 0.0
    x = rng.normal(size=(n, spec.window, 2 * s)).astype(np.float32)
    x[..., :s] *= mask
    x[..., s:] = mask
    return Dataset(x=x, y=(rng.random(n) < 0.3).astype(np.float32), t_end=np.zeros(n))


def caches(spec: ModelSpec, sizes: list[int] = SIZES) -> list[Dataset]:
    return [cache(spec, n, seed) for seed, n in enumerate(sizes)]


def assert_same(got: list[LocalUpdate], expected: list[LocalUpdate]) -> None:
    assert len(got) == len(expected)
    for u, e in zip(got, expected, strict=True):
        assert (u.blob, u.sha256, u.samples) == (e.blob, e.sha256, e.samples)
        assert u.loss == e.loss or (math.isnan(u.loss) and math.isnan(e.loss))


def one_by_one(
    spec: ModelSpec, g: bytes, data: list[Dataset], cfgs: list[TrainConfig]
) -> list[LocalUpdate]:
    return [train_local(spec, g, d, c) for d, c in zip(data, cfgs, strict=True)]


@pytest.mark.parametrize(
    "base",
    [
        TrainConfig(),
        TrainConfig(batch_size=7, epochs=3, momentum=0.0),
        TrainConfig(batch_size=1, epochs=1),
        TrainConfig(batch_size=16, optimizer="adam", lr=0.01),
    ],
    ids=["sgd", "sgd-no-momentum-batch-7", "batch-1", "adam"],
)
@pytest.mark.parametrize(
    "spec", [SMALL, DEFAULT, WIDE, POINTWISE], ids=["small", "default", "wide", "pointwise"]
)
def test_every_worker_gets_the_bytes_of_train_local(spec: ModelSpec, base: TrainConfig) -> None:
    data = caches(spec)
    cfgs = [base.model_copy(update={"seed": 11 * k + 1}) for k in range(len(data))]
    g = init_model(spec, 2)
    assert_same(train_batch(spec, g, data, cfgs), one_by_one(spec, g, data, cfgs))


def test_workers_with_other_settings_train_apart_with_the_same_bytes() -> None:
    data = caches(SMALL) + caches(SMALL, [40, 5])
    cfgs = [TrainConfig(seed=k, epochs=1 + k % 3, batch_size=8 + k % 2) for k in range(len(data))]
    cfgs[-1] = TrainConfig(seed=99, optimizer="adam")
    g = init_model(SMALL, 0)
    assert_same(train_batch(SMALL, g, data, cfgs), one_by_one(SMALL, g, data, cfgs))


def test_the_bytes_depend_on_neither_the_chunk_nor_the_other_workers() -> None:
    data = caches(SMALL)
    cfgs = [TrainConfig(seed=k) for k in range(len(data))]
    g = init_model(SMALL, 0)
    whole = train_batch(SMALL, g, data, cfgs)
    for chunk in (1, 3):
        assert_same(train_batch(SMALL, g, data, cfgs, chunk=chunk), whole)
    assert_same(train_batch(SMALL, g, data[::-1], cfgs[::-1]), whole[::-1])
    assert_same(train_batch(SMALL, g, data, cfgs), whole)


def test_one_window_batches_of_long_windows_train_grouped_with_the_same_bytes() -> None:
    """Where one window is enough for torch to pick oneDNN, one-window batches are grouped."""
    spec = ModelSpec(n_sensors=16, window=700, hidden=32, kernel=3)
    assert _grouped_is_exact(1, 2 * spec.n_sensors, spec.window, spec.hidden, spec.kernel)
    data = caches(spec, [1, 1, 1, 2])
    cfgs = [TrainConfig(seed=k, epochs=1) for k in range(len(data))]
    g = init_model(spec, 0)
    assert_same(train_batch(spec, g, data, cfgs), one_by_one(spec, g, data, cfgs))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch.backends.mkldnn.flags on TF32
@pytest.mark.parametrize(
    ("batch", "channels", "length", "kernel"),
    [(1, 16, 16, 5), (2, 16, 16, 5), (1, 40, 600, 2), (15, 6, 8, 1), (16, 6, 8, 1), (1, 3, 8, 1)],
)
def test_the_rule_for_torchs_choice_of_convolution_kernel(
    batch: int, channels: int, length: int, kernel: int
) -> None:
    """_on_onednn copies a heuristic from torch's C++: check it against this torch."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, length, generator=g)
    w = torch.randn(7, channels, kernel, generator=g)
    with deterministic_torch(0):  # the rule is for one thread
        default = F.conv1d(x, w)
        with torch.backends.mkldnn.flags(enabled=False):
            native = F.conv1d(x, w)
    assert torch.equal(default, native) != _on_onednn(batch, channels, length, kernel)


def test_empty_caches_return_the_global_model_and_the_callers_torch_state_is_kept() -> None:
    g = init_model(SMALL, 0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    updates = train_batch(SMALL, g, caches(SMALL, [0, 5, 0]), [TrainConfig()] * 3)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()
    assert [u.samples for u in updates] == [0, 5, 0]
    assert updates[0].blob == updates[2].blob == g and math.isnan(updates[0].loss)
    assert train_batch(SMALL, g, [], []) == []


def test_bad_arguments_are_refused() -> None:
    g = init_model(SMALL, 0)
    with pytest.raises(InvalidInput, match="one TrainConfig per dataset"):
        train_batch(SMALL, g, caches(SMALL, [3, 4]), [TrainConfig()])
    with pytest.raises(InvalidInput, match="'chunk' parameter"):
        train_batch(SMALL, g, caches(SMALL, [3]), [TrainConfig()], chunk=0)
    with pytest.raises(InvalidInput, match=r"expects \(8, 6\)"):
        train_batch(SMALL, g, caches(DEFAULT, [3]), [TrainConfig()])


def test_federated_training_batched_has_the_same_history() -> None:
    data = caches(SMALL)
    one = federated_train(SMALL, data, 3, TrainConfig(seed=5))
    many = federated_train(SMALL, data, 3, TrainConfig(seed=5), batched=True)
    assert many.global_blob == one.global_blob
    assert [r.global_sha256 for r in many.rounds] == [r.global_sha256 for r in one.rounds]
    assert [r.train_loss for r in many.rounds] == [r.train_loss for r in one.rounds]


SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
from test_fl_batched import SMALL, caches
from aoichain.fl import TrainConfig, init_model, train_batch
data = caches(SMALL)
cfgs = [TrainConfig(seed=k) for k in range(len(data))]
for u in train_batch(SMALL, init_model(SMALL, 1), data, cfgs):
    print(u.sha256.hex())
"""


@pytest.mark.slow
def test_same_bytes_in_another_process_with_other_thread_settings() -> None:
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(here.parents[1] / "src")}
    threads = "1" if torch.get_num_threads() > 1 else "2"
    child = subprocess.run(
        [sys.executable, "-c", SCRIPT, threads, str(here)], capture_output=True, text=True, env=env
    )
    assert child.returncode == 0, child.stderr
    data = caches(SMALL)
    cfgs = [TrainConfig(seed=k) for k in range(len(data))]
    expected = [u.sha256.hex() for u in one_by_one(SMALL, init_model(SMALL, 1), data, cfgs)]
    assert child.stdout.split() == expected

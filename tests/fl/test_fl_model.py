"""The model spec, the deterministic byte format, and deterministic training."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aoichain.config import build_model
from aoichain.errors import IntegrityError, InvalidInput
from aoichain.fl import (
    MalformedUpdate,
    ModelSpec,
    SensorStream,
    TrainConfig,
    deserialize_state,
    evaluate,
    fit_normaliser,
    init_model,
    load_network,
    make_windows,
    serialize_state,
    sha256_hex,
    train_local,
)

SPEC = ModelSpec(n_sensors=3, window=8, hidden=4, kernel=3)


def test_spec_hash_is_stable_and_covers_every_field() -> None:
    a = ModelSpec(n_sensors=3, window=8, hidden=4, kernel=3, center=(1, 2, 3), scale=(1, 1, 2))
    assert a.sha256() == ModelSpec.model_validate(a.model_dump()).sha256()
    assert len(a.sha256()) == 32 and a.canonical_json().startswith(b'{"center":[1.0,2.0,3.0]')
    for change in ({"window": 9}, {"hidden": 5}, {"kernel": 2}, {"scale": (1, 1, 3)}):
        assert a.model_copy(update=change).sha256() != a.sha256()


@pytest.mark.parametrize(
    ("values", "phrase"),
    [
        ({"n_sensors": 0}, "n_sensors"),
        ({"n_sensors": 2, "center": (0.0,), "scale": (1.0,)}, "n_sensors=2 entries"),
        ({"n_sensors": 1, "center": (0.0,), "scale": (0.0,)}, "scale must be > 0"),
        ({"n_sensors": 1, "window": 8, "kernel": 5}, "too short"),
    ],
)
def test_spec_rejects_bad_values(values: dict, phrase: str) -> None:
    with pytest.raises(InvalidInput, match=phrase):
        build_model(ModelSpec, values)


def test_normaliser_is_robust_and_ignores_masked_columns() -> None:
    values = np.array([[1, 5], [2, 5], [3, 5], [4, 5], [1000, 5]], dtype=np.float32)
    s = SensorStream("s", ("a", "b"), np.arange(5.0), values, np.zeros(5, np.int8))
    center, scale = fit_normaliser([s])
    assert center == (3.0, 5.0) and scale[1] == 1.0  # median; constant column gets 1
    assert 0.5 < scale[0] < 3  # the 1000 outlier barely moves it
    masked = SensorStream(
        "m", ("a", "b"), np.arange(5.0), values, np.zeros(5, np.int8), mask=np.array([1, 0])
    )
    assert fit_normaliser([masked]) == ((3.0, 0.0), (scale[0], 1.0))


arrays = st.dictionaries(
    st.text(min_size=1, max_size=8),
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int64, np.int32]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    max_size=5,
)


@given(state=arrays)
def test_serialisation_round_trips_bit_exactly(state: dict[str, np.ndarray]) -> None:
    blob = serialize_state(state)
    back = deserialize_state(blob)
    assert list(back) == sorted(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].tobytes() == v.tobytes()  # NaNs included, bit for bit
    assert serialize_state(dict(reversed(list(state.items())))) == blob  # key order irrelevant


def test_serialised_header_is_the_documented_format() -> None:
    blob = serialize_state({"w": np.array([1.0, 2.0], dtype=np.float32)})
    assert blob[:4] == b"AOIW" and struct.unpack("<BI", blob[4:9]) == (1, 1)
    assert blob[9:12] == b"\x01\x00w" and blob[12:18] == b"\x01\x01\x02\x00\x00\x00"
    assert blob[18:] == np.array([1.0, 2.0], dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("mutate", "phrase"),
    [
        (lambda b: b"XXXX" + b[4:], "header"),
        (lambda b: b[:4] + b"\x02" + b[5:], "version 2"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b[:7], "malformed"),
    ],
)
def test_malformed_blobs_are_refused(mutate, phrase: str) -> None:
    blob = init_model(SPEC, 0)
    with pytest.raises(MalformedUpdate, match=phrase) as info:
        deserialize_state(mutate(blob))
    assert isinstance(info.value, IntegrityError)


def test_blob_of_another_spec_is_refused() -> None:
    other = init_model(SPEC.model_copy(update={"hidden": 5}), 0)
    with pytest.raises(MalformedUpdate, match="does not fit the model spec"):
        load_network(SPEC, other)


def _cache(seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    s = SensorStream(
        "s",
        ("a", "b", "c"),
        np.arange(200.0),
        rng.normal(size=(200, 3)).astype(np.float32),
        (rng.random(200) < 0.3).astype(np.int8),
    )
    return make_windows(s, SPEC.window)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    data = _cache()
    assert init_model(SPEC, 1) == init_model(SPEC, 1) != init_model(SPEC, 2)
    g = init_model(SPEC, 1)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=3)
    a, b = train_local(SPEC, g, data, cfg), train_local(SPEC, g, data, cfg)
    assert (
        a.blob == b.blob and a.sha256 == b.sha256 and bytes.fromhex(sha256_hex(a.blob)) == a.sha256
    )
    assert a.samples == len(data) and np.isfinite(a.loss) and a.blob != g
    assert train_local(SPEC, g, data, cfg.model_copy(update={"seed": 4})).blob != a.blob


def test_training_leaves_the_callers_torch_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train_local(SPEC, init_model(SPEC, 0), _cache(), TrainConfig())
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_windows_of_another_shape_are_refused() -> None:
    other = ModelSpec(n_sensors=3, window=10, hidden=4, kernel=3)
    with pytest.raises(InvalidInput, match=r"expects \(10, 6\)"):
        train_local(other, init_model(other, 0), _cache(), TrainConfig())
    with pytest.raises(InvalidInput, match=r"window, 2 \* n_sensors"):
        evaluate(other, init_model(other, 0), _cache())


def test_an_empty_cache_returns_the_global_model_with_no_samples() -> None:
    g = init_model(SPEC, 0)
    empty = make_windows(SensorStream("e", ("a", "b", "c"), [], np.zeros((0, 3)), []), 8)
    update = train_local(SPEC, g, empty, TrainConfig())
    assert update.blob == g and update.samples == 0


SCRIPT = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from aoichain.fl import *
spec = ModelSpec(n_sensors=3, window=8, hidden=4, kernel=3)
rng = np.random.default_rng(0)
s = SensorStream("s", ("a", "b", "c"), np.arange(200.0),
                 rng.normal(size=(200, 3)).astype(np.float32),
                 (rng.random(200) < 0.3).astype(np.int8))
u = train_local(spec, init_model(spec, 1), make_windows(s, 8), TrainConfig(seed=3))
print(u.sha256.hex())
"""


@pytest.mark.slow
def test_same_bytes_in_another_process_with_other_thread_settings() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    threads = "1" if torch.get_num_threads() > 1 else "2"
    child = subprocess.run(
        [sys.executable, "-c", SCRIPT, threads], capture_output=True, text=True, env=env
    )
    assert child.returncode == 0, child.stderr
    data = _cache()
    here = train_local(SPEC, init_model(SPEC, 1), data, TrainConfig(seed=3)).sha256.hex()
    assert child.stdout.strip() == here

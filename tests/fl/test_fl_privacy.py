"""No sensitive value reaches the virtual twin: its data, its training batches, its updates.

Every cell of a test stream holds a distinct value (never 0 or 1, the values
of masked cells and mask channels), so "a sensitive value reached X" is an
exact membership test. The oracle below restates the policy's meaning
independently of the implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aoichain.fl.training as training
from aoichain.config import build_model
from aoichain.errors import InvalidInput
from aoichain.fl import (
    InvalidPolicy,
    ModelSpec,
    PrivacyPolicy,
    Rule,
    SensorStream,
    TrainConfig,
    augment_virtual,
    concat_datasets,
    init_model,
    make_windows,
    train_local,
    twin_view,
)

OPS = [">", ">=", "<", "<=", "==", "!="]


@st.composite
def node_data(draw: Any) -> tuple[SensorStream, PrivacyPolicy]:
    n = draw(st.integers(1, 60))
    s = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    columns = tuple(f"c{j}" for j in range(s))
    values = (2.5 + 1.25 * rng.permutation(n * s)).reshape(n, s).astype(np.float32)
    times = np.concatenate([[0.0], np.cumsum(rng.choice([1.0, 1.0, 1.0, 2.5], n - 1))])
    stream = SensorStream(
        "node", columns, times, values, (rng.random(n) < 0.3).astype(np.int8), origin=1e9
    )
    hidden_cols = draw(st.lists(st.sampled_from(columns), unique=True, max_size=s))
    end = float(times[-1]) + 1
    windows = draw(
        st.lists(
            st.tuples(st.floats(-1, end), st.floats(0, 10)).map(lambda w: (w[0], w[0] + w[1])),
            max_size=2,
        )
    )
    rules = draw(
        st.lists(
            st.builds(
                Rule,
                column=st.sampled_from(columns),
                op=st.sampled_from(OPS),
                value=st.sampled_from([float(v) for v in values.ravel()])
                | st.floats(0, 2.5 + 1.25 * n * s),
            ),
            max_size=3,
        )
    )
    policy = PrivacyPolicy(
        sensitive_columns=tuple(hidden_cols),
        sensitive_windows=tuple(windows),
        sensitive_rules=tuple(rules),
    )
    return stream, policy


def oracle(stream: SensorStream, policy: PrivacyPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(withheld records, sensitive cells), from the policy's documented meaning."""
    compare = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    n, s = stream.values.shape
    withheld = np.zeros(n, dtype=bool)
    for i in range(n):
        t = float(stream.times[i])
        if any(a <= t <= b for a, b in policy.sensitive_windows):
            withheld[i] = True
        for r in policy.sensitive_rules:
            v = float(stream.values[i, stream.columns.index(r.column)])
            if compare[r.op](v, float(np.float32(r.value))):
                withheld[i] = True
    cells = np.zeros((n, s), dtype=bool)
    cells[withheld] = True
    for j, c in enumerate(stream.columns):
        if c in policy.sensitive_columns:
            cells[:, j] = True
    return withheld, cells


def leaked(sensitive: set[float], arrays: list[np.ndarray]) -> set[float]:
    seen: set[float] = set()
    for a in arrays:
        seen |= {float(v) for v in np.asarray(a, dtype=np.float32).ravel()}
    return sensitive & seen


SPEC_KW = {"window": 4, "hidden": 2, "kernel": 2}
CFG = TrainConfig(epochs=1, batch_size=8, lr=0.05, seed=1)


def twin_update(
    stream: SensorStream, policy: PrivacyPolicy, inputs: list, virtual: bool = True
) -> bytes:
    """What the twin uploads: trained on its view (plus its virtual data), inputs recorded."""
    twin = twin_view(stream, policy)
    spec = ModelSpec(n_sensors=stream.n_sensors, **SPEC_KW)
    parts = [twin, augment_virtual(twin, 5)] if virtual else [twin]
    data = concat_datasets([make_windows(p, spec.window) for p in parts])
    real_features = training.features

    def recording_features(x: torch.Tensor, *normaliser: torch.Tensor) -> torch.Tensor:
        inputs.append(x.detach().numpy().copy())  # the windows, before the network's first layer
        return real_features(x, *normaliser)

    training.features = recording_features  # type: ignore[assignment]
    try:
        return train_local(spec, init_model(spec, 0), data, CFG).blob
    finally:
        training.features = real_features


@settings(max_examples=80)
@given(node_data())
def test_no_sensitive_value_reaches_the_twin(case: tuple[SensorStream, PrivacyPolicy]) -> None:
    stream, policy = case
    withheld, cells = oracle(stream, policy)
    sensitive = {float(v) for v in stream.values[cells]}
    s = stream.n_sensors

    # The twin's data store holds exactly the non-sensitive records, masked columns zeroed.
    twin = twin_view(stream, policy)
    np.testing.assert_array_equal(twin.times, stream.times[~withheld])
    np.testing.assert_array_equal(twin.labels, stream.labels[~withheld])
    assert list(twin.mask) == [c not in policy.sensitive_columns for c in stream.columns]
    assert not twin.values[:, ~twin.mask].any()
    assert not leaked(sensitive, [twin.values])

    # Its training batches: the windows of its view (values then 0/1 mask channels).
    windows = make_windows(twin, 4)
    assert not leaked(sensitive, [windows.x[..., :s]])
    assert set(np.unique(windows.x[..., s:])) <= {0.0, 1.0}

    # Its updates' inputs: every tensor the network is fed while training.
    # (Virtual data are random numbers, which could equal a sensitive value by
    # chance; they are covered by the non-interference check below.)
    inputs: list[np.ndarray] = []
    twin_update(stream, policy, inputs, virtual=False)
    assert bool(inputs) == bool(len(windows))
    assert not leaked(sensitive, [x[..., :s] for x in inputs])
    blob = twin_update(stream, policy, [])

    # Non-interference: change every sensitive value whose change cannot change
    # which records are sensitive; the twin's view, virtual data and update stay bit-equal.
    rule_cols = [stream.columns.index(r.column) for r in policy.sensitive_rules]
    in_window = np.array(
        [any(a <= t <= b for a, b in policy.sensitive_windows) for t in stream.times], dtype=bool
    )
    free = cells.copy()
    free[np.ix_(~in_window, rule_cols)] = False
    other = stream.values.copy()
    other[free] += 10_000.0
    moved = SensorStream(
        stream.name, stream.columns, stream.times, other, stream.labels, origin=stream.origin
    )
    assert (oracle(moved, policy)[0] == withheld).all()
    twin2 = twin_view(moved, policy)
    assert twin2.values.tobytes() == twin.values.tobytes()
    assert augment_virtual(twin2, 5).values.tobytes() == augment_virtual(twin, 5).values.tobytes()
    assert twin_update(moved, policy, []) == blob


def test_policy_by_column_window_and_rule() -> None:
    values = np.array([[10, 1], [20, 2], [30, 3], [40, 4], [50, 5]], dtype=np.float32)
    stream = SensorStream("n", ("temp", "load"), np.arange(5.0), values, np.zeros(5, np.int8))
    policy = PrivacyPolicy(
        sensitive_columns=("load",),
        sensitive_windows=((0.5, 1.0),),
        sensitive_rules=(Rule(column="temp", op=">=", value=50),),
    )
    twin = twin_view(stream, policy)
    np.testing.assert_array_equal(twin.times, [0, 2, 3])
    np.testing.assert_array_equal(twin.values, [[10, 0], [30, 0], [40, 0]])
    assert list(twin.mask) == [True, False] and twin.origin == stream.origin
    assert twin_view(stream, PrivacyPolicy.none()).values.tobytes() == values.tobytes()


def test_windows_never_span_withheld_records() -> None:
    stream = SensorStream(
        "n", ("a",), np.arange(10.0), np.arange(10, 20, dtype=np.float32)[:, None], [0] * 10
    )
    twin = twin_view(stream, PrivacyPolicy(sensitive_windows=((4.0, 4.0),)))
    # By default a window bridges a gap of up to 3 record periods (a missed sample).
    np.testing.assert_array_equal(make_windows(twin, 3).t_end, [2, 3, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(make_windows(twin, 3, max_gap=1.5).t_end, [2, 3, 7, 8, 9])
    twin = twin_view(stream, PrivacyPolicy(sensitive_windows=((3.0, 5.0),)))
    np.testing.assert_array_equal(make_windows(twin, 3).t_end, [2, 8, 9])


def test_augmented_data_are_variations_of_the_view_and_keep_masks() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(50, 5, size=(500, 3)).astype(np.float32)
    stream = SensorStream("n", ("a", "b", "c"), np.arange(500.0), values, np.zeros(500, np.int8))
    twin = twin_view(stream, PrivacyPolicy(sensitive_columns=("b",)))
    virtual = augment_virtual(twin, seed=3)
    assert virtual.values.tobytes() != twin.values.tobytes()
    assert not virtual.values[:, 1].any() and list(virtual.mask) == [True, False, True]
    np.testing.assert_allclose(virtual.values[:, 0].mean(), 50, atol=1)
    assert augment_virtual(twin, seed=3).values.tobytes() == virtual.values.tobytes()


def test_policy_errors_name_the_problem() -> None:
    stream = SensorStream("n", ("temp",), [0.0], [[1.0]], [0])
    with pytest.raises(InvalidPolicy, match=r"unknown column\(s\) \['pressure'\]"):
        twin_view(stream, PrivacyPolicy(sensitive_columns=("pressure",)))
    with pytest.raises(InvalidInput, match="start <= end"):
        build_model(PrivacyPolicy, {"sensitive_windows": [[5, 1]]}, source="run.toml [nodes.0]")
    with pytest.raises(InvalidInput, match="op"):
        build_model(Rule, {"column": "temp", "op": "=>", "value": 1})

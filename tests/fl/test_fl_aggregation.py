"""Aggregation rules: FedAvg, coordinate-wise median, trimmed mean, and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aoichain.errors import InvalidInput
from aoichain.fl import (
    AGGREGATION_RULES,
    MalformedUpdate,
    aggregate,
    deserialize_state,
    register_rule,
    serialize_state,
)


def _blob(w: np.ndarray, b: float = 0.0) -> bytes:
    return serialize_state({"w": w.astype(np.float32), "b": np.array([b], dtype=np.float32)})


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
updates = st.integers(1, 7).flatmap(
    lambda k: st.tuples(
        hnp.arrays(np.float32, (k, 3), elements=finite),
        st.lists(st.floats(0.5, 100), min_size=k, max_size=k),
    )
)


@given(updates)
def test_fedavg_is_the_sample_weighted_mean(upd: tuple[np.ndarray, list[float]]) -> None:
    ws, weights = upd
    out = deserialize_state(aggregate([_blob(w) for w in ws], weights))["w"]
    want = (np.asarray(weights)[:, None] * ws.astype(np.float64)).sum(0) / sum(weights)
    np.testing.assert_allclose(out, want.astype(np.float32), rtol=1e-6, atol=1e-4)
    assert out.dtype == np.float32


@given(updates, st.sampled_from(["fedavg", "median", "trimmed_mean"]))
def test_rules_are_permutation_invariant_and_keep_agreement(
    upd: tuple[np.ndarray, list[float]], rule: str
) -> None:
    ws, weights = upd
    blobs = [_blob(w) for w in ws]
    out = aggregate(blobs, weights, rule)
    assert aggregate(blobs[::-1], weights[::-1], rule) == out  # bytes, not approximately
    same = aggregate([blobs[0]] * len(blobs), weights, rule)
    np.testing.assert_allclose(deserialize_state(same)["w"], ws[0], rtol=1e-6)
    lo, hi = ws.min(0), ws.max(0)
    got = deserialize_state(out)["w"]
    assert np.all(got >= lo - 1e-3) and np.all(got <= hi + 1e-3)


def test_median_and_trimmed_mean_resist_one_poisoned_update() -> None:
    honest = [np.full(3, v) for v in (1.0, 1.1, 0.9, 1.05, 0.95)]
    poisoned = np.full(3, 1e6)
    blobs = [_blob(w) for w in [*honest, poisoned]]
    weights = [10, 10, 10, 10, 10, 1000]  # the attacker also claims many samples
    assert deserialize_state(aggregate(blobs, weights, "fedavg"))["w"][0] > 1e5
    np.testing.assert_allclose(deserialize_state(aggregate(blobs, weights, "median"))["w"], 1.025)
    trimmed = aggregate(blobs, weights, "trimmed_mean", trim=0.2)
    np.testing.assert_allclose(deserialize_state(trimmed)["w"], 1.025, rtol=1e-6)


def test_trimmed_mean_cuts_floor_of_trim_times_k_each_side() -> None:
    blobs = [_blob(np.array([v])) for v in (0.0, 1.0, 2.0, 3.0, 100.0)]
    out = lambda t: deserialize_state(aggregate(blobs, [1] * 5, "trimmed_mean", trim=t))["w"][0]  # noqa: E731
    assert out(0.0) == pytest.approx(21.2) and out(0.19) == pytest.approx(21.2)
    assert out(0.2) == pytest.approx(2.0) and out(0.45) == pytest.approx(2.0)


def test_more_rules_plug_in_by_name() -> None:
    class Largest:
        def __call__(self, stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
            return stacked[int(np.argmax(weights))]

    register_rule("largest_worker", Largest)
    try:
        blobs = [_blob(np.array([1.0])), _blob(np.array([7.0]))]
        assert deserialize_state(aggregate(blobs, [1, 5], "largest_worker"))["w"][0] == 7.0
        assert deserialize_state(aggregate(blobs, [1, 5], Largest()))["w"][0] == 7.0
    finally:
        del AGGREGATION_RULES["largest_worker"]


@pytest.mark.parametrize(
    ("blobs", "weights", "rule", "opts", "phrase"),
    [
        ([], [], "fedavg", {}, "at least one update"),
        ([b"x"], [1, 2], "fedavg", {}, "1 updates but 2 weights"),
        ([b"x"], [-1], "fedavg", {}, "weights"),
        ([b"x", b"y"], [0, 0], "fedavg", {}, "positive sum"),
        ([b"x"], [float("nan")], "fedavg", {}, "finite"),
        ([b"x"], [1], "bulyan", {}, "must be one of"),
        ([b"x"], [1], "trimmed_mean", {"trim": 0.5}, r"range \[0, 0.5\)"),
        ([b"x"], [1], "median", {"trim": 0.1}, "Bad options"),
    ],
)
def test_bad_aggregation_requests_are_refused(blobs, weights, rule, opts, phrase) -> None:
    with pytest.raises(InvalidInput, match=phrase):
        aggregate(blobs, weights, rule, **opts)


def test_updates_of_different_models_are_refused() -> None:
    a = _blob(np.zeros(3))
    b = serialize_state({"w": np.zeros(4, np.float32), "b": np.zeros(1, np.float32)})
    with pytest.raises(MalformedUpdate, match="other tensors"):
        aggregate([a, b], [1, 1])
    with pytest.raises(MalformedUpdate):
        aggregate([a, b"garbage"], [1, 1])

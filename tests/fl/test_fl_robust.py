"""Whole-update robust rules: norm clipping, Krum and multi-Krum, and their invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aoichain.errors import InvalidInput
from aoichain.fl import (
    Krum,
    MalformedUpdate,
    MultiKrum,
    NormClip,
    aggregate,
    deserialize_state,
    serialize_state,
)
from aoichain.fl.robust import clip_deltas, delta_norms, krum_scores, krum_select

ALL_RULES = ("fedavg", "median", "trimmed_mean", "norm_clip", "krum", "multi_krum")


def _blob(w: np.ndarray, b: float = 0.0) -> bytes:
    return serialize_state({"w": w.astype(np.float32), "b": np.array([b], dtype=np.float32)})


def _state(blob: bytes) -> dict[str, np.ndarray]:
    return deserialize_state(blob)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
# Multiples of 2**-10: an update minus the reference is then exact in float64, as it is for
# weights of ordinary size (float64 holds 29 bits more than float32); see the Krum test.
dyadic = st.integers(-(2**20), 2**20).map(lambda i: i / 1024)


def _rounds(elements: st.SearchStrategy[float]) -> st.SearchStrategy[tuple]:
    return st.integers(1, 8).flatmap(
        lambda k: st.tuples(
            hnp.arrays(np.float32, (k, 3), elements=elements),
            hnp.arrays(np.float32, (k,), elements=elements),
            st.lists(st.floats(0.5, 100), min_size=k, max_size=k),
            hnp.arrays(np.float32, (3,), elements=elements),
        )
    )


rounds = _rounds(finite)
matrices = hnp.array_shapes(min_dims=2, max_dims=2, max_side=8).flatmap(
    lambda shape: hnp.arrays(np.float64, shape, elements=st.floats(-1e6, 1e6, allow_nan=False))
)


@given(rounds, st.sampled_from(ALL_RULES))
def test_every_rule_is_permutation_invariant_and_keeps_agreement(round_, rule) -> None:
    ws, bs, weights, ref = round_
    blobs = [_blob(w, b) for w, b in zip(ws, bs, strict=True)]
    reference = _blob(ref)
    out = aggregate(blobs, weights, rule, reference=reference)
    assert aggregate(blobs[::-1], weights[::-1], rule, reference=reference) == out  # bytes
    same = _state(aggregate([blobs[0]] * len(blobs), weights, rule, reference=reference))
    np.testing.assert_allclose(same["w"], ws[0], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(same["b"], bs[:1], rtol=1e-6, atol=1e-4)


@given(_rounds(dyadic), st.sampled_from(["krum", "multi_krum"]), st.integers(0, 3))
def test_krum_picks_one_of_the_updates_and_multi_krum_stays_inside_them(round_, rule, f) -> None:
    """At the blob level the model is the reference plus the chosen delta: one of the
    updates, bit for bit, whenever that delta is exact in float64 (weights within a factor
    2**29 of the reference's). The rule itself always returns one of its rows exactly."""
    ws, bs, weights, ref = round_
    blobs = [_blob(w, b) for w, b in zip(ws, bs, strict=True)]
    got = _state(aggregate(blobs, weights, rule, reference=_blob(ref), f=f))
    if rule == "krum":
        assert any(
            np.array_equal(got["w"], w) and got["b"][0] == b for w, b in zip(ws, bs, strict=True)
        )
    else:
        assert np.all(got["w"] >= ws.min(0) - 1e-3) and np.all(got["w"] <= ws.max(0) + 1e-3)


@given(matrices, st.one_of(st.none(), st.floats(1e-3, 1e6)))
def test_clipping_never_increases_a_norm_and_respects_the_bound(deltas, bound) -> None:
    before = delta_norms(deltas)
    clipped = clip_deltas(deltas, bound)
    after = delta_norms(clipped)
    assert np.all(after <= before)
    limit = np.median(before) if bound is None else bound
    assert np.all(after <= limit * (1 + 1e-12) + 1e-300)
    unchanged = before <= limit
    np.testing.assert_array_equal(clipped[unchanged], deltas[unchanged])
    # Clipping only shortens: every clipped row points where its delta pointed.
    assert np.all(np.sign(clipped) * np.sign(deltas) >= 0)


@given(matrices, st.integers(0, 4), st.integers(1, 9))
def test_krum_selection_does_not_depend_on_the_order_of_the_updates(deltas, f, m) -> None:
    chosen = deltas[krum_select(deltas, f, m)]
    order = np.random.default_rng(0).permutation(len(deltas))
    np.testing.assert_array_equal(deltas[order][krum_select(deltas[order], f, m)], chosen)
    assert len(chosen) == min(m, len(deltas))


@given(matrices, st.integers(0, 4))
def test_the_krum_rule_returns_one_of_its_rows_exactly(deltas, f) -> None:
    got = Krum(f=f)(deltas, np.ones(len(deltas)))
    assert any(np.array_equal(got, row) for row in deltas)


def test_krum_scores_sum_the_nearest_k_minus_f_minus_2_squared_distances() -> None:
    points = np.array([[0.0], [1.0], [3.0], [10.0], [11.0]])
    # K = 5, f = 1: each point sums its 2 nearest squared distances.
    np.testing.assert_allclose(krum_scores(points, 1), [1 + 9, 1 + 4, 4 + 9, 1 + 49, 1 + 64])
    assert list(krum_select(points, 1, 2)) == [1, 0]


def _cluster_and_attackers() -> tuple[list[bytes], bytes]:
    rng = np.random.default_rng(1)
    honest = [np.ones(4) + 0.01 * rng.standard_normal(4) for _ in range(6)]
    attackers = [np.full(4, -50.0), np.full(4, 80.0)]
    return [_blob(w) for w in honest + attackers], _blob(np.zeros(4))


def test_krum_and_multi_krum_leave_far_updates_out() -> None:
    blobs, reference = _cluster_and_attackers()
    weights = [10] * 6 + [1000, 1000]  # the attackers also claim many samples
    for rule in ("krum", "multi_krum"):
        got = _state(aggregate(blobs, weights, rule, reference=reference, f=2))["w"]
        np.testing.assert_allclose(got, 1.0, atol=0.05)
    fedavg = _state(aggregate(blobs, weights, "fedavg", reference=reference))["w"]
    assert np.all(np.abs(fedavg - 1.0) > 5)


def test_norm_clipping_bounds_a_scaled_up_update() -> None:
    reference = _blob(np.zeros(2))
    blobs = [_blob(np.array([1.0, 0.0])), _blob(np.array([0.0, 1.0])), _blob(np.full(2, 1e4))]
    got = _state(aggregate(blobs, [1, 1, 1], "norm_clip", reference=reference))["w"]
    # The median norm is 1: the third delta counts as (0.707, 0.707), no more.
    np.testing.assert_allclose(got, (1 + 2**-0.5) / 3, rtol=1e-6)
    fixed = _state(aggregate(blobs, [1, 1, 1], "norm_clip", reference=reference, bound=0.5))
    np.testing.assert_allclose(fixed["w"], (0.5 + 0.5 * 2**-0.5) / 3, rtol=1e-6)


def test_whole_update_rules_work_on_deltas_from_the_reference() -> None:
    class KeepTheModel:
        whole_update = True

        def __call__(self, stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
            assert stacked.shape == (2, 4)  # 3 weights and the bias, flattened
            return np.zeros(stacked.shape[1])

    reference = _blob(np.array([1.0, 2.0, 3.0]), 4.0)
    blobs = [_blob(np.zeros(3)), _blob(np.ones(3))]
    assert aggregate(blobs, [1, 1], KeepTheModel(), reference=reference) == reference
    with pytest.raises(MalformedUpdate, match="reference model"):
        aggregate(blobs, [1, 1], "krum", reference=_blob(np.zeros(5)))


def test_krum_defaults_to_the_most_byzantine_updates_it_tolerates() -> None:
    assert [Krum().assumed(k) for k in (1, 4, 5, 8, 20)] == [0, 0, 1, 2, 8]
    assert MultiKrum(f=1).assumed(20) == 1


@pytest.mark.parametrize(
    ("build", "phrase"),
    [
        (lambda: Krum(f=-1), r"'f' parameter of Krum must be an int >= 0\. Got -1"),
        (lambda: Krum(f=1.5), "'f' parameter of Krum must be an int"),
        (lambda: MultiKrum(m=0), "'m' parameter of MultiKrum must be an int >= 1"),
        (lambda: NormClip(bound=0.0), "'bound' parameter of NormClip must be a finite float > 0"),
        (lambda: NormClip(bound=float("inf")), "'bound' parameter of NormClip"),
        (lambda: aggregate([_blob(np.zeros(1))], [1], "krum", m=2), "Bad options"),
    ],
)
def test_bad_options_of_robust_rules_are_refused(build, phrase) -> None:
    with pytest.raises(InvalidInput, match=phrase):
        build()

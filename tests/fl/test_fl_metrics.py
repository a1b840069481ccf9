"""Evaluation metrics: ROC AUC by ranks, accuracy and F1 at threshold 0.5."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from aoichain.fl import Dataset, ModelSpec, evaluate, roc_auc, serialize_state


@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=40),
)
def test_auc_equals_the_pairwise_definition(pairs: list[tuple[bool, int]]) -> None:
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float)  # small ints: many ties
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        assert math.isnan(roc_auc(y, s))
        return
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert math.isclose(roc_auc(y, s), wins / (pos.size * neg.size))


def test_auc_extremes() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_evaluate_counts_against_hand_computed_confusion() -> None:
    # A model whose logit is the head bias only: every window gets the same score.
    spec = ModelSpec(n_sensors=1, window=3, hidden=1, kernel=1)
    state = {
        "conv1.weight": np.zeros((1, 2, 1), np.float32),
        "conv1.bias": np.zeros(1, np.float32),
        "conv2.weight": np.zeros((1, 1, 1), np.float32),
        "conv2.bias": np.zeros(1, np.float32),
        "head.weight": np.zeros((1, 4), np.float32),
        "head.bias": np.array([2.0], np.float32),
    }
    y = np.array([1, 1, 1, 0], np.float32)
    data = Dataset(np.zeros((4, 3, 2), np.float32), y, np.arange(4.0))
    m = evaluate(spec, serialize_state(state), data)
    p = 1 / (1 + math.exp(-2.0))
    assert m.accuracy == 0.75 and m.samples == 4
    assert math.isclose(m.f1, 2 * 3 / (2 * 3 + 1))
    assert m.roc_auc == 0.5
    assert math.isclose(m.loss, -(3 * math.log(p) + math.log(1 - p)) / 4, rel_tol=1e-6)

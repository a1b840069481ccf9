"""Targets that can't be fooled: no constant predictor reaches any target, on any set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.fl import (
    TARGET_METRICS,
    average_precision,
    chance_level,
    classification_metrics,
    judge_target,
)


@given(
    positives=st.integers(0, 300),
    negatives=st.integers(0, 300),
    score=st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1)),
    target=st.floats(1e-6, 1.0),
)
def test_a_constant_predictor_never_reaches_a_target(
    positives: int, negatives: int, score: float, target: float
) -> None:
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    if y.size == 0:
        return
    metrics = classification_metrics(y, np.full(y.size, score))
    for metric in TARGET_METRICS:
        verdict = judge_target(
            metric,
            target,
            metrics.value(metric),
            positives=metrics.positives,
            negatives=metrics.negatives,
            min_each=1,
        )
        assert not verdict.reached, (metric, verdict.reason)


def test_chance_levels_are_what_constant_predictors_score() -> None:
    y = np.r_[np.ones(3), np.zeros(97)]
    everything = classification_metrics(y, np.ones(100))
    nothing = classification_metrics(y, np.zeros(100))
    for metric in TARGET_METRICS:
        best = max(v for v in (everything.value(metric), nothing.value(metric)) if math.isfinite(v))
        assert best == pytest.approx(chance_level(metric, 3, 97))
    assert nothing.accuracy == 0.97 and nothing.f1 == 0.0  # the fooled run


def test_a_good_model_reaches_and_too_few_anomalies_are_not_judged() -> None:
    y = np.r_[np.ones(20), np.zeros(80)]
    p = np.r_[np.full(18, 0.9), np.full(2, 0.2), np.full(78, 0.1), np.full(2, 0.7)]
    m = classification_metrics(y, p)
    assert (m.tp, m.fn, m.tn, m.fp) == (18, 2, 78, 2)
    assert m.precision == pytest.approx(0.9) and m.recall == pytest.approx(0.9)
    assert m.balanced_accuracy == pytest.approx((0.9 + 78 / 80) / 2)
    assert m.base_rate == pytest.approx(0.2)
    ok = judge_target("f1", 0.85, m.f1, positives=20, negatives=80, min_each=10)
    assert ok.judged and ok.reached
    few = judge_target("f1", 0.85, m.f1, positives=20, negatives=80, min_each=25)
    assert not few.judged and not few.reached and "not judged" in few.reason


def test_average_precision_by_hand() -> None:
    # scores 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 0.5 * 1 + 0.5 * 2/3
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([1, 0, 0, 0], [0.5] * 4) == pytest.approx(0.25)
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))

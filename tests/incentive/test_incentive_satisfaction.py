"""The SP's performance and satisfaction (eqs. 11-12): hand formulas, -inf off the domain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aoichain.incentive import (
    Market,
    aoi,
    latency,
    performance_at,
    performance_from,
    performance_slope_in_alpha,
    satisfaction,
    satisfaction_by_type,
    satisfaction_from,
    satisfaction_of_performance,
)


def test_performance_is_the_weighted_margin_below_the_tolerances() -> None:
    # K = 200 s, H = 50 s; AoI 12 s and latency 8 s weighed 0.3 : 0.7
    assert performance_from(12.0, 8.0, 0.3, 200.0, 50.0) == pytest.approx(
        0.3 * (200 - 12) + 0.7 * (50 - 8), rel=1e-15
    )


def test_performance_broadcasts_alpha_per_type() -> None:
    out = performance_from(np.array([12.0, 12.0]), np.array([8.0, 8.0]), [0.0, 1.0], 200.0, 50.0)
    np.testing.assert_array_equal(out, [42.0, 188.0])


def test_satisfaction_of_performance_is_beta_ln_g() -> None:
    g = np.array([0.5, 1.0, 115.0])
    np.testing.assert_allclose(
        satisfaction_of_performance(g, 20.0), 20.0 * np.log(g), rtol=1e-15, atol=0
    )


def test_satisfaction_is_minus_inf_where_g_is_not_positive() -> None:
    with np.errstate(all="raise"):  # no warning may escape either
        out = satisfaction_of_performance(np.array([0.0, -3.0, -np.inf, np.nan, 2.0]), 20.0)
    assert np.all(out[:4] == -np.inf)
    assert out[4] == pytest.approx(20.0 * math.log(2.0))


def test_satisfaction_from_aoi_and_latency_is_the_hand_formula() -> None:
    alpha, K, H, beta = 0.4, 200.0, 50.0, 20.0
    got = satisfaction_from(12.0, 8.0, alpha, K, H, beta)
    assert got == pytest.approx(beta * math.log(alpha * (K - 12.0) + (1 - alpha) * (H - 8.0)))
    assert satisfaction_from(250.0, 60.0, alpha, K, H, beta) == -np.inf
    assert satisfaction_from(np.inf, 8.0, alpha, K, H, beta) == -np.inf


@pytest.mark.parametrize("formulas", ["paper", "corrected"])
def test_the_market_satisfaction_is_the_same_function_of_aoi_and_latency(formulas: str) -> None:
    market = Market.paper_default(formulas=formulas)
    f = np.linspace(1e-4, 0.09, 50)  # across g > 0 and beyond f = 1/(a t) = 0.1 Hz
    theta = 1.0 / f
    A = aoi(theta, t=market.t, a=market.a, formulas=market.formulas)
    D = latency(theta, t=market.t, a=market.a, formulas=market.formulas)
    from_freshness = satisfaction_from(A, D, market.alpha, market.K, market.H, market.beta)
    from_market = satisfaction(market, f)
    np.testing.assert_array_equal(np.isfinite(from_market), np.isfinite(from_freshness))
    finite = np.isfinite(from_market)
    assert finite.any() and not finite.all()
    np.testing.assert_allclose(from_market[finite], from_freshness[finite], rtol=1e-12)


def test_performance_at_is_minus_inf_without_a_collection_phase() -> None:
    market = Market()  # a t = 10 s: no cycle at f >= 0.1 Hz
    g = performance_at(market, np.array([1 / 16, 0.1, 0.2]))
    assert g[0] == pytest.approx(0.5 * (200 - 12) + 0.5 * (50 - 8), rel=1e-13)
    assert np.all(g[1:] == -np.inf)
    np.testing.assert_array_equal(
        satisfaction(market, [1 / 16, 0.1]),
        satisfaction_of_performance(performance_at(market, [1 / 16, 0.1]), market.beta),
    )


def test_satisfaction_by_type_has_a_row_per_type() -> None:
    f = np.array([1 / 40, 1 / 16, 1 / 11])
    per_type = Market(gammas=(0.001, 0.002), alpha=(0.2, 0.8))
    rows = satisfaction_by_type(per_type, f)
    assert rows.shape == (2, 3)
    for k, fk in enumerate(f):
        np.testing.assert_array_equal(rows[:, k], satisfaction(per_type, [fk, fk]))
    shared = Market(gammas=(0.001, 0.002, 0.003))
    rows = satisfaction_by_type(shared, f)
    assert rows.shape == (3, 3)
    np.testing.assert_array_equal(rows, np.tile(satisfaction(shared, f), (3, 1)))


def test_performance_slope_in_alpha_is_the_derivative_and_the_papers_condition() -> None:
    A, D = np.array([12.0, 150.0, 30.0]), np.array([8.0, 5.0, 60.0])
    slope = performance_slope_in_alpha(A, D, 200.0, 50.0)
    # g is linear in alpha, so its slope is g(alpha = 1) - g(alpha = 0)
    np.testing.assert_allclose(
        slope, performance_from(A, D, 1.0, 200.0, 50.0) - performance_from(A, D, 0.0, 200.0, 50.0)
    )
    np.testing.assert_array_equal(slope > 0, (200.0 - A) > (50.0 - D))

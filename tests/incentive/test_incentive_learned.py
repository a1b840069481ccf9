"""The learned satisfaction: fits a known curve, keeps the exact solver's premise."""

from __future__ import annotations

import numpy as np
import pytest

from aoichain.errors import InvalidInput
from aoichain.incentive import Market, aoi, fit_quality, fit_satisfaction, latency, solve

THETA = (np.array([1.0, 3.0, 6.0, 10.0, 15.0]) + 5.0) * 2.0
A = aoi(THETA, t=2.0, a=5.0, formulas="corrected")
D = latency(THETA, t=2.0, a=5.0, formulas="corrected")


@pytest.mark.parametrize("alpha", [1.0, 0.7, 0.25])
def test_it_fits_a_known_curve(alpha: float) -> None:
    score = 0.31 + 0.12 * np.log(40.0 - alpha * A - (1 - alpha) * D)
    fit = fit_quality(A, D, score)
    assert fit.r2 == pytest.approx(1.0, abs=1e-6)
    assert fit.predict(A, D) == pytest.approx(score, abs=1e-4)
    assert fit.alpha == pytest.approx(alpha, abs=0.011)
    learned = fit_satisfaction(Market.paper_default(), A, D, score, value=50.0)
    assert learned.market.beta == pytest.approx(50.0 * fit.q)
    assert learned.market.formulas == "corrected"
    if alpha == 1.0:
        assert (fit.p, fit.q, fit.C) == pytest.approx((0.31, 0.12, 40.0), rel=2e-3)


def test_a_curve_that_does_not_fall_buys_no_freshness() -> None:
    fit = fit_quality(A, np.zeros_like(A), 0.8 + 0.01 * A)  # better when staler
    assert fit.q == 0.0
    learned = fit_satisfaction(
        Market.paper_default(), A, np.zeros_like(A), 0.8 + 0.01 * A, value=100.0
    )
    contract = solve(learned.market, "CA", "integer")
    assert set(contract.c.tolist()) == {15.0}  # the cheapest item: nothing to buy


@pytest.mark.parametrize("scheme", ["CA", "CS", "CC"])
def test_the_fitted_market_is_concave_and_solved_exactly(scheme: str) -> None:
    score = np.array([0.60, 0.70, 0.74, 0.72, 0.66])  # best at a middle cycle
    learned = fit_satisfaction(Market.paper_default(c_max=15.0), A, D, score, value=100.0)
    assert learned.concave and learned.curvature <= 1e-9
    assert 0.0 < learned.fit.alpha < 1.0  # latency hurts too
    contract = solve(learned.market, scheme, "exact")  # type: ignore[arg-type]
    assert contract.converged, contract.message


def test_too_few_points_are_refused() -> None:
    with pytest.raises(InvalidInput, match="two or more distinct AoI"):
        fit_quality([3.0, 3.0], [1.0, 2.0], [0.5, 0.6])
    with pytest.raises(InvalidInput, match="'value' parameter"):
        fit_satisfaction(Market.paper_default(), [3.0, 4.0], [1.0, 2.0], [0.5, 0.4], value=0.0)

"""The learned satisfaction: fits a known curve, keeps the exact solver's premise."""

from __future__ import annotations

import numpy as np
import pytest

from aoichain.errors import InvalidInput
from aoichain.incentive import Market, fit_quality_curve, fit_satisfaction, solve


def test_it_fits_a_known_curve() -> None:
    aoi = np.array([2.5, 3.0, 4.0, 6.0, 9.0, 14.0])
    score = 0.31 + 0.12 * np.log(40.0 - aoi)
    p, q, K, r2 = fit_quality_curve(aoi, score)
    assert (p, q, K) == pytest.approx((0.31, 0.12, 40.0), rel=1e-5)
    assert r2 == pytest.approx(1.0)
    learned = fit_satisfaction(Market.paper_default(), aoi, score, value=50.0)
    assert learned.market.beta == pytest.approx(50.0 * 0.12, rel=1e-5)
    assert pytest.approx(40.0, rel=1e-5) == learned.market.K
    assert learned.market.alpha == 1.0
    assert learned.predict(aoi) == pytest.approx(score, rel=1e-6)


def test_a_curve_that_does_not_fall_buys_no_freshness() -> None:
    aoi = np.array([3.0, 4.0, 5.0, 6.0])
    p, q, _, _ = fit_quality_curve(aoi, 0.8 + 0.01 * aoi)  # better when staler
    assert q == 0.0 and p == pytest.approx(0.845)


@pytest.mark.parametrize("scheme", ["CA", "CS", "CC"])
def test_the_fitted_market_is_concave_and_solved_exactly(scheme: str) -> None:
    aoi = np.array([3.0, 3.3, 3.8, 4.5, 5.3])
    score = np.array([0.74, 0.73, 0.69, 0.66, 0.6])
    learned = fit_satisfaction(Market.paper_default(c_max=15.0), aoi, score, value=100.0)
    assert learned.concave and learned.curvature <= 1e-9
    contract = solve(learned.market, scheme, "exact")  # type: ignore[arg-type]
    assert contract.converged, contract.message


def test_too_few_points_are_refused() -> None:
    with pytest.raises(InvalidInput, match="two or more distinct AoI"):
        fit_quality_curve([3.0, 3.0], [0.5, 0.6])
    with pytest.raises(InvalidInput, match="'value' parameter"):
        fit_satisfaction(Market.paper_default(), [3.0, 4.0], [0.5, 0.4], value=0.0)

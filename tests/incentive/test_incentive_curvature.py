"""Second differences: parabolas, concave against convex rows, infeasible points skipped."""

from __future__ import annotations

import numpy as np
import pytest

from aoichain.incentive import (
    Market,
    largest_relative_second_difference,
    objective_by_type,
    second_differences,
)


def test_second_differences_of_a_parabola_are_constant() -> None:
    x = np.linspace(0.0, 1.0, 11)  # step 0.1
    rows = np.vstack([3 * x**2, -(x**2)])
    np.testing.assert_allclose(second_differences(rows)[0], 6 * 0.1**2, rtol=1e-12)
    np.testing.assert_allclose(second_differences(rows)[1], -2 * 0.1**2, rtol=1e-12)
    np.testing.assert_allclose(second_differences(rows.T, axis=0), second_differences(rows).T)


def test_largest_relative_second_difference_tells_concave_from_convex() -> None:
    x = np.linspace(0.1, 2.0, 50)
    assert largest_relative_second_difference(np.vstack([np.log(x), -(x**2)])) <= 0
    assert largest_relative_second_difference(np.vstack([np.log(x), x**2])) > 0


def test_infeasible_points_are_skipped_without_a_warning() -> None:
    y = np.array([[-np.inf, -np.inf, 0.0, -1.0, -4.0, -9.0]])
    with np.errstate(all="raise"):
        # second differences -2 and -2 where three neighbours are finite; scale 9
        assert largest_relative_second_difference(y) == pytest.approx(-2.0 / 9.0, rel=1e-15)
        assert largest_relative_second_difference(np.full((2, 5), -np.inf)) == -np.inf


def test_the_paper_markets_ca_objectives_are_concave() -> None:
    for formulas in ("paper", "corrected"):
        market = Market.paper_default(formulas=formulas, c_max=15.0)
        f = np.linspace(*market.f_bounds, 2001)
        assert largest_relative_second_difference(objective_by_type(market, f)) <= 1e-12

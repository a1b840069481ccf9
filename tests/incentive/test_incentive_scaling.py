"""Log-log slopes: the exponent of a power law, and the claimed logarithmic cost (erratum 4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.incentive import log_cost, log_log_slope


@given(st.floats(-3.0, 3.0), st.floats(1e-3, 1e3))
def test_the_slope_of_a_power_law_is_its_exponent(k: float, scale: float) -> None:
    x = np.array([1.0, 2.0, 5.0, 40.0])
    assert log_log_slope(x, scale * x**k) == pytest.approx(k, abs=1e-9)


def test_a_logarithmic_cost_has_a_small_slope_and_a_grid_scan_slope_one() -> None:
    phi = np.array([4e-6, 2e-6, 1e-6, 5e-7, 2.5e-7])
    span = 1 / 12 - 1e-5  # f_max - f_min of the paper's market at a = 5, t = 2 s
    claimed = log_log_slope(1 / phi, log_cost(span, phi, n=10))
    assert 0.05 < claimed < 0.15  # about 1/ln(span/phi)
    assert log_log_slope(1 / phi, span / phi) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("x", "y"),
    [([1.0], [1.0]), ([1.0, 2.0], [1.0, 0.0]), ([2.0, 2.0], [1.0, 3.0]), ([1.0, 2.0], [1.0])],
)
def test_bad_series_raise(x: list[float], y: list[float]) -> None:
    with pytest.raises(ValueError, match="log_log_slope"):
        log_log_slope(x, y)

"""The flat baseline: one item for every type."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.incentive import InvalidMarket, Market, solve
from aoichain.incentive.flat import flat_contract


@pytest.mark.parametrize("formulas", ["paper", "corrected"])
@pytest.mark.parametrize("method", ["exact", "integer"])
def test_flat_is_one_feasible_item_and_never_beats_ca(formulas: str, method: str) -> None:
    market = Market.paper_default(formulas=formulas, c_max=15)
    flat = flat_contract(market, method=method)
    assert np.ptp(flat.f) == 0 and np.ptp(flat.reward) == 0
    assert flat.feasibility.ic and flat.feasibility.ir
    assert flat.worker_utility[0] == pytest.approx(0.0, abs=1e-12)  # costliest type's IR binds
    ca = solve(market, scheme="CA", method=method)
    assert flat.sp_utility_total <= ca.sp_utility_total + 1e-9


def test_integer_flat_is_the_best_whole_slot_item() -> None:
    market = Market.paper_default()
    best = flat_contract(market, method="integer")
    for c in range(1, 16):
        assert best.sp_utility_total >= flat_contract(market, c=c).sp_utility_total - 1e-9


@given(alpha=st.floats(0.0, 1.0), a=st.integers(1, 12))
def test_continuous_flat_beats_every_whole_slot_item(alpha: float, a: int) -> None:
    market = Market.paper_default(alpha=alpha, a=a, c_max=15)
    best = flat_contract(market, method="exact").sp_utility_total
    for c in (1, 5, 10, 15):
        assert best >= flat_contract(market, c=c).sp_utility_total - 1e-9 * max(1.0, abs(best))


def test_imposed_slots_set_the_cycle() -> None:
    market = Market.paper_default()
    flat = flat_contract(market, c=7)
    assert flat.c == pytest.approx(np.full(10, 7.0))
    assert flat.theta[0] == pytest.approx((7 + 5) * 2.0)


@pytest.mark.parametrize("c", [0, 0.5, 16])
def test_slots_outside_the_market_are_refused(c: float) -> None:
    with pytest.raises(InvalidMarket, match="'c' parameter of flat_contract"):
        flat_contract(Market.paper_default(c_max=15), c=c)

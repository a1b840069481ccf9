"""AoI and latency closed forms (Sec. III-A, SPEC): hand values, slot rules, convexity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.errors import InvalidInput
from aoichain.incentive import (
    aoi,
    at_bound,
    collection_slots,
    cycle,
    latency,
    printed_aoi,
    printed_aoi_factor,
    printed_latency,
    printed_latency_excess,
)


def slot_rule_averages(c: int, a: int, t: float) -> tuple[float, float]:
    """Average AoI and latency over one cycle, request by request (SPEC's slot rules)."""
    ages, waits = [], []
    for slot in range(1, c + a + 1):
        if slot <= c:
            waits.append((c + 2 - slot) * t)
            ages.append(t)
        elif slot == c + 1:
            waits.append(t)
            ages.append(t)
        else:
            waits.append(t)
            ages.append((slot - c) * t)
    return sum(ages) / len(ages), sum(waits) / len(waits)


def test_paper_forms_match_hand_computed_values() -> None:
    # t = 2, a = 5, c = 3: theta = 16 s, theta - a t = 6 s.
    # A = t theta/(theta-at) + t^2 (a^2-a)/(2(theta-at)) = 32/6 + 80/12 = 12
    # D = 6^3/(2*2*16) + 3*36/(2*16) + 5*4/16 = 3.375 + 3.375 + 1.25 = 8
    assert aoi(16.0, t=2.0, a=5.0, formulas="paper") == pytest.approx(12.0, rel=1e-14)
    assert latency(16.0, t=2.0, a=5.0, formulas="paper") == pytest.approx(8.0, rel=1e-14)


def test_corrected_forms_match_hand_computed_values() -> None:
    # eq. (3): t/(c+a) [c + 1 + (a-1)(a+2)/2] = 2/8 * (4 + 14) = 4.5
    # latency: c/(c+a) t (c+3)/2 + a t/(c+a) = 3/8 * 6 + 10/8 = 3.5
    assert aoi(16.0, t=2.0, a=5.0, formulas="corrected") == pytest.approx(4.5, rel=1e-14)
    assert latency(16.0, t=2.0, a=5.0, formulas="corrected") == pytest.approx(3.5, rel=1e-14)


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_corrected_forms_equal_the_slot_rule_averages(t: float) -> None:
    for c in range(1, 16):
        for a in range(1, 16):
            age, wait = slot_rule_averages(c, a, t)
            theta = (c + a) * t
            assert aoi(theta, t=t, a=a, formulas="corrected") == pytest.approx(age, rel=1e-12)
            assert latency(theta, t=t, a=a, formulas="corrected") == pytest.approx(wait, rel=1e-12)


def test_paper_forms_differ_from_the_slot_rules() -> None:
    """Errata 1-2: the printed forms are not what the slot rules average to."""
    age, wait = slot_rule_averages(3, 5, 2.0)
    assert aoi(16.0, t=2.0, a=5.0) != pytest.approx(age, rel=1e-3)
    assert latency(16.0, t=2.0, a=5.0) != pytest.approx(wait, rel=1e-3)


@pytest.mark.parametrize("formulas", ["paper", "corrected"])
def test_no_collection_phase_is_infinite_and_arrays_keep_their_shape(formulas: str) -> None:
    theta = np.array([[5.0, 10.0], [10.5, 40.0]])  # a t = 10
    for fn in (aoi, latency):
        out = fn(theta, t=2.0, a=5.0, formulas=formulas)
        assert out.shape == (2, 2)
        assert np.isinf(out[0]).all() and np.isfinite(out[1]).all()


def test_unknown_formulas_are_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"'formulas'.*paper.*corrected.*'exact'"):
        aoi(16.0, t=2.0, a=5.0, formulas="exact")  # type: ignore[arg-type]


@given(
    t=st.floats(0.05, 20.0),
    a=st.floats(1.0, 20.0),
    formulas=st.sampled_from(["paper", "corrected"]),
)
def test_aoi_and_latency_are_convex_in_theta_and_in_f(t: float, a: float, formulas: str) -> None:
    """The premise of the exact solver: convex AoI/latency make every objective concave."""
    lo = a * t * (1 + 1e-3)
    theta = np.linspace(lo, lo * 50, 801)
    f = np.linspace(1 / (lo * 50), 1 / lo, 801)
    for fn in (aoi, latency):
        for y in (fn(theta, t=t, a=a, formulas=formulas), fn(1 / f, t=t, a=a, formulas=formulas)):
            second = y[2:] - 2 * y[1:-1] + y[:-2]
            assert np.all(second >= -1e-12 * np.max(np.abs(y)))


def test_cycle_and_collection_slots_invert_each_other() -> None:
    c = np.array([1.0, 3.0, 14.5])
    theta = cycle(c, t=2.0, a=5.0)
    np.testing.assert_array_equal(theta, [12.0, 16.0, 39.0])
    np.testing.assert_allclose(collection_slots(theta, t=2.0, a=5.0), c, rtol=1e-15)


def test_printed_aoi_is_eq5_inside_the_domain_and_negative_below_it() -> None:
    theta = np.array([10.5, 16.0, 40.0])  # a t = 10 s
    np.testing.assert_allclose(
        printed_aoi(theta, t=2.0, a=5.0), aoi(theta, t=2.0, a=5.0, formulas="paper"), rtol=1e-13
    )
    # theta = a t / 2 = 5 s, theta - a t = -5 s: 2 * 5/(-5) + 4 * 20/(-10) = -10 s (erratum 3)
    assert printed_aoi(5.0, t=2.0, a=5.0) == pytest.approx(-10.0, rel=1e-15)
    assert np.all(printed_aoi(np.linspace(0.5, 9.5, 10), t=2.0, a=5.0) < 0)


def test_printed_latency_is_eq4_inside_the_domain_and_negative_somewhere_below_it() -> None:
    theta = np.array([10.5, 16.0, 40.0])  # a t = 10 s
    np.testing.assert_allclose(
        printed_latency(theta, t=2.0, a=5.0),
        latency(theta, t=2.0, a=5.0, formulas="paper"),
        rtol=1e-13,
    )
    # theta = 2 s (c = -4): t (c^3 + 3 c^2 + 2 a) / (2 (c + a)) = 2 (-64 + 48 + 10)/2 = -6 s
    assert printed_latency(2.0, t=2.0, a=5.0) == pytest.approx(-6.0, rel=1e-14)
    # with a = 2 the numerator c^3 + 3 c^2 + 4 stays positive on (-2, 0)
    assert np.all(printed_latency(np.linspace(0.1, 3.9, 20), t=2.0, a=2.0) > 0)


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_the_printed_forms_overstate_by_the_errata_amounts(t: float) -> None:
    for c in range(1, 16):
        for a in range(1, 16):
            theta = cycle(c, t=t, a=a)
            extra = latency(theta, t=t, a=a, formulas="paper") - latency(
                theta, t=t, a=a, formulas="corrected"
            )
            assert extra == pytest.approx(printed_latency_excess(c, t=t, a=a), rel=1e-9, abs=1e-9)
            ratio = aoi(theta, t=t, a=a, formulas="paper") / aoi(
                theta, t=t, a=a, formulas="corrected"
            )
            assert ratio == pytest.approx(printed_aoi_factor(c, a=a), rel=1e-12)
    # the hand values at t = 2, a = 5, c = 3: latency 8 s vs 3.5 s, AoI 12 s vs 4.5 s
    assert printed_latency_excess(3, t=2.0, a=5.0) == pytest.approx(4.5, rel=1e-15)
    assert printed_aoi_factor(3, a=5.0) == pytest.approx(12.0 / 4.5, rel=1e-15)
    assert printed_latency_excess(1, t=2.0, a=5.0) == 0.0


def test_at_bound_names_the_bound_a_phase_sits_at() -> None:
    c = np.array([1.0, 1.0 + 1e-12, 7.3, 15.0, 15.0 * (1 - 1e-12), 20.0])
    assert at_bound(c, c_min=1.0, c_max=15.0).tolist() == [-1, -1, 0, 1, 1, 0]
    assert at_bound(c, c_min=1.0, c_max=None).tolist() == [-1, -1, 0, 0, 0, 0]

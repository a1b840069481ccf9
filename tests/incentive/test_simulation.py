"""The slot simulator against the slot rules of Sec. III-A and the closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.errors import InvalidInput
from aoichain.incentive import aoi, latency
from aoichain.incentive.simulation import (
    SimulationResult,
    last_refresh_time,
    request_aoi_latency,
    simulate,
)


def _slot_rules(c: int, a: int, t: float, n_slots: int, phase: int) -> tuple[list, list]:
    """The rules of Sec. III-A, written out one slot at a time (the reference)."""
    ages, delays = [], []
    for s in range(n_slots):
        slot = (s - phase) % (c + a) + 1  # 1-based slot of the cycle
        if slot <= c:
            delays.append((c + 2 - slot) * t)
            ages.append(t)
        elif slot == c + 1:
            delays.append(t)
            ages.append(t)
        else:
            delays.append(t)
            ages.append((slot - c) * t)
    return ages, delays


@pytest.mark.parametrize("c", [1, 2, 3, 7])
@pytest.mark.parametrize("a", [1, 2, 5])
@pytest.mark.parametrize("phase", [0, 3, -2])
def test_matches_slot_rules_by_enumeration(c: int, a: int, phase: int) -> None:
    t = 2.0
    n = 4 * (c + a) + 3
    ages, delays = _slot_rules(c, a, t, n, phase)
    got_aoi, got_latency = request_aoi_latency(c, a, t, np.arange(n), phase=phase)
    np.testing.assert_array_equal(got_aoi, ages)
    np.testing.assert_array_equal(got_latency, delays)
    result = simulate(c, a, t, n, phase=phase)
    assert isinstance(result, SimulationResult)
    assert result.mean_aoi == pytest.approx(np.mean(ages), rel=1e-14)
    assert result.mean_latency == pytest.approx(np.mean(delays), rel=1e-14)


def test_one_cycle_by_hand() -> None:
    # c = 3, a = 2, t = 2: slots 1..3 collect, 4 is c+1, 5 is the first stale slot.
    got_aoi, got_latency = request_aoi_latency(3, 2, 2.0, np.arange(5))
    assert got_latency.tolist() == [8.0, 6.0, 4.0, 2.0, 2.0]
    assert got_aoi.tolist() == [2.0, 2.0, 2.0, 2.0, 4.0]


def _corrected(c: float, a: float, t: float) -> tuple[float, float]:
    theta = (c + a) * t
    return (
        float(aoi(theta, t=t, a=a, formulas="corrected")),
        float(latency(theta, t=t, a=a, formulas="corrected")),
    )


@given(
    c=st.integers(1, 15),
    a=st.integers(1, 15),
    extra=st.integers(0, 29),
    phase=st.integers(-40, 40),
)
def test_long_horizon_matches_corrected_forms(c: int, a: int, extra: int, phase: int) -> None:
    t = 2.0
    want_aoi, want_latency = _corrected(c, a, t)
    # A horizon that is not a whole number of cycles: within 0.1 %.
    result = simulate(c, a, t, 20_000 + extra, phase=phase)
    assert result.mean_aoi == pytest.approx(want_aoi, rel=1e-3)
    assert result.mean_latency == pytest.approx(want_latency, rel=1e-3)
    # Over whole cycles: exact up to rounding.
    whole = simulate(c, a, t, 7 * (c + a), phase=phase)
    assert whole.mean_aoi == pytest.approx(want_aoi, rel=1e-12)
    assert whole.mean_latency == pytest.approx(want_latency, rel=1e-12)


@given(c=st.integers(1, 15), a=st.integers(1, 15))
def test_paper_forms_differ_as_the_errata_say(c: int, a: int) -> None:
    t = 2.0
    theta = (c + a) * t
    sim = simulate(c, a, t, c + a)
    paper_aoi = float(aoi(theta, t=t, a=a, formulas="paper"))
    paper_latency = float(latency(theta, t=t, a=a, formulas="paper"))
    # Erratum 2: eq. (5) has t/c where eq. (3) has t/(c+a): off by exactly (c+a)/c.
    assert paper_aoi / sim.mean_aoi == pytest.approx((c + a) / c, rel=1e-12)
    # Erratum 1: eq. (2)/(4) multiply the collection term c/(c+a) t(c+3)/2 by an extra c.
    collection_term = c / (c + a) * t * (c + 3) / 2
    assert paper_latency - sim.mean_latency == pytest.approx(
        (c - 1) * collection_term, rel=1e-9, abs=1e-9
    )


def test_paper_forms_match_only_where_the_extra_factor_is_one() -> None:
    t, a = 2.0, 5
    sim = simulate(1, a, t, 1 + a)
    assert float(latency((1 + a) * t, t=t, a=a, formulas="paper")) == pytest.approx(
        sim.mean_latency, rel=1e-12
    )
    sim = simulate(5, a, t, 5 + a)
    # At the paper's default a = 5, c = 5: latency 21 s against 5 s, AoI 2x the simulated value.
    assert float(latency(10 * t, t=t, a=a, formulas="paper")) / sim.mean_latency == pytest.approx(
        4.2, rel=1e-12
    )
    assert float(aoi(10 * t, t=t, a=a, formulas="paper")) / sim.mean_aoi == pytest.approx(
        2.0, rel=1e-12
    )


@given(
    c=st.floats(0.05, 15.0),
    a=st.floats(0.0, 15.0),
    phase=st.floats(-20.0, 20.0),
)
def test_non_integer_c_uses_the_continuous_reading(c: float, a: float, phase: float) -> None:
    t = 1.5
    slots = np.arange(-50, 50)
    got_aoi, got_latency = request_aoi_latency(c, a, t, slots, phase=phase)
    cycle = (c + a) * t
    for s, age, delay in zip(slots, got_aoi, got_latency, strict=True):
        tau = ((s - phase) * t) % cycle
        if min(tau, abs(tau - c * t), cycle - tau) < 1e-6 * cycle:
            continue  # on a phase boundary: rounding decides the side
        if tau < c * t:
            want_delay, want_age = (c * t - tau) + t, t
        else:
            want_delay, want_age = t, (tau - c * t) + t
        assert delay == pytest.approx(want_delay, rel=1e-9, abs=1e-9)
        assert age == pytest.approx(want_age, rel=1e-9, abs=1e-9)


@given(
    c=st.integers(1, 15),
    a=st.integers(0, 15),
    phase=st.integers(-30, 30),
)
def test_aoi_is_age_of_the_cache_read_when_service_starts(c: int, a: int, phase: int) -> None:
    t = 2.0
    slots = np.arange(0, 3 * (c + a) + 5)
    ages, delays = request_aoi_latency(c, a, t, slots, phase=phase)
    answered = slots * t + delays
    service_start = answered - t  # service takes one slot
    refresh, start = last_refresh_time(c, a, t, service_start, phase=phase)
    np.testing.assert_allclose(answered - refresh, ages, rtol=1e-12)
    np.testing.assert_allclose(refresh - start, c * t, rtol=1e-12)
    assert np.all(refresh <= service_start)
    assert np.all(service_start < refresh + (c + a) * t)


def test_last_refresh_time_scalar_and_boundaries() -> None:
    # c = 3, a = 2, t = 2: collections [0, 6), [10, 16), ...; refreshes at 6, 16, ...
    assert last_refresh_time(3, 2, 2.0, 6.0) == (6.0, 0.0)
    assert last_refresh_time(3, 2, 2.0, 15.999) == (6.0, 0.0)
    assert last_refresh_time(3, 2, 2.0, 16.0) == (16.0, 10.0)
    # Before the first refresh the cycle extends backwards.
    assert last_refresh_time(3, 2, 2.0, 0.0) == (-4.0, -10.0)
    assert last_refresh_time(3, 2, 2.0, 6.0, phase=1) == (-2.0, -8.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"c": 0}, "'c'"),
        ({"c": -1.0}, "'c'"),
        ({"c": float("nan")}, "'c'"),
        ({"a": -1}, "'a'"),
        ({"t": 0.0}, "'t'"),
        ({"t": float("inf")}, "'t'"),
        ({"phase": float("nan")}, "'phase'"),
        ({"c": True}, "'c'"),
    ],
)
def test_rejects_bad_cycle_parameters(kwargs: dict, name: str) -> None:
    args = {"c": 3, "a": 2, "t": 2.0, "phase": 0} | kwargs
    with pytest.raises(InvalidInput, match=name):
        request_aoi_latency(args["c"], args["a"], args["t"], [0, 1], phase=args["phase"])
    with pytest.raises(InvalidInput, match=name):
        simulate(args["c"], args["a"], args["t"], 10, phase=args["phase"])
    with pytest.raises(InvalidInput, match=name):
        last_refresh_time(args["c"], args["a"], args["t"], 1.0, phase=args["phase"])


@pytest.mark.parametrize("slots", [[0.5], [True, False], ["1"], [float("nan")]])
def test_rejects_non_integer_slots(slots: list) -> None:
    with pytest.raises(InvalidInput, match="'slots'"):
        request_aoi_latency(3, 2, 2.0, slots)


@pytest.mark.parametrize("n_slots", [0, -5, 2.5, True])
def test_rejects_bad_horizon(n_slots: object) -> None:
    with pytest.raises(InvalidInput, match="'n_slots'"):
        simulate(3, 2, 2.0, n_slots)  # type: ignore[arg-type]


def test_rejects_non_finite_time() -> None:
    with pytest.raises(InvalidInput, match="'now_s'"):
        last_refresh_time(3, 2, 2.0, [1.0, float("inf")])

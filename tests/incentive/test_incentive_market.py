"""The Market boundary: defaults, every rejection rule, derived values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from aoichain.config import build_model
from aoichain.errors import InvalidInput
from aoichain.incentive import (
    InvalidMarket,
    Market,
    equal_types,
    satisfaction,
    virtual_costs,
)

TWO = {"gammas": (0.001, 0.002), "probs": (0.5, 0.5)}


def test_paper_default_is_the_spec_setting() -> None:
    m = Market.paper_default()
    assert (m.t, m.a, m.beta, m.K, m.H, m.workers) == (2.0, 5.0, 20.0, 200.0, 50.0, 20)
    assert m.n_types == 10 and m.alpha == 0.5 and m.formulas == "paper"
    np.testing.assert_allclose(m.gammas, np.linspace(0.001, 0.01, 10), rtol=0, atol=1e-18)
    assert m.probs == (0.1,) * 10
    assert (m.c_min, m.c_max) == (1.0, None)
    assert m == Market()


def test_paper_default_overrides_and_types() -> None:
    m = Market.paper_default(types=4, alpha=0.2, formulas="corrected", c_max=15)
    assert m.n_types == 4 and m.probs == (0.25,) * 4 and m.gammas[-1] == pytest.approx(0.01)
    assert m.alpha == 0.2 and m.formulas == "corrected" and m.c_max == 15.0
    assert Market.paper_default(types=1).gammas == (0.001,)


def test_probs_default_to_equal_when_only_types_are_given() -> None:
    assert Market(gammas=(0.001, 0.002, 0.004)).probs == pytest.approx((1 / 3,) * 3)


def test_market_is_frozen() -> None:
    m = Market()
    with pytest.raises(ValidationError):
        m.t = 3.0  # type: ignore[misc]


NOT_MONOTONE_FEASIBLE = {"gammas": (0.001, 0.002), "alpha": (0.0, 1.0), "K": 3.0}

# (overrides, the parameter the message must name, a fragment of the rule)
INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"t": 0}, "'t'", "> 0"),
    ({"t": -2.0}, "'t'", "> 0"),
    ({"t": math.inf}, "'t'", "finite"),
    ({"t": math.nan}, "'t'", "finite"),
    ({"a": 0.5}, "'a'", ">= 1"),
    ({"beta": 0}, "'beta'", "> 0"),
    ({"K": -1}, "'K'", "> 0"),
    ({"H": 0}, "'H'", "> 0"),
    ({"workers": 0}, "'workers'", ">= 1"),
    ({"workers": 2.5}, "'workers'", "integer"),
    ({"gammas": ()}, "'gammas'", "non-empty"),
    ({"gammas": "0.001"}, "'gammas'", "sequence"),
    ({"gammas": (0.002, 0.001)}, "'gammas'", "strictly ascending"),
    ({"gammas": (0.001, 0.001)}, "'gammas'", "strictly ascending"),
    ({"gammas": (-0.001, 0.002)}, "'gammas'", "> 0"),
    ({"gammas": (0.001, math.inf)}, "'gammas'", "sequence"),
    ({**TWO, "probs": (-0.1, 1.1)}, "'probs'", ">= 0"),
    ({**TWO, "probs": (0.5, 0.4)}, "'probs'", "sum to 1"),
    ({**TWO, "probs": (0.5, 0.5 + 1e-8)}, "'probs'", "sum to 1"),
    ({**TWO, "probs": (0.2, 0.3, 0.5)}, "'probs'", "one probability per type"),
    ({"alpha": 1.7}, "'alpha'", "range [0, 1]"),
    ({"alpha": -0.1}, "'alpha'", "range [0, 1]"),
    ({"alpha": True}, "'alpha'", "range [0, 1]"),
    ({**TWO, "alpha": (0.5, 1.2)}, "'alpha'", "range [0, 1]"),
    ({**TWO, "alpha": (0.5, 0.5, 0.5)}, "'alpha'", "one per type"),
    ({"formulas": "exact"}, "'formulas'", "paper"),
    ({"c_min": 0}, "'c_min'", "> 0"),
    ({"c_min": 3, "c_max": 2}, "'c_max'", ">= c_min"),
    ({"colour": "blue"}, "'colour'", "Extra inputs"),
    ({"K": 1.0, "H": 1.0}, "Market is invalid", "g <= 0 for every type"),
    ({"c_min": 1e6}, "Market is invalid", "set c_max"),
    (NOT_MONOTONE_FEASIBLE, "Market is invalid", "no non-decreasing"),
]


@pytest.mark.parametrize(("overrides", "name", "rule"), INVALID)
def test_every_invalid_value_gets_a_clear_error(
    overrides: dict[str, Any], name: str, rule: str
) -> None:
    with pytest.raises(InvalidMarket) as info:
        Market(**overrides)
    text = str(info.value)
    assert name in text and rule in text
    assert isinstance(info.value, InvalidInput)
    assert "\n" not in text and "pydantic" not in text


def test_every_bad_field_is_named_at_once_with_its_source() -> None:
    with pytest.raises(InvalidMarket) as info:
        Market.from_mapping({"t": -1, "alpha": 1.7, "a": 0}, source="run.toml [market]")
    text = str(info.value)
    for key in ("'t'", "'alpha'", "'a'", "run.toml [market]", "1.7"):
        assert key in text


def test_build_model_on_market_gives_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="'alpha'"):
        build_model(Market, {"alpha": 2}, source="x.toml")


def test_huge_inputs_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidMarket) as info:
        Market(gammas=list(range(5000, 0, -1)))
    assert len(str(info.value)) < 400


def test_equal_types_rejects_non_positive_counts() -> None:
    with pytest.raises(InvalidMarket, match="integer >= 1"):
        equal_types(0)
    with pytest.raises(InvalidMarket, match="integer >= 1"):
        equal_types(2.5)  # type: ignore[arg-type]


def test_virtual_costs_follow_their_definition() -> None:
    m = Market(gammas=(0.001, 0.003, 0.004, 0.009), probs=(0.1, 0.5, 0.0, 0.4))
    g, q = m.gammas, m.probs
    expected = [
        q[n] / g[n] + (1 / g[n] - 1 / g[n + 1]) * sum(q[n + 1 :]) if n < 3 else q[n] / g[n]
        for n in range(4)
    ]
    np.testing.assert_allclose(virtual_costs(m), expected, rtol=1e-14)


def test_satisfaction_is_beta_log_g_and_minus_inf_where_infeasible() -> None:
    m = Market()  # theta = 16 s: paper AoI 12 s, latency 8 s (see the freshness tests)
    g = 0.5 * (200 - 12) + 0.5 * (50 - 8)
    assert satisfaction(m, 1 / 16) == pytest.approx(20 * math.log(g), rel=1e-13)
    out = satisfaction(m, np.array([1e-5, 1 / 16, 1 / 10, 0.2]))  # a t = 10 s
    assert out[0] == -np.inf and np.isfinite(out[1]) and np.isinf(out[2:]).all()


def test_per_type_alpha_gives_per_type_satisfaction() -> None:
    m = Market(gammas=(0.001, 0.002), alpha=(0.2, 0.8))
    out = satisfaction(m, np.array([1 / 16, 1 / 16]))
    for n, alpha in enumerate((0.2, 0.8)):
        g = alpha * (200 - 12) + (1 - alpha) * (50 - 8)
        assert out[n] == pytest.approx(20 * math.log(g), rel=1e-13)


def test_bounds_of_the_allowed_cycles() -> None:
    m = Market(c_min=2, c_max=7)
    assert m.theta_bounds == (14.0, 24.0)
    assert m.f_bounds == (1 / 24, 1 / 14)
    assert Market().theta_bounds == (12.0, pytest.approx(1e5))

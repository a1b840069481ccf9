"""Menus, rewards (eq. 18), utilities, IC/IR and the Contract record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.incentive import (
    Market,
    best_utilities,
    build_contract,
    choose_item,
    feasibility,
    optimal_rewards,
    satisfaction,
    solve,
    utility_matrix,
    virtual_costs,
)

ITEM_KEYS = [
    "type",
    "gamma",
    "q",
    "alpha",
    "f",
    "theta",
    "c",
    "reward",
    "worker_utility",
    "aoi",
    "latency",
    "sp_utility",
]


def test_optimal_rewards_by_hand() -> None:
    # R_1 = f_1/gamma_1 = 1; R_2 = R_1 + (f_2 - f_1)/gamma_2 = 1 + 2/2 = 2; R_3 = 2 + 0/4
    np.testing.assert_allclose(optimal_rewards([1.0, 2.0, 4.0], [1.0, 3.0, 3.0]), [1.0, 2.0, 2.0])


def test_utility_matrix_entries() -> None:
    u = utility_matrix([1.0, 2.0], [1.0, 3.0], [1.0, 2.0])
    np.testing.assert_allclose(u, [[0.0, -1.0], [0.5, 0.5]])


def test_choose_item_prefers_the_best_breaks_ties_upward_and_declines() -> None:
    f, r = [1.0, 3.0], [1.0, 2.0]
    assert choose_item(1.0, f, r) == 0
    assert choose_item(2.0, f, r) == 1  # tie 0.5 = 0.5 goes to the higher item
    assert choose_item(10.0, f, r) == 1
    assert choose_item(0.5, f, r) == -1  # -1 and -4: declines
    assert choose_item(1.0, [1.0], [1.0 - 1e-13]) == 0  # rounding is not a refusal


def test_every_type_picks_its_own_item_from_an_optimal_menu() -> None:
    """With eq. (18) every type is indifferent with the item below: rounding must not tip it."""
    c = solve(Market.paper_default(types=200))
    for n in range(200):
        assert choose_item(c.gamma[n], c.f, c.reward) == n


def _chain_needing_many_passes(k: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(k + 2, dtype=float)
    y = np.sqrt(x)
    y[-1] = 1e6  # every middle point lies under the chord to this one
    return x, y


@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_best_utilities_equal_the_matrix_row_maxima(n: int, seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    gammas = np.sort(rng.uniform(0.1, 10, n))
    f = rng.uniform(0, 5, n)
    if ties:
        f = np.round(f)  # repeated f: only the best reward at each f matters
    r = rng.uniform(-3, 3, n)
    np.testing.assert_allclose(
        best_utilities(gammas, f, r),
        utility_matrix(gammas, f, r).max(axis=1),
        rtol=1e-12,
        atol=1e-12,
    )


def test_best_utilities_on_collinear_and_deep_hulls() -> None:
    gammas = np.linspace(0.5, 3.0, 7)
    f = np.linspace(0, 1, 7)
    r = 2 * f + 1  # collinear
    np.testing.assert_allclose(
        best_utilities(gammas, f, r), utility_matrix(gammas, f, r).max(axis=1), rtol=1e-13
    )
    x, y = _chain_needing_many_passes(300)
    g = np.geomspace(1e-7, 1e3, x.size)
    np.testing.assert_allclose(
        best_utilities(g, x, y), utility_matrix(g, x, y).max(axis=1), rtol=1e-13
    )


def test_feasibility_reports_violations_from_all_pairs() -> None:
    gammas, f, r = [1.0, 2.0, 4.0], [1.0, 2.0, 3.0], [1.0, 1.2, 2.0]
    u = utility_matrix(gammas, f, r)
    rep = feasibility(gammas, f, r)
    assert rep.max_ic_violation == pytest.approx(np.max(u.max(axis=1) - np.diag(u)))
    assert rep.min_worker_utility == pytest.approx(np.min(np.diag(u)))
    assert not rep.ic and rep.max_ic_violation > 0
    assert rep.ir  # own utilities 0, 0.2, 1.25
    rep2 = feasibility(gammas, f, [0.5, 1.2, 2.0])
    assert not rep2.ir and rep2.min_worker_utility == pytest.approx(-0.5)


def test_eq18_rewards_make_any_monotone_menu_ic_and_ir() -> None:
    gammas = np.array([0.001, 0.002, 0.005, 0.009])
    f = np.array([0.02, 0.02, 0.05, 0.07])
    rep = feasibility(gammas, f, optimal_rewards(gammas, f))
    assert rep.ic and rep.ir and rep.min_worker_utility == pytest.approx(0.0, abs=1e-12)


@st.composite
def markets(draw: st.DrawFn) -> Market:
    n = draw(st.integers(1, 8))
    gammas = np.cumsum(draw(st.lists(st.floats(1e-4, 3e-3), min_size=n, max_size=n)))
    weights = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))) + 1e-3
    per_type = draw(st.booleans())
    alpha = (
        tuple(draw(st.lists(st.floats(0.2, 0.8), min_size=n, max_size=n)))
        if per_type
        else draw(st.floats(0.1, 0.9))
    )
    return Market(
        gammas=tuple(gammas),
        probs=tuple(weights / weights.sum()),
        alpha=alpha,
        a=draw(st.floats(1, 10)),
        formulas=draw(st.sampled_from(["paper", "corrected"])),
    )


@given(market=markets(), seed=st.integers(0, 2**32 - 1))
def test_virtual_cost_identity(market: Market, seed: int) -> None:
    """With eq. (18): sum M Q_n (G_n - R_n) = sum M (Q_n G_n - b_n f_n), for any monotone f."""
    lo, hi = market.domain.left.max(), market.domain.right.min()
    if not lo < hi:
        return
    rng = np.random.default_rng(seed)
    f = np.sort(1 / rng.uniform(lo, hi, market.n_types))
    m, q = market.workers, market.prob_array
    sat = satisfaction(market, f)
    direct = np.sum(m * q * (sat - optimal_rewards(market.gammas, f)))
    virtual = np.sum(m * (q * sat - virtual_costs(market) * f))
    assert direct == pytest.approx(virtual, rel=1e-12, abs=1e-9)


def test_contract_record_and_its_totals() -> None:
    market = Market(gammas=(0.001, 0.004, 0.006), probs=(0.2, 0.0, 0.8), alpha=(0.3, 0.5, 0.7))
    c = solve(market)
    m = market.workers
    np.testing.assert_allclose(c.theta, 1 / c.f)
    np.testing.assert_allclose(c.c, c.theta / market.t - market.a)
    np.testing.assert_allclose(c.worker_utility, c.reward - c.f / c.gamma)
    share = np.where(c.q > 0, m * c.q * (c.satisfaction - c.reward), 0.0)
    np.testing.assert_allclose(c.sp_utility, share)
    assert c.sp_utility[1] == 0.0  # Q = 0: never appears
    assert c.sp_utility_total == pytest.approx(share.sum())
    assert c.workers_utility == pytest.approx(np.sum(m * c.q * c.worker_utility))
    assert c.social_welfare == pytest.approx(c.sp_utility_total + c.workers_utility)
    with pytest.raises(ValueError):
        c.f[0] = 1.0  # read-only


def test_to_dict_is_the_issue_json_shape() -> None:
    c = solve(Market.paper_default(types=3), scheme="CS", method="integer")
    d = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert list(d) == [
        "scheme",
        "method",
        "formulas",
        "market",
        "items",
        "sp_utility",
        "workers_utility",
        "social_welfare",
        "feasibility",
    ]
    assert (d["scheme"], d["method"], d["formulas"]) == ("CS", "integer", "paper")
    assert list(d["feasibility"]) == ["ic", "ir", "max_ic_violation", "min_worker_utility"]
    assert [list(item) for item in d["items"]] == [ITEM_KEYS] * 3
    assert [item["type"] for item in d["items"]] == [1, 2, 3]
    assert d["market"]["gammas"] == list(c.market.gammas) and d["market"]["c_max"] is None
    assert d["items"][2]["reward"] == pytest.approx(c.reward[2])


def test_build_contract_evaluates_any_menu() -> None:
    market = Market.paper_default(types=3)
    best = solve(market)
    worse = build_contract(
        market, best.f[::-1], best.reward[::-1], scheme="CA", method="manual", converged=False
    )
    assert not worse.feasibility.ic and not worse.feasibility.ir
    assert not worse.converged and worse.method == "manual"
    stingy = build_contract(market, best.f, 0.9 * best.reward, scheme="CA", method="manual")
    assert not stingy.feasibility.ir
    assert stingy.sp_utility_total > best.sp_utility_total

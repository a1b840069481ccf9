"""The solvers: optimality against brute force, ironing, IC/IR, the schemes' relations.

The brute-force references here use only the public model (``satisfaction``,
``virtual_costs``) and plain enumeration, nothing of the solvers.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aoichain.incentive import (
    InvalidMarket,
    Market,
    algorithm1_evaluations,
    objective_by_type,
    satisfaction,
    solve,
    virtual_costs,
)
from aoichain.incentive._exact import _pool_ratios, check_kkt
from aoichain.incentive.solve import _problem

# ---- independent references ---------------------------------------------------------------


def objective_rows(market: Market, scheme: str, f: np.ndarray) -> np.ndarray:
    """``h_n(f)`` for every type (rows) on the frequencies ``f`` (columns)."""
    sat = satisfaction(market, f[:, None]).T  # (N, len(f))
    q = market.prob_array[:, None]
    g = market.gamma_array[:, None]
    if scheme == "CC":
        return sat - f[None, :] / g
    weighted = np.where(q > 0, q * np.where(q > 0, sat, 0.0), 0.0)
    cost = virtual_costs(market)[:, None] if scheme == "CA" else q / g
    out = weighted - cost * f[None, :]
    lo, hi = market.f_bounds
    return np.where((f[None, :] >= lo * (1 - 1e-12)) & (f[None, :] <= hi), out, -np.inf)


def value(market: Market, scheme: str, f: np.ndarray) -> float:
    rows = np.stack(
        [objective_rows(market, scheme, np.array([fn]))[n, 0] for n, fn in enumerate(f)]
    )
    return float(rows.sum())


def search_grid(market: Market, points: int) -> np.ndarray:
    """Frequencies spanning where any type has g > 0, within the market's bounds."""
    lo, hi = market.f_bounds
    lo = max(lo, 1 / market.domain.right.max())
    hi = min(hi, 1 / market.domain.left.min())
    return np.linspace(lo, hi, points)


def _exhaustive(market: Market, scheme: str, cands: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Best non-decreasing pick, one frequency per type from its own candidates (N = 2, 3)."""
    h = [objective_rows(market, scheme, c)[n] for n, c in enumerate(cands)]
    if len(cands) == 2:
        total = h[0][:, None] + h[1][None, :]
        total = np.where(cands[0][:, None] <= cands[1][None, :], total, -np.inf)
    else:
        total = h[0][:, None, None] + h[1][None, :, None] + h[2][None, None, :]
        ok = (cands[0][:, None, None] <= cands[1][None, :, None]) & (
            cands[1][None, :, None] <= cands[2][None, None, :]
        )
        total = np.where(ok, total, -np.inf)
    idx = np.unravel_index(np.argmax(total), total.shape)
    return float(total[idx]), np.array([c[i] for c, i in zip(cands, idx, strict=True)])


def brute_force(market: Market, scheme: str) -> tuple[float, np.ndarray]:
    """Exhaustive search over non-decreasing assignments, zooming in on the best (N = 2, 3).

    Every round enumerates all combinations of per-type candidate grids; the
    next round's grids span a few spacings around the previous best.
    """
    n = market.n_types
    points = 1500 if n == 2 else 150
    lo, hi = market.f_bounds
    grid = search_grid(market, points)
    cands = [grid] * n
    best, f = _exhaustive(market, scheme, cands)
    for _ in range(4):
        width = 3 * (cands[0][1] - cands[0][0])
        cands = [np.linspace(max(lo, x - width), min(hi, x + width), points) for x in f]
        cands = [np.union1d(c, f) for c in cands]  # keep the incumbent (and bunching)
        best, f = _exhaustive(market, scheme, cands)
    return best, f


def grid_dp(market: Market, scheme: str, points: int) -> float:
    """Best non-decreasing assignment on a fine grid by dynamic programming."""
    h = objective_rows(market, scheme, search_grid(market, points))
    best = h[0]
    for row in h[1:]:
        best = row + np.maximum.accumulate(best)
    return float(best.max())


# ---- markets -----------------------------------------------------------------------------

#: Q_2 tiny: type 2's virtual cost per unit of weight is huge, so alone it wants a lower
#: f than type 1 and CA must iron types 1 and 2 together.
IRONING = {"gammas": (0.001, 0.002, 0.003), "probs": (0.5, 0.01, 0.49)}
#: per-type alpha: type 2 cares little about AoI and alone wants a lower f than type 1.
PER_TYPE = {"gammas": (0.001, 0.002, 0.003), "alpha": (0.9, 0.2, 0.6)}

SMALL_MARKETS: list[dict[str, Any]] = [
    {"gammas": (0.001, 0.01)},
    {"gammas": (0.002, 0.003), "probs": (0.95, 0.05), "alpha": (0.8, 0.1)},
    {"gammas": (0.001, 0.002), "probs": (0.3, 0.7), "c_max": 6.0},  # cycle bound binds
    {"gammas": (0.001, 0.009), "formulas": "corrected", "a": 2.0, "alpha": 0.8},
    {"gammas": (0.001, 0.002), "probs": (1.0, 0.0)},  # a zero-probability type
    IRONING,
    PER_TYPE,
    {**PER_TYPE, "probs": (0.2, 0.1, 0.7), "formulas": "corrected"},
]


@pytest.mark.parametrize("scheme", ["CA", "CS"])
@pytest.mark.parametrize("overrides", SMALL_MARKETS)
def test_exact_matches_exhaustive_search(overrides: dict[str, Any], scheme: str) -> None:
    market = Market(**overrides)
    contract = solve(market, scheme)
    assert contract.converged
    best, f_best = brute_force(market, scheme)
    got = value(market, scheme, contract.f)
    assert got >= best - 1e-12 * abs(best)  # never worse than any enumerated menu
    assert got - best <= 1e-9 * abs(best)  # and enumeration closes in on it
    ones = contract.q > 0
    np.testing.assert_allclose(contract.f[ones], f_best[ones], rtol=1e-4)


@pytest.mark.parametrize("scheme", ["CA", "CS"])
@pytest.mark.parametrize(
    "overrides",
    [
        {"types": 8},
        {
            "types": 6,
            "alpha": (0.9, 0.1, 0.8, 0.2, 0.7, 0.3),
            "probs": (0.3, 0.02, 0.3, 0.02, 0.3, 0.06),
        },
        {"types": 5, "probs": (0.4, 0.0, 0.1, 0.5, 0.0), "formulas": "corrected"},
    ],
)
def test_exact_beats_a_fine_grid_programme(overrides: dict[str, Any], scheme: str) -> None:
    market = Market.paper_default(**overrides)
    contract = solve(market, scheme)
    reference = grid_dp(market, scheme, 100_000)
    got = value(market, scheme, contract.f)
    assert contract.converged
    assert reference - 1e-9 * abs(reference) <= got <= reference + 1e-6 * abs(reference)


def _unconstrained_argmax(market: Market, scheme: str) -> np.ndarray:
    f = search_grid(market, 200_001)
    return f[np.argmax(objective_rows(market, scheme, f), axis=1)]


@pytest.mark.parametrize(
    ("overrides", "scheme"), [(IRONING, "CA"), (PER_TYPE, "CA"), (PER_TYPE, "CS")]
)
def test_ironing_pools_types_whose_own_optima_are_not_monotone(
    overrides: dict[str, Any], scheme: str
) -> None:
    market = Market(**overrides)
    alone = _unconstrained_argmax(market, scheme)
    drops = np.flatnonzero(np.diff(alone) < 0)
    assert drops.size  # the premise: some type alone wants a higher f than the next one
    i = int(drops[0])
    contract = solve(market, scheme)
    assert contract.f[i] == contract.f[i + 1]  # bunched
    assert alone[i + 1] - 1e-4 <= contract.f[i] <= alone[i] + 1e-4  # at a compromise
    assert np.all(np.diff(contract.f) >= 0)
    assert contract.feasibility.ic and contract.feasibility.ir and contract.converged
    # and the ironed menu is what Algorithm 1 (bunching and ironing on its grid) finds too
    baseline = solve(market, scheme, "algorithm1", phi=1e-6)
    np.testing.assert_allclose(baseline.f, contract.f, atol=2e-6)


def test_the_optimality_check_rejects_a_wrong_menu() -> None:
    """The KKT check is what makes 'exact' checked rather than assumed: it must bite."""
    market = Market(**IRONING)
    prob = _problem(market, "CA")
    theta = solve(market).theta.copy()
    assert check_kkt(prob, theta)[0]
    unpooled = theta.copy()
    unpooled[1] *= 1.05  # type 2 alone at a longer cycle (still monotone)
    assert not check_kkt(prob, unpooled)[0]
    moved = theta * (1 + 1e-4)
    assert not check_kkt(prob, moved)[0]


def test_objectives_are_concave_in_f_on_random_markets() -> None:
    """The premise of pool-adjacent-violators: no valid market bends an objective upward.

    This is why a 'non-concave case where PAV alone is wrong' cannot be built
    from a valid market (see aoichain.incentive._model for the proof).
    """
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        try:
            market = Market(
                t=float(rng.uniform(0.05, 20)),
                a=float(rng.uniform(1, 20)),
                alpha=float(rng.choice([0.0, 1.0, rng.uniform()])),
                K=float(np.exp(rng.uniform(0, 7))),
                H=float(np.exp(rng.uniform(0, 7))),
                c_min=float(np.exp(rng.uniform(-8, 1))),
                formulas=str(rng.choice(["paper", "corrected"])),
            )
        except InvalidMarket:
            continue
        f = np.linspace(1 / market.domain.right[0], 1 / market.domain.left[0], 2003)[1:-1]
        sat = satisfaction(market, f)
        second = sat[2:] - 2 * sat[1:-1] + sat[:-2]
        assert np.all(second <= 1e-10 * np.max(np.abs(sat)))
        checked += 1
    assert checked > 100


@st.composite
def markets(draw: st.DrawFn, max_types: int = 7) -> Market:
    n = draw(st.integers(1, max_types))
    gammas = np.cumsum(draw(st.lists(st.floats(1e-4, 3e-3), min_size=n, max_size=n)))
    weights = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.01, 0.2, 1.0]), min_size=n, max_size=n))
    )
    assume(weights.sum() > 0)
    alpha: Any = draw(st.floats(0.05, 0.95))
    if draw(st.booleans()):
        alpha = tuple(draw(st.lists(st.floats(0.05, 0.95), min_size=n, max_size=n)))
    values = {
        "gammas": tuple(gammas),
        "probs": tuple(weights / weights.sum()),
        "alpha": alpha,
        "a": draw(st.sampled_from([1.0, 2.0, 5.0, 9.0])),
        "t": draw(st.sampled_from([1.0, 2.0, 3.0])),
        "formulas": draw(st.sampled_from(["paper", "corrected"])),
        "c_max": draw(st.sampled_from([None, 8.0, 30.0])),
    }
    try:
        return Market(**values)
    except InvalidMarket:
        assume(False)
        raise


@given(market=markets())
def test_ca_and_cs_are_ic_and_ir_and_optimal(market: Market) -> None:
    for scheme in ("CA", "CS"):
        contract = solve(market, scheme)
        assert contract.converged, contract.message
        assert contract.feasibility.ic and contract.feasibility.ir
        assert np.all(np.diff(contract.f) >= 0)
        lo, hi = market.f_bounds
        assert np.all((contract.f >= lo * (1 - 1e-12)) & (contract.f <= hi * (1 + 1e-12)))


@given(market=markets())
def test_scheme_relations(market: Market) -> None:
    ca, cc, cs = (solve(market, s) for s in ("CA", "CC", "CS"))
    # CC pays each type its cost: workers get nothing
    np.testing.assert_allclose(cc.worker_utility, 0.0, atol=1e-12)
    np.testing.assert_allclose(cc.reward, cc.f / cc.gamma)
    # complete information is an upper bound, and CA is the SP's best IC/IR menu
    scale = 1e-9 * max(1.0, abs(cc.sp_utility_total))
    assert cc.sp_utility_total >= ca.sp_utility_total - scale
    assert ca.sp_utility_total >= cs.sp_utility_total - scale
    # CS maximises welfare among monotone menus; CA's menu is one of them
    assert cs.social_welfare >= ca.social_welfare - scale
    # with the same f, U_s(CC) - U_s(CS) is what CS leaves the workers
    if np.allclose(cc.f, cs.f, rtol=1e-12, atol=0):
        assert cc.sp_utility_total - cs.sp_utility_total == pytest.approx(
            cs.workers_utility, rel=1e-9, abs=1e-9
        )


def test_cc_minus_cs_equals_cs_workers_on_the_paper_market() -> None:
    market = Market.paper_default()
    cc, cs = solve(market, "CC"), solve(market, "CS")
    np.testing.assert_allclose(cc.f, cs.f, rtol=1e-13)  # no ironing needed there
    assert cc.sp_utility_total - cs.sp_utility_total == pytest.approx(cs.workers_utility, rel=1e-12)
    assert cs.workers_utility > 0


@settings(max_examples=25)
@given(market=markets(max_types=5), scheme=st.sampled_from(["CA", "CC", "CS"]))
def test_exact_is_never_worse_than_algorithm1_or_integer(market: Market, scheme: str) -> None:
    exact = solve(market, scheme)
    others = [solve(market, scheme, "algorithm1", phi=1e-5)]
    with contextlib.suppress(InvalidMarket):
        others.append(solve(market, scheme, "integer"))
    for other in others:
        tol = 1e-9 * max(1.0, abs(exact.sp_utility_total))
        got, base = value(market, scheme, exact.f), value(market, scheme, other.f)
        assert got >= base - tol, other.method
        if scheme == "CA":
            assert exact.sp_utility_total >= other.sp_utility_total - tol


def test_algorithm1_is_the_paper_grid() -> None:
    market = Market.paper_default()
    phi = 1e-5
    contract = solve(market, "CA", "algorithm1", phi=phi)
    z = (contract.f - 1e-5) / phi
    np.testing.assert_allclose(z, np.round(z), atol=1e-6)
    exact = solve(market)
    assert np.max(np.abs(contract.f - exact.f)) <= phi
    assert 0 <= exact.sp_utility_total - contract.sp_utility_total < 1e-3
    assert "phi=1e-05" in contract.message


def test_algorithm1_evaluations_count_its_grid_once_per_type() -> None:
    market = Market.paper_default()  # f_max = 1/((1 + 5) 2 s) = 1/12 Hz
    assert algorithm1_evaluations(market, 1e-5) == 10 * 8333
    assert algorithm1_evaluations(market, 1e-6) == 10 * 83324
    assert "over 8333 points" in solve(market, "CA", "algorithm1", phi=1e-5).message


@pytest.mark.parametrize("scheme", ["CA", "CC", "CS"])
@pytest.mark.parametrize("overrides", [IRONING, PER_TYPE, {"probs": (0.2, 0.0, 0.8), **PER_TYPE}])
def test_objective_by_type_is_the_reference_objective(
    overrides: dict[str, Any], scheme: str
) -> None:
    market = Market(**overrides)
    lo, hi = market.f_bounds
    f = np.linspace(lo, min(hi, 0.09), 301)
    got = objective_by_type(market, f, scheme)
    want = objective_rows(market, scheme, f)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scheme", ["CA", "CC", "CS"])
@pytest.mark.parametrize(
    "overrides", [IRONING, PER_TYPE, {"gammas": (0.001, 0.004, 0.006), "probs": (0.2, 0.0, 0.8)}]
)
def test_integer_is_the_best_whole_slot_menu(overrides: dict[str, Any], scheme: str) -> None:
    market = Market(**overrides)
    contract = solve(market, scheme, "integer")
    np.testing.assert_allclose(contract.c, np.round(contract.c), atol=1e-9)
    assert contract.c.min() >= 1 and contract.c.max() <= 15
    f = 1 / ((np.arange(1, 16) + market.a) * market.t)
    h = objective_rows(market, scheme, f)
    best = -np.inf
    for pick in itertools.product(range(15), repeat=market.n_types):
        if scheme != "CC" and any(f[i] > f[j] for i, j in itertools.pairwise(pick)):
            continue
        best = max(best, float(sum(h[n, k] for n, k in enumerate(pick))))
    assert value(market, scheme, contract.f) == pytest.approx(best, rel=1e-12)
    if scheme != "CC":
        assert contract.feasibility.ic and contract.feasibility.ir


def test_per_type_alpha_with_equal_values_equals_scalar_alpha() -> None:
    scalar = Market.paper_default(types=7, probs=(0.3, 0.01, 0.2, 0.01, 0.2, 0.08, 0.2))
    listed = scalar.model_copy(update={"alpha": (0.5,) * 7})
    for scheme in ("CA", "CC", "CS"):
        a, b = solve(scalar, scheme), solve(listed, scheme)
        np.testing.assert_allclose(a.f, b.f, rtol=1e-12)


def test_types_worth_nothing_take_a_neighbours_item() -> None:
    market = Market(gammas=(0.001, 0.002, 0.003, 0.004), probs=(0.3, 0.0, 0.7, 0.0))
    ca = solve(market, "CA")
    assert ca.f[3] == ca.f[2]  # b_4 = 0 and Q_4 = 0: free, joins type 3
    assert ca.f[1] == ca.f[0]  # Q_2 = 0 but b_2 > 0: as low as type 1 allows
    cs = solve(market, "CS")
    assert cs.f[1] == cs.f[0] and cs.f[3] == cs.f[2]
    assert ca.converged and cs.converged


def test_alpha_one_goes_to_the_longest_allowed_cycle() -> None:
    """With alpha = 1 a longer cycle only lowers AoI cost: the bound decides."""
    bounded = solve(Market(alpha=1.0, c_max=20.0))
    np.testing.assert_allclose(bounded.c, 20.0)
    unbounded = solve(Market(alpha=1.0))
    np.testing.assert_allclose(unbounded.f, 1e-5)


def test_large_market_is_solved_and_checked() -> None:
    contract = solve(Market.paper_default(types=5000))
    assert contract.converged and contract.feasibility.ic and contract.feasibility.ir


BAD_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"scheme": "XX"}, "'scheme' parameter of solve must be one of"),
    ({"method": "grid"}, "'method' parameter of solve must be one of"),
    ({"phi": 1e-5}, "applies only to method='algorithm1'"),
    ({"method": "integer", "phi": 1e-5}, "applies only to method='algorithm1'"),
    ({"method": "algorithm1", "phi": 0.0}, "must be a number > 0"),
    ({"method": "algorithm1", "phi": -1e-5}, "must be a number > 0"),
    ({"method": "algorithm1", "phi": float("nan")}, "must be a number > 0"),
    ({"method": "algorithm1", "phi": "1e-5"}, "must be a number > 0"),
    ({"method": "algorithm1", "phi": 1e-13}, "too small"),
    ({"method": "algorithm1", "phi": 0.5}, "too coarse"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_CALLS)
def test_bad_solver_options_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMarket, match=message.replace("(", r"\(").replace(")", r"\)")):
        solve(Market(), **kwargs)


def test_integer_method_errors_name_the_problem() -> None:
    with pytest.raises(InvalidMarket, match="no whole number of collection slots"):
        solve(Market(c_min=0.2, c_max=0.8), method="integer")
    # alpha = 1 with a tiny K: g > 0 only for cycles longer than 15 whole slots allow
    with pytest.raises(InvalidMarket, match="no whole c"):
        solve(Market(alpha=1.0, K=3.0), method="integer")


def _reference_pav(w: list[float], k: list[float]) -> list[int]:
    """Textbook stack PAV on ratios k/w (non-increasing), returning block starts."""
    blocks: list[list[float]] = []  # [start, W, K]
    for i, (wi, ki) in enumerate(zip(w, k, strict=True)):
        blocks.append([i, wi, ki])
        while len(blocks) > 1 and blocks[-2][2] / blocks[-2][1] < blocks[-1][2] / blocks[-1][1]:
            _, w2, k2 = blocks.pop()
            blocks[-1][1] += w2
            blocks[-1][2] += k2
    return [int(b[0]) for b in blocks]


def test_pooling_finishes_long_cascades() -> None:
    """A staircase that each round pools one step more: beyond the vectorised rounds."""
    k = [float(x) for x in range(150, 0, -1)] + [1e9]
    w = [1.0] * len(k)
    assert _pool_ratios(np.array(w), np.array(k)).tolist() == _reference_pav(w, k)
    rng = np.random.default_rng(3)
    for _ in range(20):
        w = rng.uniform(0.1, 1, 60).tolist()
        k = rng.uniform(0.1, 1, 60).tolist()
        assert _pool_ratios(np.array(w), np.array(k)).tolist() == _reference_pav(w, k)


def test_many_types_with_their_own_alpha() -> None:
    rng = np.random.default_rng(11)
    n = 300
    q = rng.uniform(0.01, 1, n)
    market = Market.paper_default(
        types=n, probs=tuple(q / q.sum()), alpha=tuple(rng.uniform(0.2, 0.8, n))
    )
    for scheme in ("CA", "CS"):
        contract = solve(market, scheme)
        assert contract.converged and contract.feasibility.ic and contract.feasibility.ir
        assert len(np.unique(contract.f)) < n  # ironing happened
        reference = grid_dp(market, scheme, 20_000)
        assert value(market, scheme, contract.f) >= reference - 1e-9 * abs(reference)

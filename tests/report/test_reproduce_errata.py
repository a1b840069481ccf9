"""The checks of errata 3 and 4 judge numbers, and fail on numbers built to break them."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from aoichain.incentive import Market, log_log_slope
from aoichain.report.reproduce import Reproduction
from aoichain.report.reproduce.errata_claims import complexity_claim, domain_claim
from aoichain.report.reproduce.numbers import ALGORITHM1_PHIS, domain_samples


def _timings(seconds: np.ndarray) -> dict[str, Any]:
    phi = np.asarray(ALGORITHM1_PHIS)
    span = 1 / 12 - 1e-5
    return {
        "phi": phi.tolist(),
        "seconds": seconds.tolist(),
        "repeats": 3,
        "grid_points": [10 * int(np.ceil(span / p)) for p in phi],
        "n_types": 10,
        "f_min": 1e-5,
        "f_max": 1 / 12,
    }


def test_erratum4_is_judged_from_the_measured_times(rep: Reproduction) -> None:
    alg = rep.errata.algorithm1
    claim = complexity_claim(alg)
    verdict = claim.verdicts[0]
    measured = log_log_slope(1 / np.asarray(alg["phi"]), alg["seconds"])
    assert verdict.numbers["slope_measured"] == pytest.approx(measured)
    nearer_grid = abs(measured - verdict.numbers["slope_grid"]) < abs(
        measured - verdict.numbers["slope_stated"]
    )
    assert verdict.kind == ("holds" if nearer_grid else "fails")
    assert verdict.numbers["slope_grid"] == pytest.approx(1.0, abs=1e-3)
    assert 0.05 < verdict.numbers["slope_stated"] < 0.15
    assert f"{measured:.2f}" in verdict.evidence


@pytest.mark.parametrize(
    ("law", "kind"),
    [
        ("linear", "holds"),
        ("linear plus overhead", "holds"),
        ("logarithmic", "fails"),
        ("constant", "fails"),
    ],
)
def test_erratum4_fails_when_the_time_grows_like_the_stated_law(law: str, kind: str) -> None:
    inverse = 1 / np.asarray(ALGORITHM1_PHIS)
    seconds = {
        "linear": 1e-8 * inverse,
        "linear plus overhead": 2e-3 + 1e-8 * inverse,
        "logarithmic": 1e-3 * np.log2(inverse / 12),
        "constant": np.full(inverse.size, 0.01),
    }[law]
    claim = complexity_claim(_timings(seconds))
    assert claim.verdicts[0].kind == kind, claim.verdicts[0].evidence


def test_erratum3_holds_on_the_paper_forms_and_says_why() -> None:
    claim = domain_claim(domain_samples(Market.paper_default()))
    verdict = claim.verdicts[0]
    assert verdict.kind == "holds", verdict.evidence
    assert verdict.numbers["negative_aoi_share_below"] == 1.0
    assert verdict.numbers["min_rel_second_difference_above"] >= 0


def test_erratum3_is_partly_when_the_forms_also_make_sense_below_at() -> None:
    """Forms positive and convex on both sides: nothing rules out theta < a t but c > 0."""
    domain = copy.deepcopy(domain_samples(Market.paper_default()))
    theta = domain["below"]["theta"]
    domain["below"]["paper_aoi"] = 2.0 + 100.0 / theta
    domain["below"]["paper_latency"] = 2.0 + theta**2
    verdict = domain_claim(domain).verdicts[0]
    assert verdict.kind == "partly"
    assert "Nothing in the printed forms rules out theta < a t" in verdict.evidence


@pytest.mark.parametrize("broken", ["negative", "concave"])
def test_erratum3_fails_when_the_forms_break_above_at(broken: str) -> None:
    """The paper says D and A are convex (and, being an age and a wait, positive) for theta > at."""
    domain = copy.deepcopy(domain_samples(Market.paper_default()))
    theta = domain["above"]["theta"]
    domain["above"]["corrected_latency"] = -theta if broken == "negative" else 1.0 + np.sqrt(theta)
    verdict = domain_claim(domain).verdicts[0]
    assert verdict.kind == "fails", verdict.evidence
    assert ("not all positive" if broken == "negative" else "not all convex") in verdict.evidence

"""The bound on c: off by default, `--c-max` sets it, and a bound-decided claim is not decidable."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from typer.testing import CliRunner

from aoichain.cli import app
from aoichain.report._figures import line_panels
from aoichain.report.reproduce import Reproduction, fig3_claims
from aoichain.report.reproduce.figures import _mark_own_items, coincidences
from aoichain.report.reproduce.verdicts import NOT_DECIDABLE, Claim

#: The claims the reviewer found decided by Table I's bound (they read fail/partly with it).
BOUND_DECIDED = (
    "fig3.ca-beats-cs-for-sp",
    "fig3.cs-best-for-workers",
    "fig4.update-phase-increases-with-alpha",
)


def _claims(claims: tuple[Claim, ...]) -> dict[str, Claim]:
    return {c.id: c for c in claims}


def _corrected_ca_c(a: float, alpha: float) -> np.ndarray:
    """CA's collection slots per type, written out from the SPEC by hand and solved by scipy.

    The corrected forms, ``G = beta ln g`` and the virtual costs of eq. (19),
    with no bound on c: an implementation independent of the engine's solver.
    """
    t, beta, big_k, big_h = 2.0, 20.0, 200.0, 50.0
    gamma = np.linspace(0.001, 0.01, 10)
    q = np.full(10, 0.1)
    tail = np.concatenate([np.cumsum(q[::-1])[::-1][1:], [0.0]])
    b = q / gamma + np.concatenate([1 / gamma[:-1] - 1 / gamma[1:], [0.0]]) * tail

    def minus_objective(c: float, n: int) -> float:
        theta = (c + a) * t
        age = t + t * t * (a * a - a) / (2 * theta)
        wait = ((c * t) ** 2 + 3 * t * c * t + 2 * a * t * t) / (2 * theta)
        g = alpha * (big_k - age) + (1 - alpha) * (big_h - wait)
        return -(q[n] * beta * np.log(g) - b[n] / theta) if g > 0 else 1e30

    out = []
    for n in range(10):
        grid = np.geomspace(1.0, 5e4, 4000)
        k = int(np.argmin([minus_objective(c, n) for c in grid]))
        best = minimize_scalar(
            minus_objective,
            bounds=(grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]),
            args=(n,),
            method="bounded",
            options={"xatol": 1e-10},
        )
        out.append(best.x)
    return np.asarray(out)


def test_the_default_run_has_no_bound_and_its_optima_lie_above_table_i(rep: Reproduction) -> None:
    assert rep.config.c_max is None and rep.variant.c_max == 15
    run = rep.runs["corrected"]
    ca = run.contracts["CA"]
    # every type's unbounded optimum at the default market (a = 5, alpha = 0.5): 19.7 .. 126
    assert 19.7 < ca.c.min() < 19.8 and 125 < ca.c.max() < 126
    np.testing.assert_allclose(ca.c, _corrected_ca_c(5.0, 0.5), rtol=1e-6)
    # over Fig. 4's alphas up to 275 slots (alpha = 0.8); at alpha = 0.2 down to 10.7
    np.testing.assert_allclose(run.by_alpha["c"][-1], _corrected_ca_c(5.0, 0.8), rtol=1e-6)
    assert 274 < run.by_alpha["c"].max() < 275 and 10.7 < run.by_alpha["c"].min() < 10.8
    assert np.all(run.c_by_a["CA"] > 15)  # Fig. 3: every type above Table I's bound at every a


@pytest.mark.parametrize("forms", ["paper", "corrected"])
def test_without_the_bound_the_three_claims_hold(rep: Reproduction, forms: str) -> None:
    claims = _claims(rep.claims)
    for cid in BOUND_DECIDED:
        verdict = claims[cid].verdict_for(forms)
        assert verdict.kind == "holds", (cid, verdict.evidence)
    run = rep.runs[forms]
    assert np.all(run.sp_by_a["CA"] > run.sp_by_a["CS"])
    assert np.all(run.workers_by_a["CS"] > run.workers_by_a["CA"])
    assert np.all(np.diff(run.by_alpha["c"], axis=0) > 0)


def test_with_c_max_15_they_are_not_decidable_never_failing(rep: Reproduction) -> None:
    capped = _claims(rep.variant.claims)
    for cid in BOUND_DECIDED:
        assert capped[cid].verdict_for("corrected").kind == NOT_DECIDABLE, cid
        assert capped[cid].kind == NOT_DECIDABLE, cid
    # under the paper forms only the update phase reaches the bound (types 1 and 2 at alpha
    # >= 0.6 and 0.7); the scheme comparisons are decided there
    paper = {cid: capped[cid].verdict_for("paper") for cid in BOUND_DECIDED}
    assert paper["fig3.ca-beats-cs-for-sp"].kind == "holds"
    assert paper["fig4.update-phase-increases-with-alpha"].kind == NOT_DECIDABLE
    assert paper["fig4.update-phase-increases-with-alpha"].numbers["bound_decided_types"] == [1, 2]
    # a claim that fails at points the bound does not decide still fails
    assert capped["fig4.frequency-increases-with-alpha"].kind == "fails"


def test_a_bound_never_turns_a_real_counter_example_into_not_decidable(rep: Reproduction) -> None:
    """CA below CS at one a (not a tie at the bound) makes the claim partly hold, not undecided."""
    run = rep.variant.runs["corrected"]
    sp = dict(run.sp_by_a)
    sp["CS"] = sp["CS"].copy()
    sp["CS"][0] += 50.0
    sp["CA"] = sp["CA"] + np.where(np.arange(sp["CA"].size) > 5, 10.0, 0.0)
    claims = _claims(tuple(fig3_claims({"corrected": dataclasses.replace(run, sp_by_a=sp)})))
    verdict = claims["fig3.ca-beats-cs-for-sp"].verdicts[0]
    assert verdict.kind == "partly"  # 5 wins, 1 loss, 5 ties at the bound set aside


def test_fig3_captions_say_why_ca_and_cs_coincide(rep: Reproduction) -> None:
    assert coincidences(rep, "sp_by_a") == ""  # without the bound no two curves coincide
    capped = dataclasses.replace(rep, runs=rep.variant.runs)
    for data in ("sp_by_a", "workers_by_a"):
        text = coincidences(capped, data)
        assert "Under the corrected forms CA and CS coincide" in text
        assert "every type sits at c_max = 15 slots in both at every a" in text
        assert "paper forms" not in text


def test_fig2_marks_each_drawn_types_own_item(rep: Reproduction) -> None:
    run = rep.runs["paper"]
    items = np.arange(1, run.utility.shape[0] + 1)
    types = rep.config.fig2_types
    panels = {
        f"{forms} forms": {f"Type {k}": (items, r.utility[k - 1]) for k in types}
        for forms, r in rep.runs.items()
    }
    fig = line_panels(panels, xlabel="x", ylabel="y")
    assert _mark_own_items(fig, rep) == len(rep.config.fig2_types) * len(rep.runs)
    ax = fig.axes[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert [float(line.get_xdata()[0]) for line in stars] == list(map(float, rep.config.fig2_types))
    for line, k in zip(stars, rep.config.fig2_types, strict=True):
        assert float(line.get_ydata()[0]) == pytest.approx(run.utility[k - 1, k - 1])


def test_c_max_is_in_the_help() -> None:
    result = CliRunner().invoke(app, ["reproduce", "--help"])
    assert result.exit_code == 0 and "--c-max" in result.stdout


def test_a_bad_c_max_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["reproduce", "--out", str(out), "--c-max", "0"])
    assert result.exit_code == 2 and "'c_max'" in result.stderr
    assert not out.exists()


def _fig3a(out: Path) -> dict[tuple[str, int, str], float]:
    with (out / "fig3a_sp_utility.csv").open() as fh:
        return {
            (r["formulas"], int(r["a"]), r["scheme"]): float(r["sp_utility"])
            for r in csv.DictReader(fh)
        }


@pytest.mark.slow
def test_c_max_changes_the_figures_and_the_verdicts(
    cli_run: tuple[Path, dict[str, Any]], cli_run_capped: tuple[Path, dict[str, Any]]
) -> None:
    (free_out, free), (capped_out, capped) = cli_run, cli_run_capped
    assert capped["config"]["c_max"] == 15 and capped["variant"]["c_max"] is None
    fig_free, fig_capped = _fig3a(free_out), _fig3a(capped_out)
    for a in range(2, 13):
        # CA and CS: apart without the bound, one curve with it (corrected forms)
        assert fig_free[("corrected", a, "CA")] > fig_free[("corrected", a, "CS")] + 30
        assert fig_capped[("corrected", a, "CA")] == pytest.approx(
            fig_capped[("corrected", a, "CS")], rel=1e-12
        )
    by_id = {c["id"]: c for c in capped["claims"]}
    free_by_id = {c["id"]: c for c in free["claims"]}
    for cid in BOUND_DECIDED:
        assert by_id[cid]["verdict"] == "not decidable"
        assert free_by_id[cid]["verdict"] == "holds"
        assert "fails" not in {v["verdict"] for v in by_id[cid]["verdicts"]}
    assert capped["summary"]["not decidable"] == len(BOUND_DECIDED)
    assert free["summary"]["not decidable"] == 0


@pytest.mark.slow
def test_not_decidable_shows_in_every_report(cli_run_capped: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cli_run_capped
    md = (out / "REPORT.md").read_text()
    html = (out / "report.html").read_text()
    on_disk = json.loads((out / "claims.json").read_text())
    assert "> **NOT DECIDABLE** — The proposed CA mechanism" in md
    assert "| not decidable |" in md and "--c-max 15" in md
    assert '<div class="callout not-decidable">' in html and "NOT DECIDABLE</span>" in html
    assert ".not-decidable {" in html
    kinds = {c["id"]: c["verdict"] for c in on_disk["claims"]}
    assert all(kinds[cid] == "not decidable" for cid in BOUND_DECIDED)
    # the unbounded verdict is reported beside the bounded one
    assert "**corrected forms, no bound on c** — HOLDS" in md
    assert "CA and CS coincide: every type sits at c_max = 15" in md


@pytest.mark.slow
def test_the_report_words_the_setting_from_numbers(cli_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cli_run
    md = (out / "REPORT.md").read_text()
    assert (
        "**a = 5** for Figs. 2 and 4 (no value is given; it is inside Fig. 3's range 2..12, "
        "whose middle is 7)"
    ) in md
    assert "middle of Fig. 3's range" not in md
    assert "are what its figures used" not in md
    assert "does not say which closed forms its figures used" in md
    assert "the magnitudes favour corrected forms, no bound on c" in md
    assert "A star marks each type's own item" in md
    with (out / "fig4c_sp_utility_per_type.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    values = np.array([float(r["q_times_g_minus_r"]) for r in rows])
    assert values.size == 2 * 7 * 10 and np.all((values > 0) & (values < 10))

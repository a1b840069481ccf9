"""`aoichain reproduce`: the files it promises, and that its verdicts follow the numbers."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aoichain.cli import app
from aoichain.errors import InvalidInput
from aoichain.report.reproduce import (
    FIGURES,
    ReproduceConfig,
    Reproduction,
    _fig3_claims,
    compute,
    write_outputs,
)
from aoichain.report.reproduce.verdicts import VERDICT_KINDS, Claim

STEMS = (
    "fig2_worker_utility",
    "fig3a_sp_utility",
    "fig3b_workers_utility",
    "fig4a_update_frequency",
    "fig4b_reward",
    "fig4c_sp_utility_per_type",
    "fig4d_worker_utility",
    "aoi_latency_check",
)
OTHER_FILES = ("contracts.csv", "claims.json", "REPORT.md", "report.html")


def _claims(rep: Reproduction) -> dict[str, Claim]:
    return {c.id: c for c in rep.claims}


# --------------------------------------------------------------------------- files


@pytest.mark.slow
def test_every_promised_file_exists_and_is_non_empty(cli_run: tuple[Path, dict]) -> None:
    out, payload = cli_run
    for stem in STEMS:
        png = (out / f"{stem}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        rows = list(csv.reader(io.StringIO((out / f"{stem}.csv").read_text())))
        assert len(rows) > 10 and len(set(map(len, rows))) == 1
    for name in OTHER_FILES:
        assert (out / name).stat().st_size > 1000, name
    assert {Path(p).name for p in payload["files"]} == {
        *(f"{s}.{ext}" for s in STEMS for ext in ("png", "csv")),
        *OTHER_FILES,
    }
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


@pytest.mark.slow
def test_html_report_is_self_contained_and_offline(cli_run: tuple[Path, dict]) -> None:
    out, _ = cli_run
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


@pytest.mark.slow
def test_markdown_report_links_every_figure_and_states_the_setting(
    cli_run: tuple[Path, dict],
) -> None:
    out, _ = cli_run
    md = (out / "REPORT.md").read_text()
    for stem in STEMS:
        assert f"]({stem}.png)" in md and f"`{stem}.csv`" in md
    for unstated in ("types N", "natural", "AoI preference alpha", "read as gamma"):
        assert unstated in md
    for erratum in range(1, 6):
        assert f"SPEC erratum {erratum}" in md


@pytest.mark.slow
def test_claims_json_lists_every_claim_with_numbers(
    cli_run: tuple[Path, dict], rep: Reproduction
) -> None:
    out, payload = cli_run
    on_disk = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in on_disk["claims"]] == [c.id for c in rep.claims]
    assert [c["id"] for c in payload["claims"]] == [c.id for c in rep.claims]
    for claim in on_disk["claims"] + on_disk["variant"]["claims"]:
        assert claim["verdict"] in VERDICT_KINDS
        for verdict in claim["verdicts"]:
            assert verdict["evidence"] and verdict["numbers"]
    assert sum(on_disk["summary"].values()) == len(rep.claims)
    assert on_disk["config"]["c_max"] is None and on_disk["variant"]["c_max"] == 15
    assert sum(on_disk["variant"]["summary"].values()) == len(rep.variant.claims)


@pytest.mark.slow
def test_csv_data_matches_the_computed_numbers(cli_run: tuple[Path, dict]) -> None:
    out, _ = cli_run
    with (out / "fig3a_sp_utility.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    paper = {
        (int(r["a"]), r["scheme"]): float(r["sp_utility"]) for r in rows if r["formulas"] == "paper"
    }
    assert len(paper) == 11 * 3
    assert paper[(5, "CC")] > paper[(5, "CA")] > paper[(5, "CS")]


# --------------------------------------------------------------------------- claims vs numbers


def test_fig3_scheme_order_under_the_paper_forms(rep: Reproduction) -> None:
    run = rep.runs["paper"]
    sp, wk = run.sp_by_a, run.workers_by_a
    assert np.all(sp["CC"] > sp["CA"]) and np.all(sp["CA"] > sp["CS"])
    assert np.all(wk["CS"] > wk["CA"]) and np.all(wk["CA"] > 0)
    np.testing.assert_allclose(wk["CC"], 0.0, atol=1e-9)
    claims = _claims(rep)
    for cid in (
        "fig3.cc-best-for-sp",
        "fig3.ca-beats-cs-for-sp",
        "fig3.cs-best-for-workers",
        "fig3.ca-beats-cc-for-workers",
        "fig3.cc-zero-for-workers",
    ):
        assert claims[cid].verdict_for("paper").kind == "holds", cid


@pytest.mark.parametrize("forms", ["paper", "corrected"])
def test_fig3_verdicts_follow_the_numbers(rep: Reproduction, forms: str) -> None:
    run = rep.runs[forms]
    sp, wk = run.sp_by_a, run.workers_by_a
    claims = _claims(rep)
    scale = np.maximum(np.abs(sp["CA"]), 1.0)

    ca_over_cs = (sp["CA"] - sp["CS"]) > 1e-6 * scale
    got = claims["fig3.ca-beats-cs-for-sp"].verdict_for(forms)
    assert got.kind == ("holds" if ca_over_cs.all() else "partly" if ca_over_cs.any() else "fails")
    if not ca_over_cs.all():
        assert "equal at" in got.evidence

    cs_over_ca = (wk["CS"] - wk["CA"]) > 1e-6 * scale
    got = claims["fig3.cs-best-for-workers"].verdict_for(forms)
    assert (got.kind == "holds") == bool(cs_over_ca.all())

    rises_then_falls = 0 < int(np.argmax(sp["CA"])) < sp["CA"].size - 1
    got = claims["fig3.optimal-a-exists"].verdict_for(forms)
    assert (got.kind == "holds") == rises_then_falls
    if np.all(np.diff(sp["CA"]) > 0):
        shape = claims["fig3.sp-first-increases-then-decreases"].verdict_for(forms)
        assert shape.kind == "fails" and "CA: increasing" in shape.evidence


def test_corrected_forms_tie_ca_and_cs_at_the_bound_and_the_report_says_so(
    rep: Reproduction,
) -> None:
    """Under Table I's c ≤ 15 (the default run's variant) every type sits at 15: not decidable."""
    run = rep.variant.runs["corrected"]
    assert rep.variant.c_max == 15
    np.testing.assert_allclose(run.c_by_a["CA"], 15.0)
    np.testing.assert_allclose(run.sp_by_a["CA"], run.sp_by_a["CS"], rtol=1e-9)
    claim = rep.variant.claim("fig3.ca-beats-cs-for-sp")
    assert claim is not None
    verdict = claim.verdict_for("corrected")
    assert verdict.kind == "not decidable"
    assert "c = c_max = 15" in verdict.evidence and "not decidable" in verdict.evidence


def test_a_verdict_changes_when_the_numbers_change(rep: Reproduction) -> None:
    """Verdicts are computed: a hump-shaped SP utility turns the Fig. 3 claim around."""
    run = rep.runs["paper"]
    hump = -100.0 * (run.a_values - 7.0) ** 2
    bumped = dataclasses.replace(run, sp_by_a={s: v + hump + 1e4 for s, v in run.sp_by_a.items()})
    claims = {c.id: c for c in _fig3_claims({"paper": bumped})}
    assert claims["fig3.sp-first-increases-then-decreases"].kind == "holds"
    assert claims["fig3.optimal-a-exists"].kind == "holds"
    assert "at a = 7" in claims["fig3.optimal-a-exists"].verdicts[0].evidence


@pytest.mark.parametrize("forms", ["paper", "corrected"])
def test_fig2_each_type_peaks_at_its_own_item(rep: Reproduction, forms: str) -> None:
    u = rep.runs[forms].utility
    own = np.diag(u)
    assert np.all(own >= u.max(axis=1) - 1e-9)
    assert np.all(own >= -1e-9)
    assert np.all(np.diff(own) > 0)
    claims = _claims(rep)
    assert claims["fig2.own-item-maximises"].verdict_for(forms).kind in {"holds", "partly"}
    assert claims["fig2.utility-increases-with-type"].verdict_for(forms).kind == "holds"
    assert claims["fig2.ir"].verdict_for(forms).kind == "holds"


def test_fig2_ties_are_explained_by_binding_local_ic(rep: Reproduction) -> None:
    run = rep.runs["paper"]
    u = run.utility
    n = u.shape[0]
    # Eq. (18) makes each type n >= 2 exactly indifferent to the item below its own.
    np.testing.assert_allclose(np.diag(u)[1:], u[np.arange(1, n), np.arange(n - 1)], atol=1e-9)
    verdict = _claims(rep)["fig2.own-item-maximises"].verdict_for("paper")
    assert verdict.kind == "partly" and "local downward IC" in verdict.evidence
    assert verdict.numbers["types_picking_own_item"] == n


@pytest.mark.parametrize("forms", ["paper", "corrected"])
def test_fig4_verdicts_follow_the_numbers(rep: Reproduction, forms: str) -> None:
    ba = rep.runs[forms].by_alpha
    claims = _claims(rep)
    f_rises = np.all(np.diff(ba["f"], axis=0) >= -1e-12, axis=0) & (ba["f"][-1] > ba["f"][0])
    kind = claims["fig4.frequency-increases-with-alpha"].verdict_for(forms).kind
    assert kind == ("holds" if f_rises.all() else "partly" if f_rises.any() else "fails")
    sp_rises = bool(np.all(np.diff(ba["sp_total"]) > 0))
    kind = claims["fig4.sp-utility-increases-with-alpha"].verdict_for(forms).kind
    assert (kind != "fails") == sp_rises


def test_fig4c_adds_up_to_fig3a(rep: Reproduction) -> None:
    config = rep.config
    for run in rep.runs.values():
        k = list(config.alphas).index(config.alpha)
        j = list(config.a_values).index(config.a)
        assert run.by_alpha["sp_utility"][k].sum() == pytest.approx(run.sp_by_a["CA"][j], rel=1e-9)


def test_simulation_matches_the_corrected_forms(rep: Reproduction) -> None:
    rows = rep.simulation.rows
    for what in ("aoi", "latency"):
        rel = np.abs(rows[f"sim_{what}"] - rows[f"corrected_{what}"]) / rows[f"corrected_{what}"]
        assert rel.max() < 1e-3
        np.testing.assert_allclose(rows[f"cycle_{what}"], rows[f"corrected_{what}"], rtol=1e-12)
    c, a = rows["c"], rows["a"]
    np.testing.assert_allclose(rows["paper_aoi"] / rows["cycle_aoi"], (c + a) / c, rtol=1e-12)
    assert _claims(rep)["simulation.corrected-forms-match"].kind == "holds"


def test_every_erratum_is_confirmed_with_numbers(rep: Reproduction) -> None:
    """On this machine's numbers; test_reproduce_errata shows each check can fail."""
    claims = _claims(rep)
    for cid in (
        "erratum1.latency-extra-factor-c",
        "erratum2.aoi-t-over-c",
        "erratum3.theta-greater-than-at",
        "erratum4.algorithm1-complexity",
        "erratum5.fmin-outside-domain",
    ):
        verdict = claims[cid].verdicts[0]
        assert verdict.kind == "holds", (cid, verdict.evidence)
        assert re.search(r"\d", verdict.evidence)
    assert all(g <= 0 for g in rep.errata.g_at_fmin.values())
    assert np.all(rep.errata.domain["below"]["paper_aoi"] < 0)


@pytest.mark.slow
def test_one_formula_set_and_progress_steps(tmp_path: Path) -> None:
    config = ReproduceConfig(formulas="paper", a_values=(2, 5, 8), alphas=(0.2, 0.5, 0.8))
    seen: list[str] = []
    rep = compute(config, on_step=seen.append)
    files = write_outputs(rep, tmp_path, on_step=seen.append)
    assert len(seen) == config.n_steps
    assert list(rep.runs) == ["paper"]
    for claim in rep.claims:
        assert all(v.formulas in (None, "paper") for v in claim.verdicts)
    assert len(files) == 2 * len(STEMS) + len(OTHER_FILES)


# --------------------------------------------------------------------------- bad input


def test_bad_formulas_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["reproduce", "--out", str(out), "--formulas", "printed"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'formulas'" in lines[0] and "'printed'" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_out_that_is_a_file_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["reproduce", "--out", str(target), "--formulas", "paper"])
    assert result.exit_code == 2
    assert "not a directory" in result.stderr
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"a_values": (0, 5, 9)}, "a_values"),
        ({"alphas": (0.8, 0.5, 0.2)}, "alphas"),
        ({"alphas": (0.2, 1.5, 2.0)}, "alphas"),
        ({"sim_slots": 10}, "sim_slots"),
        ({"method": "integer"}, "method"),
        ({"c_max": 0.5}, "c_max"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_config_rejects_bad_values(values: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        ReproduceConfig(**values)


def test_fig2_types_outside_the_market_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="fig2_types"):
        compute(ReproduceConfig(formulas="paper", fig2_types=(1, 11)))


def test_the_papers_non_concavity_remark_is_checked_not_assumed(rep: Reproduction) -> None:
    """Sec. IV-B calls U_s non-concave; every per-type objective is concave (see _model.py)."""
    claim = _claims(rep)["sec4.us-not-concave"]
    assert {v.formulas for v in claim.verdicts} == set(rep.runs)
    for verdict in claim.verdicts:
        assert verdict.numbers["max_rel_second_difference"] <= 0
        assert verdict.kind == "fails"

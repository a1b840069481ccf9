"""The report helpers behind `aoichain reproduce`: documents, figures, claim tools."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.jsonio import jsonable
from aoichain.report._document import (
    BulletList,
    Callout,
    Document,
    FigureBlock,
    Heading,
    Paragraph,
    Table,
    csv_text,
)
from aoichain.report._figures import heatmaps, line_panels, png_bytes
from aoichain.report.reproduce.verdicts import (
    Claim,
    Verdict,
    compare,
    fmt,
    judge,
    monotone,
    unimodal_peak,
)


def _doc() -> Document:
    return Document(
        "Title <x>",
        [
            Heading("Section & more"),
            Paragraph("Use `a < b` and **bold** <script>alert(1)</script>"),
            BulletList(["one", "two | three"]),
            Table(["h1", "h|2"], [["a|b", "`c`"]], caption="cap"),
            FigureBlock(b"\x89PNGfake", "fig.png", "A caption"),
            Callout("fails", "claim", ["evidence 1", "evidence 2"]),
        ],
    )


def test_html_escapes_text_and_embeds_figures() -> None:
    html = _doc().to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<code>a &lt; b</code>" in html and "<strong>bold</strong>" in html
    assert 'src="data:image/png;base64,iVBOR2Zha2U="' in html
    assert 'class="callout fails"' in html and "FAILS" in html
    assert "<title>Title &lt;x&gt;</title>" in html


def test_markdown_escapes_table_pipes_and_links_figures() -> None:
    md = _doc().to_markdown()
    assert md.startswith("# Title <x>\n")
    assert "| a\\|b | `c` |" in md and "| h1 | h\\|2 |" in md
    assert "![A caption](fig.png)" in md
    assert "> **FAILS** — claim" in md and "> evidence 2" in md


def test_csv_text_round_trips_floats() -> None:
    text = csv_text(["x", "y"], [[0.1 + 0.2, "a,b"], [1e-300, True]])
    assert text.splitlines()[1] == '0.30000000000000004,"a,b"'
    assert text.endswith("\n")


def test_figures_render_to_png() -> None:
    fig = line_panels(
        {"p1": {"s": ([1, 2, 3], [1.0, 4.0, 9.0])}, "p2": {"s": ([1, 2], [2.0, 1.0])}},
        xlabel="x",
        ylabel="y",
        logy=True,
        styles={"s": {"linestyle": "--"}},
    )
    assert png_bytes(fig).startswith(b"\x89PNG")
    grid = np.array([[1.0, np.nan], [3.0, 4.0]])
    fig = heatmaps(
        {"a": grid, "b": grid * 2},
        row_labels=["r1", "r2"],
        col_labels=["c1", "c2"],
        xlabel="x",
        ylabel="y",
        value_label="v",
    )
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_shape_helpers() -> None:
    assert monotone([1, 2, 3]) == "increasing"
    assert monotone([3, 3, 1]) == "non-increasing"
    assert monotone([1, 1 + 1e-12, 1]) == "constant"
    assert monotone([1, 3, 2]) == "mixed"
    assert unimodal_peak([1, 3, 2]) == (1, True)
    assert unimodal_peak([1, 2, 3]) == (2, False)
    assert unimodal_peak([1, 3, 3, 2]) == (1, False)
    assert compare([1.0, 2.0, 3.0], [1.0 + 1e-9, 1.0, 4.0]).tolist() == [0, 1, -1]


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=20))
def test_unimodal_peak_is_the_argmax(values: list[float]) -> None:
    k, ok = unimodal_peak(values)
    assert values[k] == max(values)
    if ok:
        assert 0 < k < len(values) - 1


def test_fmt_and_jsonable() -> None:
    assert (
        fmt(1234.5678) == "1235"
        and fmt(123456.7) == "123,457"
        and fmt(0.012345) == "0.01235"
        and fmt(0.0) == "0.0"
    )
    assert fmt(-2.5e-7) == "-2.500e-07"
    data = jsonable({"a": np.float64(np.inf), "b": np.arange(2), "c": (np.bool_(True),)})
    assert json.dumps(data, allow_nan=False) == '{"a": null, "b": [0, 1], "c": [true]}'


@pytest.mark.parametrize(
    ("kinds", "overall"),
    [
        (["holds", "holds"], "holds"),
        (["fails"], "fails"),
        (["holds", "fails"], "partly"),
        (["not decidable", "not decidable"], "not decidable"),
        (["holds", "not decidable"], "not decidable"),
        (["fails", "not decidable"], "fails"),
        (["partly", "not decidable"], "partly"),
    ],
)
def test_claim_overall_verdict(kinds: list, overall: str) -> None:
    verdicts = tuple(Verdict(k, "e", {}, f"set{i}") for i, k in enumerate(kinds))
    claim = Claim("x", "src", "stmt", verdicts)
    assert claim.kind == overall
    assert claim.to_dict()["verdict"] == overall


@pytest.mark.parametrize(
    ("n_ok", "n_bound", "total", "kind"),
    [
        (5, 0, 5, "holds"),
        (3, 2, 5, "not decidable"),
        (0, 5, 5, "not decidable"),
        (3, 1, 5, "partly"),
        (0, 4, 5, "fails"),
        (0, 0, 5, "fails"),
    ],
)
def test_a_bound_decided_case_never_counts_as_a_failure(
    n_ok: int, n_bound: int, total: int, kind: str
) -> None:
    assert judge(n_ok, n_bound, total) == kind


def test_not_decidable_renders_in_markdown_and_html() -> None:
    doc = Document("t", [Callout("not decidable", "claim", ["why"])])
    assert "> **NOT DECIDABLE** — claim" in doc.to_markdown()
    html = doc.to_html()
    assert '<div class="callout not-decidable">' in html and ".not-decidable {" in html

"""The HTML report of a federated run, and of a comparison of schemes.

Drawn from a :class:`aoichain.workflow.RunResult` (the same facts as the run
folder's CSV and JSON files). Figures: accuracy by round; AoI and latency per
worker against the closed forms; the menu and the workers' choices;
payments; the realised SP utility from measured AoI and latency next to the
contract's prediction; where the time went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aoichain.report._document import (
    BulletList,
    Callout,
    Document,
    FigureBlock,
    Heading,
    Paragraph,
    Table,
)
from aoichain.report._figures import PALETTE, line_panels, new_figure, png_bytes
from aoichain.workflow import RunResult, RunSummary, SeedComparison
from aoichain.workflow.outputs import worker_rows


def _accuracy_figure(result: RunResult) -> bytes:
    rounds = [r.round + 1 for r in result.rounds]
    fig = line_panels(
        {
            "global model": {
                "accuracy": (rounds, [r.accuracy for r in result.rounds]),
                "ROC AUC": (rounds, [r.roc_auc for r in result.rounds]),
                "F1": (rounds, [r.f1 for r in result.rounds]),
            },
            "freshness of the requests": {
                "mean AoI (s)": (rounds, [r.mean_aoi for r in result.rounds]),
                "mean latency (s)": (rounds, [r.mean_latency for r in result.rounds]),
            },
        },
        xlabel="round",
        ylabel="value",
        hline=None,
    )
    return png_bytes(fig)


def _accuracy_vs_aoi_figure(results: Mapping[str, RunResult]) -> bytes:
    """Each round's accuracy against its requests' mean AoI, one colour per run."""
    fig = new_figure(1, panel_size=(6.0, 3.8))
    ax = fig.axes[0]
    for k, (label, result) in enumerate(results.items()):
        ax.scatter(
            [r.mean_aoi for r in result.rounds],
            [r.accuracy for r in result.rounds],
            color=PALETTE[k % len(PALETTE)],
            label=label,
            s=18,
        )
    ax.set_xlabel("mean AoI of the round's requests (s)")
    ax.set_ylabel("accuracy of the new global model")
    ax.set_title("accuracy against freshness")
    ax.legend(fontsize=8)
    return png_bytes(fig)


def _aoi_figure(rows: Sequence[Mapping[str, Any]]) -> bytes:
    fig = new_figure(2, panel_size=(6.4, 3.8))
    x = np.arange(len(rows))
    labels = [r["worker"] for r in rows]
    for ax, (what, unit) in zip(fig.axes, (("aoi", "AoI"), ("latency", "latency")), strict=True):
        ax.bar(x, [r[f"{what}_measured_s"] for r in rows], color=PALETTE[0], label="measured")
        ax.plot(
            x,
            [r[f"{what}_corrected_s"] for r in rows],
            "o",
            color=PALETTE[1],
            label="corrected form",
        )
        ax.plot(x, [r[f"{what}_paper_s"] for r in rows], "x", color=PALETTE[2], label="paper form")
        ax.set_xticks(x, labels, rotation=90, fontsize=7)
        ax.set_ylabel(f"mean {unit} (s)")
        ax.set_title(f"{unit} per worker: slot clock vs closed forms")
        ax.legend(fontsize=8)
    return png_bytes(fig)


def _menu_figure(result: RunResult) -> bytes:
    contract = result.prepared.contract
    items = np.arange(1, len(contract.f) + 1)
    chosen = np.zeros(len(items), dtype=int)
    for w in result.prepared.workers:
        if w.item >= 0:
            chosen[w.item] += 1
    fig = new_figure(3, panel_size=(4.4, 3.6))
    a0, a1, a2 = fig.axes
    a0.plot(items, contract.f, "o-", color=PALETTE[0])
    a0.set_xlabel("item")
    a0.set_ylabel("update frequency f (1/s)")
    a0.set_title("menu: frequency")
    a1.plot(items, contract.reward, "s-", color=PALETTE[1])
    a1.set_xlabel("item")
    a1.set_ylabel("reward R (per s)")
    a1.set_title("menu: reward")
    a2.bar(items, chosen, color=PALETTE[2])
    a2.set_xlabel("item")
    a2.set_ylabel("workers")
    a2.set_title("workers' choices")
    return png_bytes(fig)


def _payment_figure(rows: Sequence[Mapping[str, Any]], reclaimed: int) -> bytes:
    fig = new_figure(1, panel_size=(9.0, 3.6))
    ax = fig.axes[0]
    x = np.arange(len(rows))
    colours = [PALETTE[1] if r["byzantine"] else PALETTE[0] for r in rows]
    ax.bar(x, [r["paid_wei"] / 1e18 for r in rows], color=colours)
    if any(r["byzantine"] for r in rows):
        ax.bar([], [], color=PALETTE[0], label="honest")
        ax.bar([], [], color=PALETTE[1], label="Byzantine (valid records, paid alike)")
        ax.legend(fontsize=8)
    ax.set_xticks(x, [r["worker"] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("withdrawn (ether)")
    ax.set_title(f"payments on the main chain; publisher reclaimed {reclaimed / 1e18:.4g} ether")
    return png_bytes(fig)


def _utility_figure(summary: RunSummary) -> bytes:
    fig = new_figure(1, panel_size=(6.0, 3.6))
    ax = fig.axes[0]
    names = ["contract\n(expected)", "contract\n(drawn types)", "measured\n(slot clock)"]
    values = [
        summary.sp_utility_contract,
        summary.sp_utility_predicted_for_drawn_types,
        summary.sp_utility_measured,
    ]
    ax.bar(names, values, color=PALETTE[:3])
    ax.set_ylabel("SP utility")
    ax.set_title("service provider's utility: predicted vs realised")
    return png_bytes(fig)


def _evaluation_blocks(result: RunResult) -> list[Any]:
    """The held-out evaluation: metrics, confusion matrix, the target's verdict, gaps."""
    summary, cfg = result.summary, result.prepared.config
    last = result.rounds[-1]
    target = cfg.task.target
    blocks: list[Any] = [
        Heading("Evaluation"),
        Paragraph(
            f"Every round's global model is scored on held-out windows no worker trained on "
            f"({cfg.data.holdout:.0%} of every stream, in blocks of {cfg.data.holdout_block} "
            f"records, chosen per class), from the last {cfg.data.eval_slots:g} slots of every "
            f"stream before the model existed, topped up per stream to hold both classes. "
            f"The last round's set: {last.eval_windows} windows, base rate "
            f"{_fmt(last.base_rate)}."
        ),
        Table(
            ["metric", "last round", "mean over rounds"],
            [
                ["accuracy", _fmt(summary.final_accuracy), _fmt(summary.mean_accuracy)],
                ["F1", _fmt(summary.final_f1), _fmt(summary.mean_f1)],
                ["precision", _fmt(summary.final_precision), ""],
                ["recall", _fmt(summary.final_recall), ""],
                ["ROC AUC", _fmt(summary.final_roc_auc), _fmt(summary.mean_roc_auc)],
                ["PR AUC", _fmt(summary.final_pr_auc), ""],
                ["balanced accuracy", _fmt(summary.final_balanced_accuracy), ""],
                ["base rate (anomalous share)", _fmt(summary.final_base_rate), ""],
            ],
        ),
        Table(
            ["last round", "predicted anomalous", "predicted normal"],
            [
                ["anomalous", str(last.tp), str(last.fn)],
                ["normal", str(last.fp), str(last.tn)],
            ],
        ),
    ]
    verdict = (
        f"target: {target.metric} >= {target.value:g} and above the best constant "
        f"predictor on the same windows"
    )
    reached = [r.round + 1 for r in result.rounds if r.target_reached]
    blocks.append(
        Callout(
            "holds" if reached else "info",
            f"Target {'reached in round ' + str(reached[0]) if reached else 'not reached'}",
            [verdict],
        )
    )
    unjudged = [r.round + 1 for r in result.rounds if not r.target_judged]
    if unjudged:
        blocks.append(
            Callout(
                "not decidable",
                f"Target not judged in {len(unjudged)} round(s)",
                [
                    f"rounds {', '.join(map(str, unjudged))}: the evaluation set held fewer "
                    f"than {cfg.data.eval_min_windows} anomalous or normal windows, too few to "
                    "tell a model from a guess; the run went on"
                ],
            )
        )
    if summary.streams_without_anomalies:
        blocks.append(
            Callout(
                "info",
                "Streams with no anomalous evaluation window",
                [
                    f"{name}: no anomalous held-out window in {n} of {summary.rounds_run} "
                    "round(s) (it had none up to then)"
                    for name, n in summary.streams_without_anomalies.items()
                ],
            )
        )
    return blocks


def _learned_blocks(result: RunResult) -> list[Any]:
    learned = result.prepared.learned
    if learned is None:
        return []
    fit = learned.fit
    fig = new_figure(1, panel_size=(6.0, 3.8))
    ax = fig.axes[0]
    ax.plot(learned.aoi, learned.score, "o", color=PALETTE[0], label="pilot (measured)")
    ax.plot(
        learned.aoi, fit.predict(learned.aoi, learned.latency), "x", color=PALETTE[1], label="fit"
    )
    ax.set_xlabel("mean AoI of the pilot's requests (s)")
    ax.set_ylabel(result.prepared.config.task.target.metric)
    ax.legend(fontsize=8)
    ax.set_title("learned satisfaction: quality against AoI")
    return [
        Heading("Learned satisfaction"),
        Paragraph(
            f"A pilot measured the target metric against AoI and latency; fit "
            f"{fit.p:.4g} + {fit.q:.4g} ln({fit.C:.4g} - {fit.alpha:.2f} A - "
            f"{1 - fit.alpha:.2f} D) (r2 {_fmt(fit.r2)}), so G = {learned.value:g} x fit: "
            f"beta = {learned.market.beta:.4g}, K = H = {fit.C:.4g}, alpha = {fit.alpha:.2f}, "
            f"corrected closed forms. Largest relative second difference of the "
            f"objectives: {learned.curvature:.3g} "
            f"({'concave: the exact solver applies' if learned.concave else 'NOT concave'})."
        ),
        FigureBlock(png_bytes(fig), "learned.png", "The pilot's points and the fit at them."),
    ]


def _shorten(text: str, limit: int = 240) -> str:
    """The start of a long reason (the full text is in ``summary.json``)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10**6:
        return f"{value:,}"
    return str(value)


def _byzantine_callout(result: RunResult, rows: Sequence[Mapping[str, Any]]) -> list[Callout]:
    """Who attacked, how, and what stood in the way (none in an honest run)."""
    attackers = [r for r in rows if r["byzantine"]]
    if not attackers:
        return []
    names = result.summary.plugins
    rule = names["aggregation"]
    options = result.prepared.config.train.aggregation_options
    if options and rule == result.prepared.config.train.aggregation:
        rule += " (" + ", ".join(f"{k} = {v}" for k, v in options.items()) + ")"
    first, last = result.summary.initial_roc_auc, result.summary.final_roc_auc
    return [
        Callout(
            "info",
            f"{len(attackers)} of {len(rows)} workers are Byzantine",
            [
                f"Attack: {result.summary.byzantine_attack}; attackers: "
                + ", ".join(str(r["worker"]) for r in attackers)
                + ".",
                "They sign valid records of what they send: the chains accept their updates "
                "and pay them; only the aggregation rule stands in their way.",
                f"Aggregation rule: **{rule}**; ROC AUC {first:.3f} untrained, {last:.3f} "
                "after the last round (compare an honest run of the same seed).",
            ],
        )
    ]


def run_document(result: RunResult) -> Document:
    """The run's report as a document (rendered to HTML by :func:`write_run_report`)."""
    cfg = result.prepared.config
    summary = result.summary
    rows = worker_rows(result.prepared, result.outcome)
    seconds = summary.seconds
    blocks: list[Any] = [
        Paragraph(
            f"Scheme **{summary.scheme}**, {len(result.prepared.workers)} workers "
            f"({cfg.workers.physical} IIoT nodes and their twins), {summary.rounds_run} "
            f"rounds on the **{result.deployments['backend']}** chains, seed {cfg.task.seed}, "
            f"data: "
            f"{cfg.data.source if cfg.data.source == 'generator' else cfg.data.folder}."
        ),
        Heading("Summary"),
        Table(
            ["what", "value"],
            [
                [k.replace("_", " "), _fmt(getattr(summary, k))]
                for k in (
                    "initial_accuracy",
                    "initial_roc_auc",
                    "final_accuracy",
                    "best_accuracy",
                    "final_roc_auc",
                    "mean_aoi_s",
                    "mean_latency_s",
                    "updates_accepted",
                    "updates_rejected",
                    "gas_total",
                    "budget_wei",
                    "paid_wei",
                    "reclaimed_wei",
                )
            ],
        ),
        Callout("holds", "Payments match the ledger", list(summary.balance_checks)),
        *_evaluation_blocks(result),
        *_learned_blocks(result),
        *_byzantine_callout(result, rows),
        Heading("Learning"),
        FigureBlock(
            _accuracy_figure(result), "accuracy.png", "Global model and freshness by round."
        ),
        FigureBlock(
            _accuracy_vs_aoi_figure({summary.scheme: result}),
            "accuracy-aoi.png",
            "Each round's accuracy against the mean AoI of the data it was trained on.",
        ),
        Heading("Freshness: the slot clock against the closed forms"),
        FigureBlock(
            _aoi_figure(rows),
            "aoi.png",
            "Mean AoI and latency of each worker's requests, measured on the slot clock, "
            "with the corrected and the paper's closed forms at its item's cycle.",
        ),
        Heading("The contract"),
        FigureBlock(_menu_figure(result), "menu.png", "The menu and which items workers chose."),
        FigureBlock(
            _utility_figure(summary),
            "utility.png",
            "SP utility: the contract's expectation, its value for the types drawn, and the "
            "value realised from measured AoI and latency.",
        ),
        Heading("Payments"),
        FigureBlock(
            _payment_figure(rows, summary.reclaimed_wei),
            "payments.png",
            "What each worker withdrew on the main chain.",
        ),
        Heading("Rejections"),
    ]
    if summary.rejections:
        blocks.append(
            Table(
                ["round", "worker", "where", "reason"],
                [
                    [str(x["round"]), str(x["worker"]), str(x["where"]), _shorten(str(x["reason"]))]
                    for x in summary.rejections
                ],
            )
        )
    else:
        blocks.append(Paragraph("None: every update was attested, verified and aggregated."))
    blocks += [
        Heading("Where the time went"),
        BulletList([f"{k}: {v:.2f} s" for k, v in seconds.items()]),
        Heading("Workers"),
        Table(
            [
                "worker",
                "type",
                "item",
                "AoI (s)",
                "latency (s)",
                "delivered",
                "missed rounds",
                "paid (wei)",
                "Byzantine",
            ],
            [
                [
                    r["worker"],
                    str(r["type"]),
                    str(r["item"]),
                    f"{r['aoi_measured_s']:.2f}",
                    f"{r['latency_measured_s']:.2f}",
                    str(r["rounds_delivered"]),
                    r["rounds_missed"] or "-",
                    f"{r['paid_wei']:,}",
                    r["attack"] or "-",
                ]
                for r in rows
            ],
        ),
    ]
    return Document(title="aoichain run report", blocks=blocks)


def write_run_report(result: RunResult) -> Path:
    """Write ``report.html`` into the run folder; return its path."""
    path = result.out_dir / "report.html"
    path.write_text(run_document(result).to_html())
    return path


def write_comparison_report(
    out_dir: str | Path, rows: Sequence[Mapping[str, Any]], results: Mapping[str, RunResult]
) -> Path:
    """Write ``report.html`` comparing the schemes, with each run's own report beside it."""
    out = Path(out_dir)
    for result in results.values():
        write_run_report(result)
    schemes = [str(r["scheme"]) for r in rows]
    fig = new_figure(3, panel_size=(4.4, 3.6))
    for ax, (key, label) in zip(
        fig.axes,
        (
            ("final_accuracy", "final accuracy"),
            ("mean_aoi_s", "mean AoI (s)"),
            ("sp_utility_measured", "realised SP utility"),
        ),
        strict=True,
    ):
        ax.bar(schemes, [float(r[key]) for r in rows], color=PALETTE[: len(rows)])
        ax.set_title(label)
    curves = {
        s: ([r.round + 1 for r in res.rounds], [r.accuracy for r in res.rounds])
        for s, res in results.items()
    }
    doc = Document(
        title="aoichain: incentive schemes compared",
        blocks=[
            Paragraph(
                "The same task, seed and data under each scheme; "
                "each run's folder is beside this report."
            ),
            Table(
                [c.replace("_", " ") for c in rows[0]],
                [[_fmt(v) for v in r.values()] for r in rows],
            ),
            FigureBlock(png_bytes(fig), "comparison.png", "Schemes side by side."),
            FigureBlock(
                png_bytes(line_panels({"accuracy": curves}, xlabel="round", ylabel="accuracy")),
                "accuracy.png",
                "Accuracy by round under each scheme.",
            ),
            FigureBlock(
                _accuracy_vs_aoi_figure(results),
                "accuracy-aoi.png",
                "Each round's accuracy against the mean AoI of its requests, per scheme.",
            ),
        ],
    )
    path = out / "report.html"
    path.write_text(doc.to_html())
    return path


def _seeds_figure(comparison: SeedComparison) -> bytes:
    """Mean accuracy against mean AoI, one point per run, each variant's mean with its CI."""
    fig = new_figure(2, panel_size=(5.6, 4.0))
    left, right = fig.axes
    for k, variant in enumerate(comparison.variants):
        colour = PALETTE[k % len(PALETTE)]
        mine = [r for r in comparison.runs if r["variant"] == variant]
        left.scatter(
            [r["mean_aoi_s"] for r in mine],
            [r["mean_accuracy"] for r in mine],
            color=colour,
            label=variant,
            s=22,
            alpha=0.8,
        )
        for r in mine:
            right.scatter(r["round_mean_aoi_s"], r["round_accuracy"], color=colour, s=6, alpha=0.35)
        cis = {c["quantity"]: c for c in comparison.intervals if c["variant"] == variant}
        x, y = cis["mean_aoi_s"], cis["mean_accuracy"]
        left.errorbar(
            [x["mean"]],
            [y["mean"]],
            xerr=[[x["mean"] - x["low"]], [x["high"] - x["mean"]]],
            yerr=[[y["mean"] - y["low"]], [y["high"] - y["mean"]]],
            color=colour,
            marker="s",
            markersize=8,
            capsize=4,
        )
    left.set_xlabel("mean AoI of the run's requests (s)")
    left.set_ylabel("mean accuracy over the rounds")
    left.set_title(f"runs over {len(comparison.seeds)} seeds (squares: mean, 95 % CI)")
    left.legend(fontsize=8)
    right.set_xlabel("mean AoI of the round's requests (s)")
    right.set_ylabel("accuracy of the round's model")
    right.set_title("every round of every run")
    return png_bytes(fig)


def write_seeds_report(out_dir: str | Path, comparison: SeedComparison) -> Path:
    """Write ``report.html`` of a comparison over seeds: intervals, paired differences, figure."""
    out = Path(out_dir)

    def ci(row: Mapping[str, Any], key: str = "mean") -> str:
        if not np.isfinite(row["low"]):
            return _fmt(row[key])
        return f"{row[key]:.4g} [{row['low']:.4g}, {row['high']:.4g}]"

    quantities = list(dict.fromkeys(c["quantity"] for c in comparison.intervals))
    table = Table(
        ["variant", *[q.replace("_", " ") for q in quantities]],
        [
            [
                v,
                *[
                    ci(c)
                    for q in quantities
                    for c in comparison.intervals
                    if c["variant"] == v and c["quantity"] == q
                ],
            ]
            for v in comparison.variants
        ],
    )
    blocks: list[Any] = [
        Paragraph(
            f"Each variant ran on seeds {', '.join(map(str, comparison.seeds))}: each seed "
            "draws its own streams, worker types, phases and initial model, shared by the "
            "variants. Cells are means with 95 % Student-t intervals over the seeds; metrics "
            "are on the held-out evaluation windows; reward is in contract units."
        ),
        table,
    ]
    blocks += [Callout("partly", "Not comparable", (w,)) for w in comparison.warnings]
    if comparison.versus:
        blocks += [
            Heading("Paired differences to flat pricing (same seed)"),
            Table(
                ["variant", *[q.replace("_", " ") for q in quantities]],
                [
                    [
                        v,
                        *[
                            ci(c, "minus_flat")
                            for q in quantities
                            for c in comparison.versus
                            if c["variant"] == v and c["quantity"] == q
                        ],
                    ]
                    for v in comparison.variants
                    if v != "flat"
                ],
            ),
        ]
    blocks.append(
        FigureBlock(
            _seeds_figure(comparison),
            "accuracy-aoi-seeds.png",
            "Accuracy against AoI across seeds: per run (left, with each variant's mean and "
            "95 % interval) and per round (right).",
        )
    )
    path = out / "report.html"
    path.write_text(Document(title="aoichain: schemes over seeds", blocks=blocks).to_html())
    return path

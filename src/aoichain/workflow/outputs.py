"""The run folder: what a run leaves behind, as files pandas reads directly.

``config.toml`` (resolved), ``contract.json``, ``rounds.csv``,
``workers.csv``, ``receipts.jsonl``, ``deployments.json`` and
``summary.json``. The HTML report is drawn from these by
:mod:`aoichain.report`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aoichain.incentive import aoi as closed_aoi
from aoichain.incentive import latency as closed_latency
from aoichain.incentive import satisfaction_from
from aoichain.jsonio import dumps, write_json
from aoichain.workflow.config import config_to_toml
from aoichain.workflow.steps import TaskOutcome
from aoichain.workflow.summary import RunSummary
from aoichain.workflow.task import mean_finite

if TYPE_CHECKING:
    from aoichain.workflow.steps import Prepared


def worker_rows(prepared: Prepared, outcome: TaskOutcome) -> list[dict[str, Any]]:
    """One row per worker: type, item, measured and predicted AoI/latency, money."""
    market, contract = prepared.market, prepared.contract
    t, a = float(market.t), float(market.a)
    alphas = np.broadcast_to(np.asarray(market.alpha, dtype=float), (len(market.gammas),))
    attack_of = attacks(prepared)
    missed: dict[str, list[int]] = {}
    for x in outcome.rejections:
        if x.where == "worker":  # it did not answer, or answered past the deadline
            missed.setdefault(x.worker, []).append(x.round)
    rows = []
    for w in prepared.workers:
        item = w.item
        theta = float(contract.theta[item]) if item >= 0 else math.nan
        measured_aoi = mean_finite(outcome.requests.aoi[:, w.index])
        measured_lat = mean_finite(outcome.requests.latency[:, w.index])
        alpha = float(alphas[w.type_index])
        reward = float(contract.reward[item]) if item >= 0 else 0.0
        g_measured = float(
            satisfaction_from(
                np.array(measured_aoi),
                np.array(measured_lat),
                np.array(alpha),
                market.K,
                market.H,
                market.beta,
            )
        )
        rows.append(
            {
                "worker": w.label,
                "address": w.address,
                "space": w.space,
                "node": w.node,
                "type": w.type_index + 1,
                "gamma": w.gamma,
                "item": item + 1 if item >= 0 else 0,
                "c": w.c,
                "theta_s": theta,
                "phase_slot": w.phase,
                "worker_utility": reward - (float(contract.f[item]) / w.gamma)
                if item >= 0
                else 0.0,
                "aoi_measured_s": measured_aoi,
                "latency_measured_s": measured_lat,
                "aoi_corrected_s": float(closed_aoi(theta, t=t, a=a, formulas="corrected")),
                "latency_corrected_s": float(closed_latency(theta, t=t, a=a, formulas="corrected")),
                "aoi_paper_s": float(closed_aoi(theta, t=t, a=a, formulas="paper")),
                "latency_paper_s": float(closed_latency(theta, t=t, a=a, formulas="paper")),
                "rounds_delivered": int(outcome.requests.delivered[:, w.index].sum()),
                "rounds_missed": " ".join(str(r) for r in missed.get(w.label, [])),
                "reward_rate": reward,
                "sp_utility_measured": g_measured - reward,
                "credited_wei": outcome.credited_wei[w.index],
                "paid_wei": outcome.paid_wei[w.index],
                "byzantine": w.index in attack_of,
                "attack": attack_of.get(w.index, ""),
            }
        )
    return rows


def attacks(prepared: Prepared) -> dict[int, str]:
    """The attack of each Byzantine worker, in words, by worker index (honest ones absent).

    Asked of the run's fault injector; one that has no ``attack_of`` (a
    plug-in that does not subclass :class:`~aoichain.workflow.FaultInjector`)
    names nobody.
    """
    attack_of = getattr(prepared.plugins.faults, "attack_of", None)
    if attack_of is None:
        return {}
    found = {w.index: attack_of(w) for w in prepared.workers}
    return {index: str(attack) for index, attack in found.items() if attack}


def summarise(prepared: Prepared, outcome: TaskOutcome, rows: list[dict[str, Any]]) -> RunSummary:
    """Headline numbers of a run, including the realised SP utility next to the prediction."""
    market, contract = prepared.market, prepared.contract
    alphas = np.broadcast_to(np.asarray(market.alpha, dtype=float), (len(market.gammas),))
    predicted_realised_types = 0.0
    for w in prepared.workers:
        if w.item < 0:
            continue
        g = satisfaction_from(
            np.array(float(contract.aoi[w.item])),
            np.array(float(contract.latency[w.item])),
            np.array(float(alphas[w.type_index])),
            market.K,
            market.H,
            market.beta,
        )
        predicted_realised_types += float(g) - float(contract.reward[w.item])
    last = outcome.rounds[-1]
    config = prepared.config
    reward_paid = sum(outcome.paid_wei) / config.task.wei_per_reward_unit
    mean_accuracy = mean_finite(np.array([r.accuracy for r in outcome.rounds]))
    mean_f1 = mean_finite(np.array([r.f1 for r in outcome.rounds]))
    without: dict[str, int] = {}
    for r in outcome.rounds:
        for name in r.streams_without_anomalies.split():
            without[name] = without.get(name, 0) + 1
    byzantine = [r for r in rows if r["byzantine"]]
    return RunSummary(
        scheme=prepared.plugins.names["scheme"],
        plugins=prepared.plugins.names,
        rounds_run=len(outcome.rounds),
        initial_accuracy=outcome.initial.accuracy,
        initial_roc_auc=outcome.initial.roc_auc,
        final_accuracy=last.accuracy,
        final_f1=last.f1,
        final_roc_auc=last.roc_auc,
        final_precision=last.precision,
        final_recall=last.recall,
        final_pr_auc=last.pr_auc,
        final_balanced_accuracy=last.balanced_accuracy,
        final_base_rate=last.base_rate,
        final_confusion={"tp": last.tp, "fp": last.fp, "tn": last.tn, "fn": last.fn},
        final_eval_windows=last.eval_windows,
        initial_f1=outcome.initial.f1,
        mean_accuracy=mean_accuracy,
        mean_f1=mean_f1,
        mean_roc_auc=mean_finite(np.array([r.roc_auc for r in outcome.rounds])),
        mean_base_rate=mean_finite(np.array([r.base_rate for r in outcome.rounds])),
        best_accuracy=max(r.accuracy for r in outcome.rounds),
        target_metric=config.task.target.metric,
        target_value=config.task.target.value,
        target_reached=last.target_reached,
        rounds_not_judged=sum(1 for r in outcome.rounds if not r.target_judged),
        streams_without_anomalies=without,
        mean_aoi_s=mean_finite(outcome.requests.aoi),
        mean_latency_s=mean_finite(outcome.requests.latency),
        updates_accepted=sum(r.accepted for r in outcome.rounds),
        updates_rejected=sum(r.rejected for r in outcome.rounds),
        byzantine_workers=len(byzantine),
        byzantine_attack="; ".join(sorted({r["attack"] for r in byzantine})) or None,
        rejections=[asdict(x) for x in outcome.rejections],
        gas_total=sum(r.gas for r in outcome.rounds),
        sp_utility_contract=float(contract.sp_utility_total),
        sp_utility_predicted_for_drawn_types=predicted_realised_types,
        sp_utility_measured=float(sum(r["sp_utility_measured"] for r in rows)),
        workers_utility_contract=float(contract.workers_utility),
        budget_wei=outcome.budget_wei,
        paid_wei=sum(outcome.paid_wei),
        reward_paid=reward_paid,
        accuracy_per_reward=mean_accuracy / reward_paid if reward_paid > 0 else math.nan,
        f1_per_reward=mean_f1 / reward_paid if reward_paid > 0 else math.nan,
        reclaimed_wei=outcome.reclaimed_wei,
        balance_checks=outcome.balance_checks,
        global_sha256=outcome.global_sha256,
        time_scale=prepared.time_scale,
        warmup_slots=prepared.warmup_slots,
        seconds=outcome.phases.snapshot(),
        satisfaction=config.satisfaction.satisfaction,
        learned_satisfaction=None if prepared.learned is None else prepared.learned.to_dict(),
    )


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_run_folder(
    out: Path,
    prepared: Prepared,
    outcome: TaskOutcome,
    deployments: dict[str, Any],
    receipts: list[dict[str, Any]],
) -> RunSummary:
    """Write every file of the run folder; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.toml").write_text(config_to_toml(prepared.config.with_absolute_paths()))
    write_json(out / "contract.json", prepared.contract.to_dict())
    _write_csv(out / "rounds.csv", [asdict(r) for r in outcome.rounds])
    rows = worker_rows(prepared, outcome)
    _write_csv(out / "workers.csv", rows)
    with (out / "receipts.jsonl").open("w") as fh:
        for receipt in receipts:
            fh.write(dumps(receipt, indent=None) + "\n")
    write_json(out / "deployments.json", deployments)
    summary = summarise(prepared, outcome, rows)
    write_json(out / "summary.json", summary.to_dict())
    return summary

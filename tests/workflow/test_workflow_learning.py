"""Honest learning in a run: held-out evaluation, targets, fixed caches, learned satisfaction."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from aoichain.chain import Network
from aoichain.errors import InvalidInput
from aoichain.fl import ModelStore, SensorStream
from aoichain.report.run_report import write_run_report
from aoichain.workflow import FederatedTask, StreamRequest, load_run_config, prepare, run_task
from aoichain.workflow.sources import generator_source

SMALL: dict[str, Any] = {
    "task": {"rounds": 3, "seed": 2},
    "workers": {"physical": 2},
    "chain": {"backend": "embedded"},
}


def quiet_second_node(request: StreamRequest) -> list[SensorStream]:
    """The generator's streams, but node 1 never has an anomaly."""
    streams = generator_source(request)
    s = streams[1]
    streams[1] = SensorStream(s.name, s.columns, s.times, s.values, np.zeros_like(s.labels))
    return streams


@pytest.mark.slow
def test_a_stream_without_anomalies_is_reported(tmp_path: Path) -> None:
    result = run_task(load_run_config(overrides=SMALL), tmp_path, source=quiet_second_node)
    assert result.summary.streams_without_anomalies == {"gen-001": 3}
    with (tmp_path / "rounds.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["streams_without_anomalies"] for r in rows] == ["gen-001"] * 3
    html = write_run_report(result).read_text()
    assert "gen-001" in html and "no anomalous" in html


@pytest.mark.slow
def test_too_few_anomalies_to_judge_are_said_and_the_run_goes_on(tmp_path: Path) -> None:
    overrides = {
        **SMALL,
        "task": {**SMALL["task"], "target": {"metric": "roc_auc", "value": 0.01}},
        "data": {"eval_min_windows": 100_000},
    }
    result = run_task(load_run_config(overrides=overrides), tmp_path)
    assert len(result.rounds) == 3  # never stopped early
    assert result.summary.rounds_not_judged == 3 and not result.summary.target_reached
    assert all(r.roc_auc > 0.01 for r in result.rounds)  # it would have stopped otherwise
    assert "not judged" in write_run_report(result).read_text()


def test_the_target_names_a_metric_and_reads_the_older_key() -> None:
    assert load_run_config().task.target.metric == "f1"
    older = load_run_config(overrides={"task": {"target_accuracy": 0.8}})
    assert (older.task.target.metric, older.task.target.value) == ("accuracy", 0.8)
    with pytest.raises(InvalidInput, match=r"'task\.target\.metric'"):
        load_run_config(overrides={"task": {"target": {"metric": "recall"}}})
    with pytest.raises(InvalidInput, match="not both"):
        load_run_config(overrides={"task": {"target_accuracy": 0.8, "target": {"value": 0.5}}})
    with pytest.raises(InvalidInput, match=r"market\.satisfaction"):
        load_run_config(overrides={"market": {"satisfaction": "vibes"}})


def test_the_chain_gets_the_named_metrics_target() -> None:
    cfg = load_run_config(
        overrides={**SMALL, "task": {"target": {"metric": "pr_auc", "value": 0.7}}}
    )
    assert prepare(cfg).task.target_accuracy_ppm == 700_000


def _cache_spans(cache: str) -> dict[float, float]:
    """Seconds of stream each physical worker's cache spans, by its item's c."""
    cfg = load_run_config(
        overrides={
            **SMALL,
            "task": {"rounds": 1, "scheme": "CC"},
            "workers": {"physical": 6},
            "data": {"cache": cache, "cache_slots": 4},
            "train": {"max_windows": 8192},  # no cap on the windows a cache gives
        }
    )
    prepared = prepare(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        task = FederatedTask(prepared, cast(Network, None), ModelStore(tmp))
        requests = task.serve(0, [w for w in prepared.workers if w.space == "P"])
    spans: dict[float, float] = {}
    for r in requests:
        spans[r.worker.c] = max(spans.get(r.worker.c, 0.0), float(np.ptp(r.cache.t_end)))
    return spans


def test_a_fixed_cache_has_one_size_whatever_the_item() -> None:
    window, fixed = _cache_spans("window"), _cache_spans("fixed")
    assert len(window) > 1  # items with different c
    assert max(window.values()) > 1.5 * min(window.values())
    assert max(fixed.values()) - min(fixed.values()) < 0.2 * max(fixed.values())


@pytest.mark.slow
def test_a_learned_satisfaction_is_fitted_checked_and_used(tmp_path: Path) -> None:
    overrides = {
        **SMALL,
        "market": {"satisfaction": "learned", "pilot_rounds": 2, "pilot_c": [2, 8, 15]},
        "data": {"cache": "fixed"},
    }
    result = run_task(load_run_config(overrides=overrides), tmp_path)
    fit = result.summary.learned_satisfaction
    assert fit is not None and fit["concave"] is True
    assert len(cast(list[object], fit["points"])) == 3
    assert fit["C"] == result.prepared.market.K == result.prepared.market.H
    assert fit["alpha"] == result.prepared.market.alpha
    assert result.prepared.contract.market == result.prepared.market
    assert result.summary.satisfaction == "learned"


def test_every_scheme_of_a_seed_gets_the_same_streams_and_held_out_set() -> None:
    """The warm-up, the streams and the held-out windows do not depend on the menu."""
    seen = []
    for scheme in ("CA", "flat", "CC"):
        prepared = prepare(load_run_config(overrides={**SMALL, "task": {"scheme": scheme}}))
        with tempfile.TemporaryDirectory() as tmp:
            task = FederatedTask(prepared, cast(Network, None), ModelStore(tmp))
            model = task.initial_model()
            judged = [task.evaluate(0, model, at=at) for at in (50.0, 60.0)]
        seen.append((prepared.warmup_slots, [(e.samples, e.tp, e.fp, e.loss) for e in judged]))
    assert seen[0] == seen[1] == seen[2]


def _rates(**by_variant: float) -> list[dict[str, Any]]:
    rows = [
        {"variant": v, "quantity": "mean_base_rate", "mean": rate, "low": 0.0, "high": 1.0}
        for v, rate in by_variant.items()
    ]
    return [*rows, {"variant": "flat", "quantity": "mean_f1", "mean": 0.9}]


def test_variants_judged_on_sets_of_different_base_rates_are_flagged() -> None:
    from aoichain.workflow.compare import BASE_RATE_TOLERANCE, evaluation_sets_differ

    # SKAB valve1, 8 seeds: CA+learned waited 14 s and was judged on later, more anomalous windows.
    warning = evaluation_sets_differ(_rates(CA=0.716, **{"CA+learned": 0.865}, flat=0.708))
    assert warning is not None
    assert "flat 0.708" in warning and "CA+learned 0.865" in warning
    assert "not comparable" in warning
    # The generator: the same base rate for every variant passes, as does a gap at the tolerance.
    assert evaluation_sets_differ(_rates(CA=0.210, flat=0.209)) is None
    assert evaluation_sets_differ(_rates(CA=0.5, flat=0.5 + BASE_RATE_TOLERANCE / 2)) is None
    assert evaluation_sets_differ(_rates(CA=0.5, flat=0.5 + 2 * BASE_RATE_TOLERANCE)) is not None
    # Rounds never judged (no base rate) and a single variant decide nothing.
    assert evaluation_sets_differ(_rates(CA=float("nan"), flat=0.2)) is None
    assert evaluation_sets_differ(_rates(CA=0.1)) is None

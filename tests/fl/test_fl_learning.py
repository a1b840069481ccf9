"""Federated training learns: on the generator and on real SKAB data, and fresh data help.

Each test compares, on the same held-out windows, the untrained model, the
federated model (FedAvg over the workers' datasets) and centralised training
on the union of the same datasets for the same number of epochs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aoichain.fl import (
    Dataset,
    Metrics,
    ModelSpec,
    SensorStream,
    TrainConfig,
    aggregate,
    concat_datasets,
    evaluate,
    federated_train,
    fit_normaliser,
    init_model,
    make_windows,
    read_stream_folder,
    train_local,
)

pytestmark = pytest.mark.slow


def compare(
    spec: ModelSpec, workers: list[Dataset], test: Dataset, rounds: int, rule: str = "fedavg"
) -> tuple[Metrics, Metrics, Metrics]:
    cfg = TrainConfig()
    untrained = evaluate(spec, init_model(spec, 0), test)
    fed = federated_train(spec, workers, rounds, cfg, rule).global_blob
    central = federated_train(spec, [concat_datasets(workers)], rounds, cfg).global_blob
    return untrained, evaluate(spec, fed, test), evaluate(spec, central, test)


def assert_learns(untrained: Metrics, fed: Metrics, central: Metrics, gap: float) -> None:
    assert fed.accuracy > untrained.accuracy + 0.05
    assert fed.roc_auc > untrained.roc_auc + 0.1
    assert fed.f1 > untrained.f1
    assert fed.accuracy > central.accuracy - gap
    assert fed.roc_auc > central.roc_auc - gap


# The robust median pays for its robustness on non-IID caches: a wider gap.
@pytest.mark.parametrize(("rule", "gap"), [("fedavg", 0.08), ("median", 0.12)])
def test_federated_training_on_the_generator(
    line: list[SensorStream], rule: str, gap: float
) -> None:
    center, scale = fit_normaliser([s.until(60.0) for s in line])
    spec = ModelSpec(n_sensors=line[0].n_sensors, center=center, scale=scale)
    now = 150.0  # each worker's cache: its last 10 s (500 records, at most 256 windows)
    caches = [make_windows(s.window(now - 10, now), spec.window, max_windows=256) for s in line]
    test = concat_datasets(
        [make_windows(s.window(now, now + 5), spec.window, stride=2) for s in line]
    )
    untrained, fed, central = compare(spec, caches, test, rounds=8, rule=rule)
    assert_learns(untrained, fed, central, gap=gap)


def test_federated_training_on_skab(skab: Path) -> None:
    streams = [s for s in read_stream_folder(skab) if not s.name.startswith("anomaly-free")]
    held_out = {"valve1/12.csv", "valve1/13.csv", "valve1/14.csv", "valve1/15.csv", "valve2/3.csv"}
    train = [s for s in streams if s.name not in held_out]
    assert len(train) == 15
    center, scale = fit_normaliser(train)
    spec = ModelSpec(n_sensors=8, center=center, scale=scale)
    workers = [make_windows(s, spec.window, stride=2) for s in train]  # one experiment each
    test = concat_datasets([make_windows(s, spec.window) for s in streams if s.name in held_out])
    untrained, fed, central = compare(spec, workers, test, rounds=5)
    assert_learns(untrained, fed, central, gap=0.06)


def test_fresh_caches_make_a_better_model_than_stale_ones(line: list[SensorStream]) -> None:
    """The premise of the AoI contract: on a drifting line, the age of the cache matters."""
    center, scale = fit_normaliser([s.until(60.0) for s in line])
    spec = ModelSpec(n_sensors=line[0].n_sensors, center=center, scale=scale)
    accuracy = {}
    for age in (4.0, 40.0):  # seconds between sensing a cache's newest record and training
        blob, late = init_model(spec, 0), []
        for r in range(30):  # one round every 2 s (a slot), evaluated on the last slot's data
            now = 80.0 + 2.0 * r
            caches = [
                make_windows(s.window(now - age - 10, now - age), spec.window, max_windows=128)
                for s in line
            ]
            updates = [
                train_local(spec, blob, d, TrainConfig(seed=100 * r + k))
                for k, d in enumerate(caches)
            ]
            blob = aggregate([u.blob for u in updates], [u.samples for u in updates])
            if r >= 15:
                test = [make_windows(s.window(now - 2, now), spec.window, stride=2) for s in line]
                late.append(evaluate(spec, blob, concat_datasets(test)).accuracy)
        accuracy[age] = sum(late) / len(late)
    assert accuracy[4.0] > accuracy[40.0] + 0.1

"""The generator of drifting production-line streams."""

from __future__ import annotations

import numpy as np
import pytest

from aoichain.config import build_model
from aoichain.errors import InvalidInput
from aoichain.fl import GeneratorConfig, generate_streams, sensor_names


def test_same_seed_same_streams_other_seed_other_streams() -> None:
    cfg = GeneratorConfig(n_streams=3, duration_s=30.0, seed=5)
    a, b = generate_streams(cfg), generate_streams(cfg)
    c = generate_streams(cfg.model_copy(update={"seed": 6}))
    for x, y in zip(a, b, strict=True):
        assert x.values.tobytes() == y.values.tobytes() and (x.labels == y.labels).all()
    assert a[0].values.tobytes() != c[0].values.tobytes()


def test_layout_clock_and_names() -> None:
    cfg = GeneratorConfig(n_streams=2, duration_s=10.0, period_s=0.05, n_sensors=10)
    streams = generate_streams(cfg)
    assert [s.name for s in streams] == ["gen-000", "gen-001"]
    s = streams[0]
    assert len(s) == 200 and s.values.shape == (200, 10) and s.times[-1] == pytest.approx(9.95)
    assert s.columns == sensor_names(10) and s.columns[0] == "temperature"
    assert s.columns[-1] == "sensor9" and s.mask.all() and s.origin == 0.0


def test_anomaly_rate_is_honoured() -> None:
    streams = generate_streams(GeneratorConfig(n_streams=4, duration_s=600.0, anomaly_rate=0.2))
    rate = np.mean([s.labels.mean() for s in streams])
    assert 0.15 < rate < 0.25
    quiet = generate_streams(GeneratorConfig(n_streams=1, duration_s=60.0, anomaly_rate=0.0))
    assert not quiet[0].labels.any()


def test_faults_stand_out_from_normal_records(line: list) -> None:
    s = line[0]
    normal = s.values[s.labels == 0]
    z = np.abs((s.values - np.median(normal, 0)) / normal.std(0)).max(1)
    assert np.mean(z[s.labels == 1]) > np.mean(z[s.labels == 0]) + 0.5


def test_the_line_drifts_and_every_node_sees_the_same_drift() -> None:
    streams = generate_streams(
        GeneratorConfig(n_streams=3, duration_s=600.0, anomaly_rate=0.0, seed=3)
    )
    # 10 s means of the first sensor: they wander far more than the noise,
    # and the nodes wander together (the operating point is the line's).
    means = np.stack([s.values[:, 0].reshape(60, -1).mean(1) for s in streams])
    noise = np.median([np.std(np.diff(s.values[:, 0])) for s in streams])
    assert np.ptp(means[0]) > 5 * noise
    assert np.corrcoef(means).min() > 0.9


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"period_s": 0}, "period_s"),
        ({"anomaly_rate": 0.7}, "anomaly_rate"),
        ({"duration_s": 1.0, "period_s": 1.0}, "at least 2 records"),
        ({"n_streams": 0}, "n_streams"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_config_rejects_bad_values(values: dict, key: str) -> None:
    with pytest.raises(InvalidInput, match=key):
        build_model(GeneratorConfig, values, source="run.toml [data.generator]")

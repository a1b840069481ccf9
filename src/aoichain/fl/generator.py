"""A seeded generator of drifting production-line sensor streams (no download needed).

The model (all noise terms standard normal; sizes are in units of a sensor's
noise level ``sigma_s``; every stream is one node on the same line)::

    value_s(t) = mean_s + sigma_s * (line_s(t) + node_s + season_s(t) + e_s(t) + anomaly_s(t))

- ``line_s(t)``, shared by all nodes: the line's operating point. A
  **regime** offset, redrawn ``~ N(0, regime_shift^2)`` at regime changes
  (a Poisson process, mean spacing ``regime_s`` seconds: product or set-point
  changes), plus a **degradation** ramp ``drift * load_s * (t mod
  maintenance_s)`` that maintenance resets every ``maintenance_s`` seconds
  (``load_s ~ U(0.5, 1.5)`` with a random sign). Because it is shared, fresh
  data from any node tell where the line is now, and stale data mislead.
- ``node_s ~ N(0, node_spread^2)``: a node's fixed calibration offset (non-IID nodes).
- ``season_s(t) = 0.5 sin(2 pi t / P_s + phi_s)``: the machine cycle, ``P_s ~ U(2, 10)`` s.
- ``e_s(t)``: AR(1) measurement noise, unit variance, lag-one correlation ``0.8``.
- ``anomaly_s(t)``: faults, spaced so that a fraction ``anomaly_rate`` of
  the time is anomalous, each lasting ``~ U(0.5, 1.5) * anomaly_duration_s``
  seconds. The line has four fault modes, each with a fixed signature: two
  or three sensors it moves, with signs and weights ``w ~ U(0.7, 1.3)``
  (a jam raises torque and current; a leak lowers pressure and flow). The
  modes differ in shape: **level** (offset ``anomaly_size * w``), **ramp**
  (offset growing from 0.5 to 1.5 times that), **noise** (noise amplified
  ``anomaly_size`` times, offset halved) and **stuck** (sensors frozen at
  their last reading, offset halved). A record is labelled 1 while a fault
  is active.

A fault is told apart mostly by its *level*, which only means something
relative to the line's current operating point: a model trained on a cache
sensed before the line moved mistakes the new normal for a fault, or a
fault for the new normal. That is why, on these streams, fresher data make
a better model. With the defaults (50 Hz; wear of ``0.04`` noise levels per
second, reset every 120 s; regimes every 120 s on average, shifts of 2 noise
levels; faults of 5 noise levels lasting about 0.5 s, 20 % of the time), the
operating point moves about one noise level every 25 s, and a federated
model trained on caches 60 s old is a few points less accurate than one
trained on fresh caches (see the README's "Federated learning" section).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aoichain.fl.streams import SensorStream

SENSOR_NAMES = (
    "temperature",
    "pressure",
    "vibration",
    "current",
    "flow",
    "torque",
    "speed",
    "humidity",
)
AR_COEF = 0.8
FAULT_KINDS = ("level", "ramp", "noise", "stuck")


class GeneratorConfig(BaseModel):
    """Parameters of :func:`generate_streams` (see the module docstring for the model).

    Parameters
    ----------
    n_streams : int
        Nodes (one stream each).
    duration_s : float
        Length of every stream, seconds.
    period_s : float
        Sampling period, seconds (0.02 s = 50 Hz: 100 records per 2 s slot).
    n_sensors : int
        Sensors per node; the first eight are named ``temperature, pressure,
        vibration, current, flow, torque, speed, humidity``, later ones ``sensor8``...
    drift : float
        Degradation speed, noise levels per second.
    maintenance_s : float
        Seconds between maintenances (the degradation resets).
    regime_s : float
        Mean seconds between regime changes.
    regime_shift : float
        Standard deviation of a regime's offset, noise levels.
    node_spread : float
        Standard deviation of a node's calibration offset, noise levels.
    anomaly_rate : float
        Expected fraction of anomalous records, in ``[0, 0.5]``.
    anomaly_duration_s : float
        Mean length of a fault, seconds.
    anomaly_size : float
        Size of a fault, noise levels.
    seed : int
        Everything random derives from it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_streams: int = Field(default=10, ge=1, le=10_000)
    duration_s: float = Field(default=1200.0, gt=0, le=1e7)
    period_s: float = Field(default=0.02, gt=0, le=3600)
    n_sensors: int = Field(default=8, ge=1, le=256)
    drift: float = Field(default=0.04, ge=0, le=100)
    maintenance_s: float = Field(default=120.0, gt=0)
    regime_s: float = Field(default=120.0, gt=0)
    regime_shift: float = Field(default=2.0, ge=0, le=100)
    node_spread: float = Field(default=0.3, ge=0, le=100)
    anomaly_rate: float = Field(default=0.2, ge=0, le=0.5)
    anomaly_duration_s: float = Field(default=0.5, gt=0)
    anomaly_size: float = Field(default=5.0, ge=0, le=100)
    seed: int = Field(default=0, ge=0, lt=2**63)

    @model_validator(mode="after")
    def _records(self) -> GeneratorConfig:
        n = self.duration_s / self.period_s
        if n < 2:
            raise ValueError("duration_s / period_s must give at least 2 records per stream")
        if n * self.n_sensors * self.n_streams > 2e9:
            raise ValueError(
                f"{self.n_streams} streams x {n:.0f} records x {self.n_sensors} sensors is "
                "more than 2e9 values"
            )
        return self


def sensor_names(n: int) -> tuple[str, ...]:
    """Column names of a generated stream with ``n`` sensors."""
    return tuple(SENSOR_NAMES[i] if i < len(SENSOR_NAMES) else f"sensor{i}" for i in range(n))


def _line_state(cfg: GeneratorConfig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The shared operating point ``line_s(t)``, shape ``(T, S)``, in noise levels."""
    s = cfg.n_sensors
    n_changes = rng.poisson(cfg.duration_s / cfg.regime_s)
    change_times = np.sort(rng.uniform(0.0, cfg.duration_s, n_changes))
    offsets = rng.normal(0.0, cfg.regime_shift, (n_changes + 1, s))
    regime = offsets[np.searchsorted(change_times, t, side="right")]
    load = rng.uniform(0.5, 1.5, s) * rng.choice([-1.0, 1.0], s)
    wear = cfg.drift * np.mod(t, cfg.maintenance_s)
    return regime + wear[:, None] * load[None, :]


def _fault_modes(cfg: GeneratorConfig, rng: np.random.Generator) -> np.ndarray:
    """The line's fault signatures, shape ``(4, S)``: which sensors each fault moves, and how."""
    s = cfg.n_sensors
    modes = np.zeros((len(FAULT_KINDS), s))
    for m in range(len(FAULT_KINDS)):
        k = min(s, int(rng.integers(2, 4)))
        cols = rng.choice(s, size=k, replace=False)
        modes[m, cols] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(0.7, 1.3, size=k)
    return modes


def _anomalies(
    cfg: GeneratorConfig,
    n: int,
    noise: np.ndarray,
    modes: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Fault effects added to the noise-level signal, and the labels."""
    effect = np.zeros((n, cfg.n_sensors))
    labels = np.zeros(n, dtype=np.int8)
    if cfg.anomaly_rate == 0 or cfg.anomaly_size == 0:
        return effect, labels
    mean_len = cfg.anomaly_duration_s / cfg.period_s
    mean_gap = mean_len * (1.0 - cfg.anomaly_rate) / cfg.anomaly_rate
    size = cfg.anomaly_size
    pos = int(rng.exponential(mean_gap))
    while pos < n:
        end = min(n, pos + max(1, int(mean_len * rng.uniform(0.5, 1.5))))
        mode = int(rng.integers(len(FAULT_KINDS)))
        sig = modes[mode]
        cols = np.flatnonzero(sig)
        span = end - pos
        kind = FAULT_KINDS[mode]
        if kind == "level":
            effect[pos:end] += size * sig
        elif kind == "ramp":
            effect[pos:end] += np.linspace(0.5, 1.5, span)[:, None] * size * sig
        elif kind == "noise":
            effect[pos:end, cols] += (size - 1.0) * noise[pos:end, cols]
            effect[pos:end] += 0.5 * size * sig
        else:  # stuck at the last reading, shifted
            effect[pos:end, cols] += noise[max(pos - 1, 0), cols] - noise[pos:end, cols]
            effect[pos:end] += 0.5 * size * sig
        labels[pos:end] = 1
        pos = end + 1 + int(rng.exponential(mean_gap))
    return effect, labels


def generate_streams(cfg: GeneratorConfig) -> list[SensorStream]:
    """Drifting production-line streams, one per node, named ``gen-000``, ``gen-001``...

    All streams share one clock (``times = k * period_s``) and the line's
    operating point; see the module docstring for the model. The same config
    gives the same streams.
    """
    root = np.random.SeedSequence(cfg.seed)
    line_seq, *node_seqs = root.spawn(cfg.n_streams + 1)
    line_rng = np.random.default_rng(line_seq)
    n = int(np.floor(cfg.duration_s / cfg.period_s))
    t = np.arange(n) * cfg.period_s
    s = cfg.n_sensors
    mean = np.round(line_rng.uniform(10.0, 100.0, s), 1)
    sigma = np.round(line_rng.uniform(0.2, 3.0, s), 2)
    line = _line_state(cfg, t, line_rng)
    season_period = line_rng.uniform(2.0, 10.0, s)
    season_phase = line_rng.uniform(0.0, 2 * np.pi, s)
    season = 0.5 * np.sin(2 * np.pi * t[:, None] / season_period + season_phase)
    modes = _fault_modes(cfg, line_rng)
    columns = sensor_names(s)
    # Imported here: scipy.signal costs ~0.7 s to import, and a process that reads
    # its streams from a cache (a Flower worker) never needs it.
    from scipy.signal import lfilter

    streams = []
    for k, seq in enumerate(node_seqs):
        rng = np.random.default_rng(seq)
        white = rng.standard_normal((n, s))
        noise = lfilter([np.sqrt(1 - AR_COEF**2)], [1.0, -AR_COEF], white, axis=0)
        node = rng.normal(0.0, cfg.node_spread, s)
        effect, labels = _anomalies(cfg, n, noise, modes, rng)
        level = line + node + season + noise + effect
        streams.append(
            SensorStream(
                name=f"gen-{k:03d}",
                columns=columns,
                times=t.astype(np.float64),
                values=(mean + sigma * level).astype(np.float32),
                labels=labels,
            )
        )
    return streams

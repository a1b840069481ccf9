"""Byzantine workers: who attacks, what each attack does to an update, and the config."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from aoichain.errors import InvalidInput
from aoichain.fl import Dataset, deserialize_state, serialize_state
from aoichain.workflow import (
    ConfiguredFaults,
    Worker,
    config_to_toml,
    load_run_config,
    resolve_plugins,
)
from aoichain.workflow.byzantine import ByzantineSettings, choose_byzantine

RNG = np.random.default_rng(5)
MODEL = {"conv.weight": RNG.normal(0, 0.1, (4, 3)), "head.bias": RNG.normal(0, 0.1, (1,))}
TRAINED = {k: v + RNG.normal(0, 0.01, v.shape) for k, v in MODEL.items()}


def _blob(state: dict[str, np.ndarray]) -> bytes:
    return serialize_state({k: v.astype(np.float32) for k, v in state.items()})


def _worker(index: int) -> Worker:
    return Worker(index, "P", index, index, 0, 1.0, 0, 1.0, 0, ())


def _faults(attack: str, **strength: float) -> ConfiguredFaults:
    settings = ByzantineSettings(workers=1, attack=attack, **strength)  # type: ignore[arg-type]
    return ConfiguredFaults(seed=3, byzantine=settings, byzantine_workers=frozenset({1}))


def _deltas(faults: ConfiguredFaults, round_no: int = 0, worker: int = 1) -> dict:
    """The attacker's delta from the model, and the honest one, per tensor."""
    model, trained = _blob(MODEL), _blob(TRAINED)
    sent = deserialize_state(faults.attack_update(round_no, _worker(worker), model, trained))
    base, honest = deserialize_state(model), deserialize_state(trained)
    return {k: (sent[k] - base[k], honest[k] - base[k]) for k in base}


@pytest.mark.parametrize("s", [1.0, 3.0])
def test_sign_flip_sends_the_delta_negated_and_scaled(s: float) -> None:
    for sent, honest in _deltas(_faults("sign_flip", sign_flip_scale=s)).values():
        np.testing.assert_allclose(sent, -s * honest, rtol=1e-4, atol=1e-6)


def test_scale_sends_the_delta_times_lambda() -> None:
    for sent, honest in _deltas(_faults("scale", scale_factor=25.0)).values():
        np.testing.assert_allclose(sent, 25.0 * honest, rtol=1e-4, atol=1e-6)


def test_noise_adds_gaussian_noise_of_the_stated_std_seeded_per_round_and_worker() -> None:
    big = {"w": np.zeros((200, 100))}
    model, trained = _blob(big), _blob({"w": np.full((200, 100), 0.5)})
    faults = _faults("noise", noise_std=0.3)
    sent = deserialize_state(faults.attack_update(2, _worker(1), model, trained))["w"] - 0.5
    assert abs(sent.mean()) < 0.01 and sent.std() == pytest.approx(0.3, rel=0.02)
    again = faults.attack_update(2, _worker(1), model, trained)
    assert again == faults.attack_update(2, _worker(1), model, trained)
    assert again != faults.attack_update(3, _worker(1), model, trained)


def test_label_flip_poisons_the_cache_not_the_update() -> None:
    cache = Dataset(
        x=np.ones((4, 2, 2), np.float32),
        y=np.array([0, 1, 0, 0], np.float32),
        t_end=np.arange(4.0),
    )
    faults = _faults("label_flip")
    flipped = faults.attack_cache(0, _worker(1), cache)
    np.testing.assert_array_equal(flipped.y, [1, 0, 1, 1])
    assert flipped.x is cache.x and flipped.y.dtype == np.float32
    model, trained = _blob(MODEL), _blob(TRAINED)
    assert faults.attack_update(0, _worker(1), model, trained) == trained


@pytest.mark.parametrize("attack", ["sign_flip", "scale", "noise", "label_flip"])
def test_honest_workers_send_what_they_trained(attack: str) -> None:
    faults = _faults(attack)
    model, trained = _blob(MODEL), _blob(TRAINED)
    assert faults.attack_update(0, _worker(0), model, trained) == trained
    cache = Dataset.empty(2, 1)
    assert faults.attack_cache(0, _worker(0), cache) is cache
    assert faults.attack_of(_worker(0)) is None
    assert faults.attack_of(_worker(1)).startswith(attack)  # type: ignore[union-attr]


def test_the_attackers_are_seeded_stable_and_nested() -> None:
    chosen = [choose_byzantine(20, k, seed=4) for k in range(21)]
    assert [len(c) for c in chosen] == list(range(21))
    assert all(a < b for a, b in pairwise(chosen))  # k's are among k+1's
    assert chosen[5] == choose_byzantine(20, 5, seed=4)
    assert chosen[5] != choose_byzantine(20, 5, seed=5)
    with pytest.raises(ValueError, match="k must be"):
        choose_byzantine(4, 5, seed=0)


def test_the_config_builds_k_attackers_from_the_task_seed() -> None:
    overrides = {
        "task": {"seed": 9},
        "workers": {"physical": 4},
        "faults": {"byzantine": {"workers": 2, "attack": "scale", "scale_factor": 4}},
    }
    faults = resolve_plugins(load_run_config(overrides=overrides)).faults
    assert isinstance(faults, ConfiguredFaults)
    assert faults.byzantine_workers == choose_byzantine(8, 2, seed=9)
    assert faults.byzantine is not None and faults.byzantine.scale_factor == 4.0
    honest = resolve_plugins(load_run_config(overrides={"workers": {"physical": 4}})).faults
    assert isinstance(honest, ConfiguredFaults) and not honest.byzantine_workers


def test_a_byzantine_config_round_trips_through_toml(tmp_path: Path) -> None:
    cfg = load_run_config(
        overrides={
            "faults": {"byzantine": {"workers": 3, "attack": "noise", "noise_std": 0.5}},
            "train": {"aggregation": "multi_krum", "aggregation_options": {"f": 3, "m": 4}},
        }
    )
    path = tmp_path / "resolved.toml"
    path.write_text(config_to_toml(cfg))
    assert load_run_config(path) == cfg


@pytest.mark.parametrize(
    ("faults", "train", "needle"),
    [
        ({"workers": 21, "attack": "scale"}, {}, "faults.byzantine.workers (21) must be at most"),
        ({"workers": 2, "attack": "backdoor"}, {}, "'faults.byzantine.attack'"),
        ({"workers": -1, "attack": "scale"}, {}, "'faults.byzantine.workers'"),
        ({"attack": "scale"}, {}, "'faults.byzantine.workers'"),
        ({"workers": 2, "attack": "scale", "noise_std": 2}, {}, "noise_std applies to attack"),
        ({"workers": 2, "attack": "noise", "noise_std": 0}, {}, "'faults.byzantine.noise_std'"),
        ({"workers": 2, "attack": "scale", "factor": 3}, {}, "'faults.byzantine.factor'"),
        (None, {"aggregation": "krum", "aggregation_options": {"f": 9}}, "krum tolerates"),
        (None, {"aggregation": "krum", "aggregation_options": {"f": -1}}, "'f' parameter of"),
        (None, {"aggregation": "median", "aggregation_options": {"f": 1}}, "Bad options"),
        (None, {"aggregation": "norm_clip", "aggregation_options": {"bound": 0}}, "'bound'"),
        (
            None,
            {"aggregation": "aoichain.fl:FedAvg", "aggregation_options": {"f": 1}},
            "options of a built-in rule",
        ),
    ],
)
def test_bad_byzantine_and_rule_settings_are_named(faults, train, needle) -> None:
    overrides: dict = {"train": train}
    if faults is not None:
        overrides["faults"] = {"byzantine": faults}
    with pytest.raises(InvalidInput) as info:
        load_run_config(overrides=overrides)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('byzantine = { workers = 5, attack = "scale" }', "faults.byzantine.workers (5)"),
        ('byzantine = { workers = 1, attack = "backdoor" }', "'faults.byzantine.attack'"),
    ],
)
def test_the_command_line_refuses_bad_byzantine_settings_with_status_2(
    table: str, needle: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from aoichain.cli import app

    config = tmp_path / "run.toml"
    config.write_text(f"[faults]\n{table}\n")
    out = tmp_path / "run"
    args = ["run", "--config", str(config), "--workers", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not out.exists()

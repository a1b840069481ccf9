"""The run config: defaults, overrides, and every rule's clear error."""

from pathlib import Path

import pytest

from aoichain.errors import InvalidInput
from aoichain.incentive import Market
from aoichain.workflow import RunConfig, config_to_toml, load_run_config


def test_defaults_need_no_file() -> None:
    cfg = load_run_config()
    assert cfg.task.scheme == "CA"
    assert cfg.workers.physical == 10 and cfg.n_workers == 20
    assert cfg.chain.backend == "auto"
    assert cfg.data.source == "generator"
    assert cfg.market == Market(workers=20)


def test_file_then_overrides_win(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[task]\nrounds = 7\nscheme = "CS"\n[market]\na = 4\n')
    cfg = load_run_config(path, {"task": {"rounds": 3}})
    assert cfg.task.rounds == 3 and cfg.task.scheme == "CS"
    assert cfg.market == Market(a=4, workers=20)


def test_resolved_config_round_trips_through_toml(tmp_path: Path) -> None:
    cfg = load_run_config(
        overrides={
            "privacy": {"sensitive_columns": ["pressure"], "nodes": [{"node": 1}]},
            "faults": {"tamper_blob": [1, 2]},
        }
    )
    path = tmp_path / "resolved.toml"
    path.write_text(config_to_toml(cfg))
    assert load_run_config(path) == cfg


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"task": {"rounds": 0}}, "'task.rounds'"),
        ({"task": {"scheme": "XX"}}, "'task.scheme'"),
        ({"task": {"target": {"value": 1.5}}}, "'task.target.value'"),
        ({"task": {"target_accuracy": 1.5}}, "'task.target.value'"),  # the older key
        ({"workers": {"physical": 0}}, "'workers.physical'"),
        ({"chain": {"backend": "ganache"}}, "'chain.backend'"),
        ({"chain": {"committee_size": 3, "threshold": 4}}, "threshold must be at most"),
        ({"chain": {"backend": "rpc"}}, "needs rpc_file"),
        ({"market": {"alpha": 1.7}}, "'market.alpha'"),
        ({"market": {"types": 0}}, "market.types"),
        ({"data": {"source": "folder"}}, "needs a 'folder'"),
        ({"market": {"workers": 7}}, "market.workers (7) must equal"),
        ({"privacy": {"nodes": [{"node": 99}]}}, "names node 99"),
        ({"faults": {"tamper_blob": [0, 999]}}, "tamper_blob"),
        ({"train": {"lr": -1}}, "'train.lr'"),
        ({"bogus": {}}, "'bogus'"),
    ],
)
def test_every_bad_value_is_named(overrides: dict, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_run_config(overrides=overrides)
    assert needle in str(info.value)


def test_errors_name_the_file_and_all_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[task]\nrounds = -1\n[train]\nepochs = 0\n")
    with pytest.raises(InvalidInput) as info:
        load_run_config(path)
    text = str(info.value)
    assert str(path) in text and "'task.rounds'" in text and "'train.epochs'" in text


def test_config_is_frozen() -> None:
    cfg = RunConfig()
    with pytest.raises(ValueError, match="frozen"):
        cfg.task.rounds = 3  # type: ignore[misc]


def test_limits_follow_the_contracts() -> None:
    from aoichain.workflow.config import MAX_PHYSICAL

    assert load_run_config(overrides={"workers": {"physical": MAX_PHYSICAL}})
    with pytest.raises(InvalidInput, match=r"'workers\.physical'"):
        load_run_config(overrides={"workers": {"physical": MAX_PHYSICAL + 1}})
    with pytest.raises(InvalidInput, match=r"'chain\.committee_size'"):
        load_run_config(overrides={"chain": {"committee_size": 33, "threshold": 3}})

"""The Flower engine's parts that need no federation: settings, messages, processes.

A worker's node config must come through Flower's own parser unchanged and
give every worker the private facts the in-process engine draws; the
ServerApp's settings must survive the app's ``pyproject.toml``; the message
format must carry wei and bytes exactly; and stopping a federation's
processes must leave none behind, not even one that left its process group.
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.common.config import parse_config_args
from typer.testing import CliRunner

from aoichain.chain.deployment import record_of
from aoichain.cli import app
from aoichain.flower.errors import FederationError
from aoichain.flower.federation import app_pyproject
from aoichain.flower.messages import content, read
from aoichain.flower.processes import Processes, alive, descendants
from aoichain.flower.settings import (
    ServerSettings,
    WorkerFaults,
    settings_from_node_config,
    worker_settings,
    write_node_config,
)
from aoichain.flower.worker import _load_streams, _save_streams
from aoichain.workflow import Prepared, load_run_config, prepare

ADDRESS = "0x" + "11" * 20


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    return prepare(
        load_run_config(
            overrides={
                "task": {"rounds": 2, "seed": 5},
                "workers": {"physical": 3},
                "privacy": {"sensitive_columns": ["temperature"]},
            }
        )
    )


def _deployment(subchains: dict[str, int]) -> object:
    keys = [
        "M",
        "R",
        *(f"{s}{i + 1}" if n > 1 else s for s, n in subchains.items() for i in range(n)),
    ]
    return record_of(
        "rpc",
        {k: 31401 + i for i, k in enumerate(keys)},
        {k: f"http://127.0.0.1:{8545 + i}" for i, k in enumerate(keys)},
        {k: ADDRESS for k in keys},
        [ADDRESS],
        1,
        {k: [ADDRESS] for k in keys if k != "R"},
        1,
        ADDRESS,
    )


def test_a_node_config_comes_through_flowers_parser_unchanged(
    prepared: Prepared, tmp_path: Path
) -> None:
    deployment = _deployment({"P": 1, "V": 1})
    for space in "PV":
        settings = worker_settings(
            prepared,
            deployment,  # type: ignore[arg-type]
            space,
            2,
            key=tmp_path / "worker.json",
            deployments=tmp_path / "deployments.json",
            chains={"M": "http://10.0.0.2:8545"},
            faults=WorkerFaults(tamper_reply_round=1),
        )
        path = write_node_config(tmp_path / f"{space}.toml", settings)
        assert path.stat().st_mode & 0o077 == 0
        assert settings_from_node_config(parse_config_args([str(path)])) == settings


def test_each_worker_gets_the_private_facts_the_in_process_engine_draws(
    prepared: Prepared, tmp_path: Path
) -> None:
    deployment = _deployment({"P": 2, "V": 2})
    n = prepared.config.workers.physical
    for w in prepared.workers:
        s = worker_settings(
            prepared,
            deployment,
            w.space,
            w.node,
            key="k",
            deployments="d",  # type: ignore[arg-type]
        )
        assert (s.type, s.gamma, s.item, s.phase) == (w.type_index, w.gamma, w.item, w.phase)
        assert s.subchain == f"{w.space}{w.node % 2 + 1}"
        assert s.data.stream == w.node and s.data.nodes == n
        assert (s.data.augment_seed >= 0) == (w.space == "V")
        assert s.privacy == prepared.policies[w.node].model_dump_json()
    with pytest.raises(Exception, match="no worker P3"):
        worker_settings(prepared, deployment, "P", n, key="k", deployments="d")  # type: ignore[arg-type]


def test_the_serverapps_settings_survive_the_apps_pyproject() -> None:
    settings = ServerSettings(
        run_dir="/runs/a",
        config="/runs/a.toml",
        deployments="/chains/deployments.json",
        publisher_key="/keys/publisher.json",
        relayer_key="/chains/keys/relayer.json",
        verifiers="/chains/verifiers.json",
        nodes=8,
    )
    app = tomllib.loads(app_pyproject(settings))["tool"]["flwr"]["app"]
    assert app["components"]["serverapp"] == "aoichain.flower.serverapp:app"
    assert ServerSettings.from_run_config(app["config"]) == settings


def test_messages_carry_wei_and_bytes_exactly() -> None:
    blob = bytes(range(256)) * 3
    values = {"amount": 10**30, "loss": float("nan"), "who": "P0"}
    # A Message needs a run (its metadata); read() looks at the content only.
    step, got, carried = read(SimpleNamespace(content=content("finish", values, blob)))  # type: ignore[arg-type]
    assert (step, carried, got["amount"], got["who"]) == ("finish", blob, 10**30, "P0")
    assert read(SimpleNamespace(content=content("hello", {})))[2] is None  # type: ignore[arg-type]


def test_stopping_leaves_no_process_not_even_one_in_a_session_of_its_own(
    tmp_path: Path,
) -> None:
    tree = (
        "import subprocess, time\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "subprocess.Popen(['sleep', '300'])\n"
        "time.sleep(300)\n"
    )
    with Processes(tmp_path, os.environ) as procs:
        started = procs.start("tree", [sys.executable, "-c", tree])
        deadline = time.monotonic() + 30
        while len(descendants([started.pid])) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        everything = procs.everything()
    assert len(everything) == 3
    assert not [p for p in everything if alive(p)]


def test_a_workers_streams_come_back_from_its_cache_exactly(
    prepared: Prepared, tmp_path: Path
) -> None:
    twin = prepared.workers[-1]  # V2: its view (a column masked) and the virtual data
    _save_streams(tmp_path / "streams.npz", twin.streams)
    for was, back in zip(twin.streams, _load_streams(tmp_path / "streams.npz"), strict=True):
        assert (back.name, back.columns, back.origin) == (was.name, was.columns, was.origin)
        for name in ("times", "values", "labels", "mask"):
            a, b = getattr(was, name), getattr(back, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_the_flower_engine_needs_chains_other_processes_can_reach() -> None:
    result = CliRunner().invoke(app, ["run", "--engine", "flower", "--chains", "embedded"])
    assert result.exit_code == 2
    assert "its chains must be nodes" in result.output


def test_a_failed_federation_ends_the_command_with_status_1_and_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import aoichain.flower.federation as federation

    def failing(*_args: object, **_kwargs: object) -> None:
        raise FederationError("the ServerApp's run ended finished:failed: no SuperNode is P0")

    monkeypatch.setattr(federation, "run_federation", failing)
    argv = ["run", "--engine", "flower", "--workers", "1", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: the ServerApp's run ended finished:failed: no SuperNode is P0"]


class _Grid:
    """Flower's grid as the ServerApp sees it: nodes 1 and 2 connected, node 3 gone;
    node 1 answers "node unavailable" (Flower's reply for a node that missed its
    heartbeats), node 2 nothing at all."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.pushed: list[int] = []

    def get_node_ids(self) -> list[int]:
        if self.down:
            raise ConnectionError("Connection refused")
        return [1, 2]

    def push_messages(self, messages: list[object]) -> list[str]:
        self.pushed = [m.metadata.dst_node_id for m in messages]  # type: ignore[attr-defined]
        return [f"m{node}" for node in self.pushed]

    def pull_messages(self, ids: set[str]) -> list[object]:
        error = SimpleNamespace(code=5, reason="node_unavail")
        meta = SimpleNamespace(src_node_id=1, reply_to_message_id="m1")
        reply = SimpleNamespace(metadata=meta, error=error, has_error=lambda: True)
        return [reply] if "m1" in ids else []


def _message(*, content: object, dst_node_id: int, message_type: str) -> SimpleNamespace:
    """A message outside a Flower run (Flower's own needs a run's context)."""
    return SimpleNamespace(content=content, metadata=SimpleNamespace(dst_node_id=dst_node_id))


def test_a_worker_whose_supernode_is_down_or_silent_did_not_answer_and_nothing_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flwr.app

    from aoichain.flower.errors import FederationDown
    from aoichain.flower.server import Federation, NoReply

    monkeypatch.setattr(flwr.app, "Message", _message)
    grid = _Grid()
    federation = Federation(grid, reply_s=0.5)  # type: ignore[arg-type]
    federation.node_of.update({0: 1, 1: 2, 2: 3})
    started = time.monotonic()
    replies = federation.ask("train", {i: ({}, None) for i in range(3)})
    assert time.monotonic() - started < 5
    assert grid.pushed == [1, 2]  # a node not connected is not asked
    assert all(isinstance(r, NoReply) for r in replies.values())
    assert "node_unavail" in replies[0]
    assert replies[1] == "no reply within 0.5 s"
    assert replies[2] == "its SuperNode is not connected"
    # A SuperLink that does not answer stops the run resumably (an outage), not settled.
    with pytest.raises(FederationDown, match="SuperLink stopped answering"):
        Federation(_Grid(down=True), reply_s=0.5).ask("train", {0: ({}, None)})  # type: ignore[arg-type]


def test_resume_finishes_a_flower_run_on_flower_and_a_dead_superlink_exits_3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import aoichain.flower.federation as federation
    from aoichain.flower.errors import FederationDown
    from aoichain.workflow import config_to_toml

    out = tmp_path / "run"
    out.mkdir()
    deployments = tmp_path / "deployments.json"
    deployments.write_text("{}")
    config = load_run_config(
        overrides={
            "workers": {"physical": 1},
            "chain": {"backend": "rpc", "rpc_file": str(deployments)},
        }
    )
    (out / "config.toml").write_text(config_to_toml(config))
    (out / "journal.jsonl").write_text(
        '{"event": "started", "workers": 2, "rounds": 5, "engine": "flower"}\n'
    )
    seen: dict[str, object] = {}

    def down(cfg: object, out_dir: Path, **kwargs: object) -> None:
        seen.update(kwargs, out_dir=out_dir)
        raise FederationDown("the SuperLink (pid 1) was killed (SIGKILL) after 2 rounds")

    monkeypatch.setattr(federation, "run_federation", down)
    result = CliRunner().invoke(app, ["run", "--resume", str(out), "--reply-timeout", "60"])
    assert seen["resume"] is True and seen["out_dir"] == out and seen["reply_s"] == 60
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: the SuperLink (pid 1) was killed (SIGKILL) after 2 rounds"]


def test_byzantine_workers_attack_from_their_node_configs_and_plug_ins_are_refused(
    tmp_path: Path,
) -> None:
    from aoichain.errors import InvalidInput
    from aoichain.flower.server import check_injector
    from aoichain.workflow import FaultInjector
    from aoichain.workflow.byzantine import choose_byzantine

    byzantine = load_run_config(
        overrides={
            "workers": {"physical": 3},
            "faults": {"byzantine": {"workers": 2, "attack": "scale", "scale_factor": 4.0}},
        }
    )
    ready = prepare(byzantine)
    check_injector(ready.plugins.faults)  # the attackers' nodes attack, not the ServerApp
    attackers = choose_byzantine(6, 2, byzantine.task.seed)
    deployment = _deployment({"P": 1, "V": 1})
    for w in ready.workers:
        s = worker_settings(ready, deployment, w.space, w.node, key="k", deployments="d")  # type: ignore[arg-type]
        attack = s.faults.attack()
        if w.index in attackers:
            assert attack is not None and (attack.attack, attack.scale_factor) == ("scale", 4.0)
        else:
            assert attack is None
        path = write_node_config(tmp_path / f"{w.label}.toml", s)
        assert settings_from_node_config(parse_config_args([str(path)])) == s

    class Poisoner(FaultInjector):
        def attack_update(self, round_no: int, worker: object, model: bytes, u: bytes) -> bytes:
            return u

    with pytest.raises(InvalidInput, match=r"injector Poisoner acts at attack_update"):
        check_injector(Poisoner())


def test_a_node_configs_attack_is_validated_like_faults_byzantine() -> None:
    from aoichain.errors import InvalidInput
    from aoichain.workflow.byzantine import ByzantineSettings

    ok = {"aoichain.faults.byzantine": "noise", "aoichain.faults.noise_std": 0.5}
    faults = settings_from_node_config({**_node_config(), **ok}).faults
    assert faults.attack() == ByzantineSettings(workers=1, attack="noise", noise_std=0.5)
    assert WorkerFaults().attack() is None
    defaults = ByzantineSettings(workers=1, attack="noise")
    for key in ("sign_flip_scale", "scale_factor", "noise_std"):
        assert getattr(WorkerFaults(), key) == getattr(defaults, key)
    bad = {
        "aoichain.faults.byzantine": "sign_flip",
        "aoichain.faults.noise_std": 2.0,  # the strength of another attack
        "aoichain.faults.sign_flip_scale": -1.0,
    }
    with pytest.raises(InvalidInput) as err:
        settings_from_node_config({**_node_config(), **bad})
    message = str(err.value)
    assert "node config" in message and "faults.sign_flip_scale" in message
    with pytest.raises(InvalidInput, match="noise_std applies to byzantine = 'noise' only"):
        settings_from_node_config({**_node_config(), **bad, "aoichain.faults.sign_flip_scale": 2})
    with pytest.raises(InvalidInput, match=r"faults\.byzantine"):
        settings_from_node_config({**_node_config(), "aoichain.faults.byzantine": "flood"})


def _node_config() -> dict[str, object]:
    """An honest worker's flattened node config."""
    data = {"stream": 0, "nodes": 1, "seed": 0, "slots": 10, "slot_s": 1.0}
    return {
        **{"aoichain.key": "k", "aoichain.deployments": "d", "aoichain.space": "P"},
        **{"aoichain.node": 0, "aoichain.subchain": "P", "aoichain.type": 0},
        **{"aoichain.gamma": 1.0, "aoichain.item": 0, "aoichain.phase": 0},
        **{f"aoichain.data.{k}": v for k, v in data.items()},
        "aoichain.data.records_per_slot": 1,
    }


@pytest.mark.parametrize("attack", ["sign_flip", "scale", "noise", "label_flip"])
def test_a_byzantine_clientapp_poisons_exactly_what_the_in_process_attacker_does(
    attack: str,
) -> None:
    from aoichain.fl import ModelSpec, TrainConfig, init_model, train_local

    config = load_run_config(
        overrides={
            "task": {"seed": 3},
            "workers": {"physical": 2},
            "faults": {"byzantine": {"workers": 4, "attack": attack}},
        }
    )
    ready = prepare(config)
    spec: ModelSpec = ready.spec
    model = init_model(spec, config.task.seed)
    worker = ready.workers[1]
    deployment = _deployment({"P": 1, "V": 1})
    mine = worker_settings(ready, deployment, "P", 1, key="k", deployments="d")  # type: ignore[arg-type]
    client = mine.faults.injector(config.task.seed, worker.index)
    in_process = ready.plugins.faults
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, spec.window, 2 * spec.n_sensors)).astype(np.float32)
    from aoichain.fl import Dataset

    cache = Dataset(x=x, y=(rng.random(16) < 0.3).astype(np.float32), t_end=np.arange(16.0))
    theirs = in_process.attack_cache(2, worker, cache)
    ours = client.attack_cache(2, worker, cache)
    assert np.array_equal(theirs.y, ours.y) and (attack == "label_flip") == (
        not np.array_equal(ours.y, cache.y)
    )
    update = train_local(spec, model, ours, TrainConfig(epochs=1, batch_size=8, seed=1)).blob
    poisoned = client.attack_update(2, worker, model, update)
    assert poisoned == in_process.attack_update(2, worker, model, update)
    assert (poisoned != update) == (attack != "label_flip")


class _HelloGrid(_Grid):
    """Nodes 1, 2 and 3 connected: node 1 says it is worker P0, node 2 answers "node
    unavailable", node 3 nothing at all."""

    def __init__(self, hello: dict[str, object]) -> None:
        super().__init__()
        self.hello = hello

    def get_node_ids(self) -> list[int]:
        return [1, 2, 3]

    def pull_messages(self, ids: set[str]) -> list[object]:
        replies = super().pull_messages(ids)
        if "m1" in ids:
            meta = SimpleNamespace(src_node_id=1, reply_to_message_id="m1")
            ok = SimpleNamespace(
                metadata=meta, has_error=lambda: False, content=content("hello", self.hello)
            )
            replies = [ok]
        if "m2" in ids:
            error = SimpleNamespace(code=5, reason="node_unavail")
            meta = SimpleNamespace(src_node_id=2, reply_to_message_id="m2")
            replies.append(SimpleNamespace(metadata=meta, error=error, has_error=lambda: True))
        return replies


def test_supernodes_down_or_silent_at_the_start_leave_their_workers_out_and_nothing_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flwr.app

    from aoichain.flower.server import Federation, introduce

    monkeypatch.setattr(flwr.app, "Message", _message)
    ready = prepare(load_run_config(overrides={"workers": {"physical": 2}}))
    p0 = ready.workers[0]
    hello = {
        "address": ADDRESS,
        **{"space": "P", "node": 0, "subchain": "P", "item": p0.item},
        **{"type": p0.type_index, "gamma": p0.gamma, "phase": p0.phase},
    }
    grid = _HelloGrid(hello)
    federation = Federation(grid, reply_s=0.5)  # type: ignore[arg-type]
    started = time.monotonic()
    # Four SuperNodes expected, three connect: the wait ends with those, it does not fail.
    nodes = federation.wait_for(4, wait_s=0.2)
    introduced, absent = introduce(federation, ready, nodes)
    assert time.monotonic() - started < 5
    assert [(w.label, node, sub) for w, node, sub in introduced] == [("P0", 1, "P")]
    assert sorted(absent) == [1, 2, 3]  # P1, V0, V1: no SuperNode said it is them
    for why in absent.values():
        assert why.startswith("no answer at enrolment (3 SuperNodes connected, 1 said who")
        assert "SuperNode 2: the ClientApp failed: node_unavail" in why
        assert "SuperNode 3: no reply within 0.5 s" in why


def test_a_worker_that_does_not_answer_its_enrolment_is_left_out_not_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flwr.app

    from aoichain.flower.server import Federation, FlowerTask

    monkeypatch.setattr(flwr.app, "Message", _message)
    federation = Federation(_Grid(), reply_s=0.5)  # type: ignore[arg-type]
    federation.node_of.update({0: 1, 1: 2, 2: 3})
    workers = {i: SimpleNamespace(label=f"P{i}") for i in range(3)}
    task = SimpleNamespace(
        federation=federation,
        _by_index=lambda: workers,
        party=lambda _w: SimpleNamespace(enrolled=lambda _task: False),
    )
    tickets = {i: object() for i in range(3)}
    monkeypatch.setattr("aoichain.flower.server.ticket_json", lambda t: {})
    silent = FlowerTask.enrol(task, 7, tickets)  # type: ignore[arg-type]
    assert silent == {
        0: "no answer at enrolment (the ClientApp failed: node_unavail)",
        1: "no answer at enrolment (no reply within 0.5 s)",
        2: "no answer at enrolment (its SuperNode is not connected)",
    }

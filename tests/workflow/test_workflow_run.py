"""The whole task end to end: publish, allocate, train, upload, relay, aggregate, pay.

Small runs (2 IIoT nodes and their twins, a few rounds) on real chains:
embedded py-evm by default, anvil nodes in the marked test.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from aoichain.chain import Network
from aoichain.chain.artifacts import load
from aoichain.report.run_report import write_run_report
from aoichain.workflow import RunResult, load_run_config, run_task

SMALL: dict[str, Any] = {
    "task": {"rounds": 4, "seed": 3, "target_accuracy": 1.0},
    "workers": {"physical": 2},
    "chain": {"backend": "embedded"},
}
PROMISED = (
    "config.toml",
    "contract.json",
    "rounds.csv",
    "workers.csv",
    "receipts.jsonl",
    "deployments.json",
    "summary.json",
    "report.html",
)
ANVIL = Path(__file__).resolve().parents[2] / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def _run_and_inspect(overrides: dict[str, Any], out: Path) -> tuple[RunResult, dict[str, Any]]:
    """Run on chains the test keeps, and read back what M recorded before stopping them."""
    cfg = load_run_config(overrides=overrides)
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        result = run_task(cfg, out, network=net)
        view, task = net.view("M"), result.outcome.task_id
        main = view.contract(load("main"), net.deployment.chains["M"].contract)
        tickets = result.outcome.tickets

        def members(bitmap: str, round_no: int) -> set[int]:
            out = set()
            for w, t in tickets.items():
                word = view.call(main, bitmap, task, round_no, t.index // 256)
                if word >> (t.index % 256) & 1:
                    out.add(w)
            return out

        onchain = {
            "included": [members("included", r.round) for r in result.rounds],
            "attested": [members("submitted", r.round) for r in result.rounds],
            "claimable": [
                net.worker(w.space, w.space_index).claimable(tickets[w.index])
                for w in result.prepared.workers
                if w.index in tickets
            ],
        }
    write_run_report(result)
    return result, onchain


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, dict[str, Any]]:
    return _run_and_inspect(SMALL, tmp_path_factory.mktemp("embedded"))


@pytest.mark.slow
def test_the_model_improves_on_the_untrained_one(embedded: tuple[RunResult, Any]) -> None:
    result, _ = embedded
    first, last = result.outcome.initial, result.rounds[-1]
    assert last.loss < first.loss
    assert last.roc_auc > first.roc_auc


@pytest.mark.slow
def test_every_aggregated_update_is_attested_on_main(embedded: tuple[RunResult, Any]) -> None:
    result, onchain = embedded
    for row, included, attested in zip(
        result.rounds, onchain["included"], onchain["attested"], strict=True
    ):
        assert included, f"round {row.round} aggregated nothing"
        assert included <= attested
        assert len(included) == row.accepted == 4
        assert row.rejected == 0


@pytest.mark.slow
def test_payments_match_the_runs_accounting(embedded: tuple[RunResult, Any]) -> None:
    result, onchain = embedded
    outcome, summary = result.outcome, result.summary
    assert outcome.paid_wei == outcome.credited_wei
    assert sum(outcome.paid_wei) + outcome.reclaimed_wei == outcome.budget_wei
    assert onchain["claimable"] == [0] * len(onchain["claimable"])
    rewards = result.prepared.contract.reward
    rounds = len(result.rounds)
    for w, paid in zip(result.prepared.workers, outcome.paid_wei, strict=True):
        per_round = round(float(rewards[w.item]) * 2.0 * 10**15)
        assert paid == per_round * rounds
    assert summary.balance_checks


@pytest.mark.slow
def test_the_run_folder_holds_every_promised_file(embedded: tuple[RunResult, Any]) -> None:
    result, _ = embedded
    for name in PROMISED:
        path = result.out_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    with (result.out_dir / "rounds.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.rounds)
    for column in (
        "round",
        "accuracy",
        "loss",
        "mean_aoi",
        "mean_latency",
        "accepted",
        "rejected",
        "gas",
        "seconds_training",
        "seconds_ledger",
        "seconds_relaying",
        "seconds_aggregating",
    ):
        assert column in rows[0]
    with (result.out_dir / "workers.csv").open() as fh:
        workers = list(csv.DictReader(fh))
    assert {w["space"] for w in workers} == {"P", "V"}
    for column in ("worker", "type", "item", "aoi_measured_s", "latency_measured_s", "paid_wei"):
        assert column in workers[0]
    receipts = [json.loads(line) for line in (result.out_dir / "receipts.jsonl").open()]
    assert {r["chain"] for r in receipts} == {"M", "R", "P", "V"}
    assert all(r["gas_used"] > 0 and r["tx_hash"] for r in receipts)
    deployments = json.loads((result.out_dir / "deployments.json").read_text())
    assert json.dumps(deployments).count("chain_id") >= 4
    html = (result.out_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5


@pytest.mark.slow
def test_workers_choose_their_own_items(embedded: tuple[RunResult, Any]) -> None:
    """Under CA each worker takes the item that is best for its private type."""
    result, _ = embedded
    contract = result.prepared.contract
    for w in result.prepared.workers:
        utilities = contract.reward - contract.f / w.gamma
        assert utilities[w.item] >= utilities.max() - 1e-9


@pytest.mark.slow
def test_measured_aoi_follows_the_slot_rules(embedded: tuple[RunResult, Any]) -> None:
    result, _ = embedded
    aoi = result.outcome.requests.aoi
    t = result.prepared.market.t
    assert (aoi >= t - 1e-9).all()
    for w in result.prepared.workers:
        assert aoi[:, w.index].max() <= (w.c + result.prepared.market.a) * t


@pytest.mark.slow
def test_same_seed_same_global_model(embedded: tuple[RunResult, Any], tmp_path: Path) -> None:
    again = run_task(load_run_config(overrides=SMALL), tmp_path / "again")
    assert again.outcome.global_sha256 == embedded[0].outcome.global_sha256


@pytest.mark.slow
def test_a_tampered_blob_and_a_lying_relayer_are_rejected(tmp_path: Path) -> None:
    overrides = {**SMALL, "faults": {"tamper_blob": [1, 0], "lying_relayer": 2}}
    result, onchain = _run_and_inspect(overrides, tmp_path / "faults")
    where = {(x["round"], x["where"]) for x in result.summary.rejections}
    assert (1, "aggregator") in where
    assert (2, "relay committee") in where
    assert result.rounds[1].accepted == 3 and result.rounds[1].rejected == 1
    # The honest relayer still delivers round 2: nothing is lost.
    assert result.rounds[2].accepted == 4
    tampered = result.prepared.workers[0]
    others = result.prepared.workers[1]
    assert not result.outcome.requests.delivered[1, tampered.index]
    rounds = len(result.rounds)
    per_round = result.outcome.credited_wei[tampered.index] // (rounds - 1)
    assert result.outcome.credited_wei[tampered.index] == per_round * (rounds - 1)
    assert result.outcome.credited_wei[others.index] > 0
    assert sum(result.outcome.paid_wei) + result.outcome.reclaimed_wei == result.outcome.budget_wei
    assert onchain["included"][1] <= onchain["attested"][1]


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["CC", "CS", "flat"])
def test_every_scheme_runs_and_pays(scheme: str, tmp_path: Path) -> None:
    overrides = {**SMALL, "task": {**SMALL["task"], "rounds": 2, "scheme": scheme}}
    result = run_task(load_run_config(overrides=overrides), tmp_path)
    assert sum(result.outcome.paid_wei) + result.outcome.reclaimed_wei == result.outcome.budget_wei
    items = {w.item for w in result.prepared.workers}
    if scheme == "flat":
        assert items == {0}
    if scheme == "CC":
        assert all(w.item == w.type_index for w in result.prepared.workers)


@pytest.mark.anvil
@pytest.mark.skipif(not ANVIL.exists(), reason="anvil is installed by `npm install`")
def test_the_same_run_on_anvil_nodes(embedded: tuple[RunResult, Any], tmp_path: Path) -> None:
    overrides = {**SMALL, "chain": {"backend": "anvil"}}
    result, onchain = _run_and_inspect(overrides, tmp_path / "anvil")
    assert all(d["rpc_url"] for d in result.deployments["chains"].values())
    assert result.outcome.paid_wei == result.outcome.credited_wei
    assert sum(result.outcome.paid_wei) + result.outcome.reclaimed_wei == result.outcome.budget_wei
    # Same seed, same data, same learning: the ledger backend changes nothing of the model.
    assert result.outcome.global_sha256 == embedded[0].outcome.global_sha256
    for included, attested in zip(onchain["included"], onchain["attested"], strict=True):
        assert included and included <= attested


SKAB = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "skab" / "valve1"


@pytest.mark.slow
@pytest.mark.skipif(not SKAB.is_dir(), reason="SKAB is read from ../shared/datasets/skab")
def test_a_run_on_skab_streams(tmp_path: Path) -> None:
    data = tmp_path / "skab"
    data.mkdir()
    for name in ("0.csv", "1.csv"):
        shutil.copy(SKAB / name, data / name)
    overrides = {
        **SMALL,
        "task": {**SMALL["task"], "rounds": 8},
        "data": {"source": "folder", "folder": str(data)},
        "privacy": {"sensitive_columns": ["Temperature"]},
    }
    result = run_task(load_run_config(overrides=overrides), tmp_path / "run")
    # 25 stream seconds a slot would outlast these ~20-minute files: the scale shrinks to fit.
    p = result.prepared
    shortest = min(float(s.times[-1]) for s in p.streams)
    assert p.time_scale < 25.0
    assert (2 * p.warmup_slots + 8) * p.market.t * p.time_scale == pytest.approx(shortest)
    twin = next(w for w in result.prepared.workers if w.space == "V")
    col = twin.streams[0].columns.index("Temperature")
    assert not twin.streams[0].mask[col]
    assert (twin.streams[0].values[:, col] == 0).all()
    assert result.rounds[-1].accepted == 4


@pytest.mark.anvil
@pytest.mark.skipif(not ANVIL.exists(), reason="anvil is installed by `npm install`")
def test_runs_on_nodes_that_already_run(tmp_path: Path) -> None:
    """`aoichain chains up` in one process; two tasks attach to its deployments.json."""
    import signal
    import subprocess
    import sys

    nodes = tmp_path / "nodes"
    up = subprocess.Popen(
        [sys.executable, "-m", "aoichain", "chains", "up", "--out", str(nodes)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deployments = nodes / "deployments.json"
        for _ in range(600):  # bounded wait for the nodes, not a timing assertion
            if deployments.exists() or up.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert deployments.exists(), up.stderr.read().decode() if up.stderr else ""
        overrides = {
            **SMALL,
            "task": {**SMALL["task"], "rounds": 2},
            "chain": {"backend": "rpc", "rpc_file": str(deployments)},
        }
        first = run_task(load_run_config(overrides=overrides), tmp_path / "first")
        second = run_task(load_run_config(overrides=overrides), tmp_path / "second")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
    assert second.outcome.task_id == first.outcome.task_id + 1
    for result in (first, second):
        assert result.outcome.paid_wei == result.outcome.credited_wei
        assert result.deployments["chains"]["M"]["rpc_url"].startswith("http://127.0.0.1:")
    assert up.returncode == 0


def test_a_menu_the_chain_cannot_hold_fails_before_any_chain(tmp_path: Path) -> None:
    """The main contract holds at most 16 menu items: refused while preparing."""
    from aoichain.errors import InvalidInput

    out = tmp_path / "run"
    with pytest.raises(InvalidInput, match=r"'menu_f' parameter of TaskSpec.*at most 16"):
        run_task(load_run_config(overrides={**SMALL, "market": {"types": 17}}), out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"market": {"alpha": 2}}, "'market.alpha' parameter of RunConfig"),
        ({"market": {"bogus": 1}}, "'market.bogus' parameter of RunConfig"),
        ({"market": {"types": 0}}, "number of types must be an integer >= 1"),
        ({"privacy": {"sensitive_columns": ["nope"]}}, "unknown column(s) ['nope']"),
        (
            {"privacy": {"nodes": [{"node": 0, "sensitive_rules": [{"column": "x", "op": "~"}]}]}},
            "PrivacyPolicy in [privacy] (node 0)",
        ),
        ({"data": {"generator": {"period_s": -1}}}, "'period_s' parameter of GeneratorConfig"),
    ],
)
def test_bad_tables_are_named_before_anything_runs(
    overrides: dict[str, Any], needle: str, tmp_path: Path
) -> None:
    from aoichain.errors import InvalidInput

    out = tmp_path / "run"
    with pytest.raises(InvalidInput) as info:
        run_task(load_run_config(overrides={**SMALL, **overrides}), out)
    assert needle in str(info.value)
    assert not out.exists()


def test_the_default_market_is_the_papers() -> None:
    from aoichain.incentive import Market
    from aoichain.workflow import prepare

    prepared = prepare(load_run_config(overrides={"task": {"rounds": 1}}))
    assert prepared.market == Market.paper_default(workers=20)
    assert prepared.contract.scheme == "CA" and prepared.contract.method == "integer"


@pytest.mark.slow
def test_batched_and_one_by_one_training_give_the_same_models(tmp_path: Path) -> None:
    hashes = []
    for batched in (True, False):
        overrides = {**SMALL, "task": {**SMALL["task"], "rounds": 2}, "train": {"batched": batched}}
        result = run_task(load_run_config(overrides=overrides), tmp_path / str(batched))
        hashes.append([r.global_sha256 for r in result.rounds])
    assert hashes[0] == hashes[1]


@pytest.mark.slow
def test_a_failure_after_publishing_settles_the_task(tmp_path: Path) -> None:
    """A round that fails leaves nothing locked: the task is finished, what workers
    earned is claimed, the rest is reclaimed, and the error says so."""
    from aoichain.workflow import FederatedTask, RunAborted

    class Breaks(FederatedTask):
        def aggregate(self, task_id, round_no, attested, model):  # type: ignore[no-untyped-def]
            if round_no == 1:
                raise RuntimeError("the aggregator's disk is full")
            return super().aggregate(task_id, round_no, attested, model)

    cfg = load_run_config(overrides=SMALL)
    n = cfg.workers.physical
    with Network.start(cfg.chain, workers={"P": n, "V": n}) as net:
        with pytest.raises(RunAborted, match=r"disk is full.*claimed \d+ wei.*reclaimed") as info:
            run_task(cfg, tmp_path / "run", network=net, task_cls=Breaks)
        task = net.publisher.task(1)
    assert task["finished"] and not task["round_open"]
    assert task["paid"] == task["credited"] > 0  # round 0's pay was claimed
    assert task["escrow"] == task["credited"] + task["reclaimed"]
    assert "round 1 of task 1 failed" in str(info.value)


@pytest.mark.slow
def test_many_subchains_give_the_same_models_and_pay_the_same(tmp_path: Path) -> None:
    """Two physical and two virtual subchains, each its own chain: the workers split
    across them (a twin beside its node's pair), the run pays exactly, and learning
    is unchanged (aggregation does not depend on the order records arrive in)."""
    overrides = {**SMALL, "task": {**SMALL["task"], "rounds": 2}}
    one = run_task(load_run_config(overrides=overrides), tmp_path / "one")
    split = {**overrides, "chain": {"backend": "embedded", "subchains": {"P": 2, "V": 2}}}
    many = run_task(load_run_config(overrides=split), tmp_path / "many")
    assert set(many.deployments["chains"]) == {"M", "R", "P1", "P2", "V1", "V2"}
    assert [r.global_sha256 for r in many.rounds] == [r.global_sha256 for r in one.rounds]
    assert many.outcome.paid_wei == one.outcome.paid_wei == many.outcome.credited_wei
    homes = {t.subchain for t in many.outcome.tickets.values()}
    assert homes == {"P1", "P2", "V1", "V2"}

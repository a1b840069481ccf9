"""Verifiers in their own processes: the wire format, the JSON service and the relayer's proxies.

A relayer reaches validators and committee members through
:class:`~aoichain.chain.remote.RemoteValidator` and
:class:`~aoichain.chain.remote.RemoteMember`, which speak to
:mod:`aoichain.chain.daemon`'s service. The tests carry whole rounds through
them on anvil nodes (services on threads, and one ``aoichain verifier``
process), and show that a signature from anyone but the expected verifier is
refused while the others still reach the threshold.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chain_helpers import new_task

from aoichain.chain import ChainConfig, Network, RoundRecords
from aoichain.chain import digests as d
from aoichain.chain.committee import collect_signatures
from aoichain.chain.daemon import Verifier, serve
from aoichain.chain.errors import AttestationRefused, ChainUnavailable
from aoichain.chain.keys import read_keystore
from aoichain.chain.nodes import start_anvils
from aoichain.chain.remote import (
    RemoteMember,
    RemoteValidator,
    read_deployment,
    read_verifiers,
    remote_verifiers,
    verifier_labels,
    write_verifiers,
)
from aoichain.chain.wire import (
    envelope_json,
    envelope_of,
    header_json,
    header_of,
    proof_json,
    proof_of,
    ticket_json,
    ticket_of,
)
from aoichain.errors import IntegrityError


def _through_json(value: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(value)))


def test_every_message_a_verifier_reads_survives_json(embedded: Network) -> None:
    task = new_task(embedded, enrol={"P0": 0, "V0": 1})
    task.submit("P0", 0)
    records = task.envelope("P", 0)
    relayer = embedded.relayer
    head = relayer.view("M").head()
    down = [
        relayer.envelope("M", "P", head, relayer.outbox_message(kind, task.task_id, 0, head))
        for kind in (d.KIND_TASK, d.KIND_ROUND_OPEN)
    ]
    for envelope in [records, *down]:
        again = envelope_of(_through_json(envelope_json(envelope)))
        assert again == envelope
        assert again.digest() == envelope.digest()
    proof = relayer.view("P").get_proof(
        records.src_contract, list(records.body.claims()), records.src_block
    )
    assert proof_of(_through_json(proof_json(proof))) == proof
    header = relayer.view("P").block(records.src_block)
    assert header_of(_through_json(header_json(header))) == header
    ticket = task.tickets["P0"]
    assert ticket_of(_through_json(ticket_json(ticket))) == ticket


# --------------------------------------------------------------------------- on anvil

SMALL = ChainConfig(
    backend="anvil", committee_size=3, threshold=2, subchain_validators=2, subchain_threshold=2
)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Network, dict[str, str], Path]]:
    """Anvil chains whose every verifier answers from a JSON service of its own
    (threads here), and the relayer asking them through proxies."""
    keys = tmp_path_factory.mktemp("keys")
    with Network.start(SMALL, workers={"P": 2, "V": 2}, keys_dir=keys) as net:
        signers = [*net.keys.committee, *(v for vs in net.keys.validators.values() for v in vs)]
        urls, servers = {}, []
        for signer in signers:
            server = serve(Verifier(signer, net.deployment))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            urls[signer.address] = f"http://127.0.0.1:{server.server_address[1]}"
        net.relayer.validators, net.relayer.committee = remote_verifiers(net.deployment, urls)
        try:
            yield net, urls, keys
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()


@pytest.mark.anvil
def test_a_relayer_carries_whole_rounds_through_remote_verifiers(
    served: tuple[Network, dict[str, str], Path],
) -> None:
    net, _, _ = served
    assert all(isinstance(m, RemoteMember) for m in net.relayer.committee)
    task = new_task(net, enrol={"P0": 0, "V1": 1})
    task.submit("P0", 0)
    task.submit("V1", 0)
    global_sha = task.finish_round(0, ["P0", "V1"])
    assert task.worker("V1").announced(task.task_id, 0).global_sha256 == global_sha


@pytest.mark.anvil
def test_a_lying_relayer_is_refused_by_the_remote_members(
    served: tuple[Network, dict[str, str], Path],
) -> None:
    net, _, _ = served
    task = new_task(net, enrol={"P1": 0})
    task.submit("P1", 0)
    known = len(net.relayer.refusals)
    assert net.relayer.relay_records(task.task_id, 0, lying=True) == []
    assert "payload differs" in net.relayer.refusals[known].reason
    assert [k for k, _ in net.relayer.relay_records(task.task_id, 0)] == ["P"]


@pytest.mark.anvil
def test_a_signature_by_anyone_but_the_expected_verifier_is_refused(
    served: tuple[Network, dict[str, str], Path],
) -> None:
    net, urls, _ = served
    members = net.deployment.committee
    task = new_task(net, enrol={"V0": 0})
    task.submit("V0", 0)
    envelope = task.envelope("V", 0)
    proof = net.relayer.view("V").get_proof(
        envelope.src_contract, list(envelope.body.claims()), envelope.src_block
    )
    impostor = RemoteMember(urls[members[1]], members[0], "committee-0")
    with pytest.raises(IntegrityError, match="signed as"):
        impostor.attest(envelope, proof)
    unreachable = RemoteMember(None, members[2], "committee-2")
    with pytest.raises(ChainUnavailable):
        unreachable.attest(envelope, proof)
    honest = [RemoteMember(urls[a], a, f"committee-{i}") for i, a in enumerate(members)]
    assert len(collect_signatures([impostor, unreachable, *honest[1:]], 2, envelope, proof)) == 2
    with pytest.raises(AttestationRefused, match="signed as"):
        collect_signatures([impostor, unreachable, honest[1]], 2, envelope, proof)
    assert isinstance(envelope.body, RoundRecords)
    more = tuple(replace(r, samples=99) for r in envelope.body.records)
    lying = replace(envelope, body=RoundRecords(task.task_id, 0, more))
    with pytest.raises(IntegrityError, match="payload differs"):
        honest[0].attest(lying, proof)
    validator_p = net.deployment.chains["P"].validators[0]
    remote = RemoteValidator(
        urls[validator_p], validator_p, net.deployment.chains["P"].chain_id, "v"
    )
    header = net.relayer.view("P").block("latest")
    assert remote.header(header.number) == header


def _verifier(key: Path, deployments: Path, ready: Path) -> subprocess.Popen[str]:
    argv = ["verifier", "--key", str(key), "--deployments", str(deployments), "--ready", str(ready)]
    return subprocess.Popen(
        [sys.executable, "-m", "aoichain", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.anvil
def test_aoichain_verifier_serves_its_own_key_and_refuses_any_other(
    served: tuple[Network, dict[str, str], Path], tmp_path: Path
) -> None:
    net, _, keys = served
    deployments = net.deployment.write(tmp_path / "deployments.json")
    deployment = read_deployment(deployments)
    assert verifier_labels(deployment)[deployment.committee[0].lower()] == "committee-0"
    refused = _verifier(keys / "publisher.json", deployments, tmp_path / "never.json")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert "neither a committee member nor a validator" in err
    ready = tmp_path / "ready.json"
    proc = _verifier(keys / "committee-0.json", deployments, ready)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        shown = json.loads(ready.read_text())
        assert (shown["label"], shown["address"]) == ("committee-0", deployment.committee[0])
        with urllib.request.urlopen(shown["url"] + "/identity", timeout=10) as answer:
            assert json.loads(answer.read())["role"] == "committee"
        write_verifiers(tmp_path / "v.json", {"committee-0": (shown["address"], shown["url"])})
        urls = read_verifiers(tmp_path / "v.json")
        task = new_task(net, enrol={"P0": 1})
        task.submit("P0", 0)
        envelope = task.envelope("P", 0)
        proof = net.relayer.view("P").get_proof(
            envelope.src_contract, list(envelope.body.claims()), envelope.src_block
        )
        member = RemoteMember(urls[shown["address"].lower()], shown["address"], "committee-0")
        assert member.attest(envelope, proof) is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.anvil
def test_chains_deploy_on_running_nodes_writes_what_verifiers_start_from(tmp_path: Path) -> None:
    nodes = start_anvils(SMALL.chain_ids, tmp_path / "logs")
    try:
        urls = tmp_path / "urls.toml"
        urls.write_text(
            "".join(f'[chains.{k}]\nrpc_url = "{n.rpc_url}"\n' for k, n in nodes.items())
        )
        argv = ["chains", "deploy", "--rpc", str(urls), "--out", str(tmp_path / "d")]
        argv += ["--committee-size", "3", "--threshold", "2", "--validators", "2"]
        done = subprocess.run(
            [sys.executable, "-m", "aoichain", *argv], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        deployment = read_deployment(tmp_path / "d" / "deployments.json")
        assert [c.rpc_url for c in deployment.chains.values()] == [
            n.rpc_url for n in nodes.values()
        ]
        assert len(deployment.committee) == 3
        labels = sorted(verifier_labels(deployment).values())
        keys = sorted(p.stem for p in (tmp_path / "d" / "keys").iterdir())
        assert set(labels) <= set(keys) and {"deployer", "relayer"} <= set(keys)
        signer = read_keystore(tmp_path / "d" / "keys" / "validator-V-1.json", "")
        assert Verifier(signer, deployment).label == "validator-V-1"
    finally:
        for node in nodes.values():
            node.stop()

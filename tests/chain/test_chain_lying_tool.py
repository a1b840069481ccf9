"""The lying endpoint (``lying.py``) does what the regression tests will rely on.

Its forged proofs verify against its forged root and nothing else; through
it a block keeps its real hash but shows the forged state root; all other
traffic passes through unchanged. The backend suite runs once in process
(:class:`LyingProvider` around the embedded py-evm chain) and once over HTTP
(:class:`LyingProxy` in front of an anvil node, marker ``anvil``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lying import Lie, forge_state, lying_node
from web3 import Web3
from web3.types import RPCEndpoint

from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.keys import Signer
from aoichain.chain.keys import insecure_signer as signer
from aoichain.chain.nodes import ChainNode, find_anvil, start_anvils, start_embedded
from aoichain.chain.proofs import parse_get_proof, verify_storage
from aoichain.chain.validator import Validator
from aoichain.chain.views import BlockHeader
from aoichain.errors import IntegrityError

CHAIN_ID = 4242
#: Init code of a contract that stores 42 in slot 0 and whose code is one STOP.
STORE_42 = bytes.fromhex("602a6000556001601160003960016000f300")
FORGED = {0: (7).to_bytes(32, "big"), 5: b"\x99" * 32}
OUTSIDER = Web3.to_checksum_address("0x" + "5e" * 20)


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def send(w3: Web3, sender: Signer, chain_id: int, **tx: Any) -> Any:
    """Sign ``tx`` locally and send it raw; returns the receipt."""
    tx = {
        "chainId": chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "gas": 200_000,
        "gasPrice": w3.eth.gas_price,
        "value": 0,
        **tx,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx))
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


@dataclass
class Rig:
    """A chain with one contract (slot 0 = 42, deployed in ``block``) and a funded publisher."""

    node: ChainNode
    publisher: Signer
    contract: str
    block: int

    def honest_root(self, number: int) -> bytes:
        return bytes(self.node.w3.eth.get_block(number)["stateRoot"])


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    publisher = signer(11, "publisher")
    if request.param == "embedded":
        node = start_embedded("P", CHAIN_ID, {publisher.address: 10**21})
    else:
        try:
            find_anvil()
        except ChainUnavailable as exc:
            pytest.skip(str(exc))
        node = start_anvils({"P": CHAIN_ID})["P"]
    try:
        w3 = node.w3
        if node.kind == "anvil":
            dev = w3.eth.accounts[0]
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_transaction({"from": dev, "to": publisher.address, "value": 10**21})
            )
        receipt = send(w3, publisher, CHAIN_ID, data=STORE_42)
        # One block more, so the contract's block is not the head.
        send(w3, publisher, CHAIN_ID, to=OUTSIDER, value=1)
        yield Rig(node, publisher, receipt["contractAddress"], receipt["blockNumber"])
    finally:
        node.stop()


# ------------------------------------------------------------ forged state


@given(
    storage=st.dictionaries(
        st.integers(0, 2**256 - 1), st.binary(min_size=0, max_size=32), max_size=6
    ),
    extra=st.integers(0, 2**256 - 1),
)
def test_forged_proof_proves_exactly_the_forged_storage(storage: dict[int, bytes], extra: int):
    forged = forge_state(OUTSIDER, storage)
    slots = [*storage, extra]
    proven = verify_storage(
        forged.state_root, parse_get_proof(forged.get_proof(OUTSIDER, slots)), slots
    )
    expected = {slot: value.rjust(32, b"\0") for slot, value in storage.items()}
    assert proven == {slot: expected.get(slot, bytes(32)) for slot in slots}


def test_forged_state_holds_no_other_account():
    forged = forge_state(OUTSIDER, FORGED)
    other = "0x" + "ab" * 20
    answer = forged.get_proof(other, [0])
    assert answer["balance"] == "0x0" and answer["storageProof"][0]["value"] == "0x0"
    with pytest.raises(IntegrityError, match="does not exist"):
        verify_storage(forged.state_root, parse_get_proof(answer), [0])


def test_a_lie_names_its_blocks():
    with pytest.raises(ValueError, match="must cover some blocks"):
        Lie(OUTSIDER, FORGED)


def test_rewrite_touches_only_the_lie():
    lie = Lie(OUTSIDER, FORGED, blocks={3})
    block = {"number": "0x3", "hash": "0x" + "11" * 32, "stateRoot": "0x" + "22" * 32}
    forged = lie.rewrite("eth_getBlockByNumber", ["0x3", False], block)
    assert forged == {**block, "stateRoot": "0x" + lie.state_root.hex()}
    assert block["stateRoot"] == "0x" + "22" * 32  # the upstream answer is left alone
    assert lie.rewrite("eth_getBlockByHash", [block["hash"], False], block) == forged
    other = {**block, "number": 4}
    assert lie.rewrite("eth_getBlockByNumber", [4, False], other) is other
    assert lie.rewrite("eth_getBlockByNumber", ["0x9", False], None) is None
    real_proof = {"address": OUTSIDER}
    assert lie.rewrite("eth_getProof", [OUTSIDER, [], "0x4"], real_proof) is real_proof
    assert lie.rewrite("eth_getProof", [OUTSIDER, [], "latest"], real_proof) is real_proof
    assert lie.rewrite("eth_getProof", [OUTSIDER, ["0x0"], "0x3"], real_proof)["nonce"] == "0x0"
    for method, result in [
        ("eth_chainId", "0x1092"),
        ("eth_getBalance", "0x3"),
        ("eth_call", "0x"),
    ]:
        assert lie.rewrite(method, ["0x3"], result) is result


# ---------------------------------------------------------------- backends


def test_liar_shows_the_forged_root_under_the_real_hash(rig: Rig):
    w3, n = rig.node.w3, rig.block
    lie = Lie(rig.contract, FORGED, blocks={n})
    honest_block = dict(w3.eth.get_block(n))
    with lying_node(rig.node, lie) as liar:
        told = dict(liar.w3.eth.get_block(n))
        assert bytes(told["stateRoot"]) == lie.state_root != bytes(honest_block["stateRoot"])
        assert {k: v for k, v in told.items() if k != "stateRoot"} == {
            k: v for k, v in honest_block.items() if k != "stateRoot"
        }
        assert bytes(liar.w3.eth.get_block(told["hash"])["stateRoot"]) == lie.state_root
        for other in (n - 1, n + 1):
            assert liar.w3.eth.get_block(other) == w3.eth.get_block(other)
        # A validator that only compares what its own node says cannot tell.
        validator = signer(11, "validator_p")
        header = BlockHeader(n, bytes(told["hash"]), lie.state_root)
        assert Validator(validator, liar.view()).sign_checkpoint(CHAIN_ID + 1, OUTSIDER, header)
        with pytest.raises(IntegrityError, match="is not"):
            Validator(validator, rig.node.view()).sign_checkpoint(CHAIN_ID + 1, OUTSIDER, header)
    assert dict(w3.eth.get_block(n)) == honest_block


def test_liar_proof_verifies_only_against_the_forged_root(rig: Rig):
    n, slots = rig.block, [0, 5, 6]
    lie = Lie(rig.contract, FORGED, blocks={n})
    with lying_node(rig.node, lie) as liar:
        forged = parse_get_proof(liar.get_proof(rig.contract, slots, n))
        honest_at_other_block = parse_get_proof(liar.get_proof(rig.contract, [0], n + 1))
    assert verify_storage(lie.state_root, forged, slots) == {
        0: word(7),
        5: b"\x99" * 32,
        6: word(0),
    }
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_storage(rig.honest_root(n), forged, slots)
    assert verify_storage(rig.honest_root(n + 1), honest_at_other_block, [0]) == {0: word(42)}
    honest = parse_get_proof(rig.node.get_proof(rig.contract, slots, n))
    assert verify_storage(rig.honest_root(n), honest, slots) == {
        0: word(42),
        5: word(0),
        6: word(0),
    }


def test_plausible_lie_keeps_the_real_account(rig: Rig):
    real = rig.node.get_proof(rig.contract, [0], rig.block)
    lie = Lie(rig.contract, FORGED, blocks={rig.block}, like=real)
    with lying_node(rig.node, lie) as liar:
        told = liar.get_proof(rig.contract, [0], rig.block)
    assert {k: int(told[k], 16) for k in ("nonce", "balance", "codeHash")} == {
        k: int(real[k], 16) for k in ("nonce", "balance", "codeHash")
    }
    assert int(told["codeHash"], 16) != int.from_bytes(Web3.keccak(b""), "big")
    assert told["storageHash"] != real["storageHash"]


def test_ordinary_traffic_passes_through(rig: Rig):
    w3 = rig.node.w3
    lie = Lie(rig.contract, FORGED, blocks={rig.block})
    with lying_node(rig.node, lie) as liar:
        lw3 = liar.w3
        assert lw3.eth.chain_id == CHAIN_ID
        assert lw3.eth.get_code(rig.contract) == w3.eth.get_code(rig.contract) == b"\x00"
        assert lw3.eth.call({"from": rig.publisher.address, "to": rig.contract}) == b""
        before = lw3.eth.get_balance(OUTSIDER)
        receipt = send(lw3, rig.publisher, CHAIN_ID, to=OUTSIDER, value=5)
        assert receipt["status"] == 1
        assert lw3.eth.block_number == w3.eth.block_number == receipt["blockNumber"]
        assert lw3.eth.get_balance(OUTSIDER) == w3.eth.get_balance(OUTSIDER) == before + 5
        assert lw3.eth.get_transaction(receipt["transactionHash"]) == w3.eth.get_transaction(
            receipt["transactionHash"]
        )
        assert lw3.eth.get_block(receipt["blockNumber"]) == w3.eth.get_block(receipt["blockNumber"])


def test_lie_from_a_block_on_and_on_latest(rig: Rig):
    w3, n = rig.node.w3, rig.block
    with lying_node(rig.node, Lie(rig.contract, FORGED, from_block=n + 1)) as liar:
        assert liar.w3.eth.get_block(n) == w3.eth.get_block(n)
        assert bytes(liar.w3.eth.get_block(n + 1)["stateRoot"]) == liar.liar.lie.state_root
        new = send(liar.w3, rig.publisher, CHAIN_ID, to=OUTSIDER, value=1)["blockNumber"]
        assert bytes(liar.w3.eth.get_block(new)["stateRoot"]) == liar.liar.lie.state_root

        lie = Lie(rig.contract, FORGED, latest=True)
        liar.liar.lie = lie
        head = w3.eth.block_number
        assert bytes(liar.w3.eth.get_block("latest")["stateRoot"]) == lie.state_root
        assert liar.w3.eth.get_block(head) == w3.eth.get_block(head)
        answer = liar.w3.provider.make_request(
            RPCEndpoint("eth_getProof"), [rig.contract, ["0x" + word(0).hex()], "latest"]
        )
        at_latest = parse_get_proof(answer["result"])
        assert verify_storage(lie.state_root, at_latest, [0]) == {0: word(7)}

        liar.liar.lie = None
        assert liar.w3.eth.get_block("latest") == w3.eth.get_block("latest")


# ------------------------------------------------------------- proxy only


@pytest.mark.anvil
@pytest.mark.parametrize("rig", ["anvil"], indirect=True)
def test_proxy_rewrites_each_answer_of_a_batch(rig: Rig):
    assert rig.node.rpc_url is not None
    n = rig.block
    lie = Lie(rig.contract, FORGED, blocks={n})
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(n), False]},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_noSuchMethod", "params": []},
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "eth_getBlockByNumber",
            "params": [hex(n + 1), False],
        },
    ]
    with lying_node(rig.node, lie) as liar:
        url = liar.rpc_url
        assert url is not None
        told = {r["id"]: r for r in requests.post(url, json=batch, timeout=10).json()}
        with liar.w3.batch_requests() as web3_batch:
            web3_batch.add(liar.w3.eth.get_block(n))
            web3_batch.add(liar.w3.eth.get_block(n + 1))
            via_web3 = web3_batch.execute()
    with pytest.raises(requests.ConnectionError):  # the proxy is gone
        requests.post(url, json=batch[1], timeout=10)
    honest = {r["id"]: r for r in requests.post(rig.node.rpc_url, json=batch, timeout=10).json()}
    assert told[1]["result"] == {**honest[1]["result"], "stateRoot": "0x" + lie.state_root.hex()}
    assert told[2] == honest[2] and told[4] == honest[4]
    assert "error" in told[3] and told[3] == honest[3]
    assert bytes(via_web3[0]["stateRoot"]) == lie.state_root
    assert via_web3[1] == rig.node.w3.eth.get_block(n + 1)

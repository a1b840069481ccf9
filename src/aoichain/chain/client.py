"""Sending transactions and calls to one chain, the same way on every backend.

Transactions are signed locally (coincurve through eth-account), carry the
chain's id, an explicit gas limit (eth-tester's gas estimation is the
bottleneck of the embedded backend; unused gas is refunded), and are sent
raw. A transaction that reverts is still mined; its revert reason is
recovered by replaying it as a call on the parent block and raised as
:class:`~aoichain.chain.errors.ChainRejected`. Every transaction, reverted
or not, is appended to the ledger's receipt log.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from eth_abi import decode
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as EthTesterValidationError
from eth_utils import to_checksum_address
from eth_utils.exceptions import ValidationError as EthUtilsValidationError
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from aoichain.chain.artifacts import Artifact
from aoichain.chain.errors import ChainRejected, ChainUnavailable
from aoichain.chain.keys import Signer
from aoichain.chain.views import ChainView, bound

#: Gas limit of every transaction: above the costliest operation (a full
#: 128-record batch), below EIP-7825's per-transaction cap of 2**24.
TX_GAS = 16_000_000
MAX_FEE_PER_GAS = 50 * 10**9
PRIORITY_FEE_PER_GAS = 10**9
RECEIPT_TIMEOUT_S = 60.0
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
#: What a node (or py-evm in process) raises when it refuses a transaction
#: outright, e.g. a sender that cannot pay for the gas.
NODE_REFUSALS = (
    ContractLogicError,
    Web3RPCError,
    ValueError,
    EthUtilsValidationError,
    EthTesterValidationError,
    TransactionFailed,
)


@dataclass(frozen=True)
class Receipt:
    """One transaction as the ledger saw it: for ``receipts.jsonl`` and gas accounting.

    Attributes
    ----------
    chain
        ``"M"``, ``"R"``, ``"P"`` or ``"V"``.
    tx_hash
        0x-prefixed transaction hash.
    block
        Block number it was mined in.
    gas_used
        Gas the transaction consumed.
    label
        What it did, e.g. ``"submit_update"`` or ``"deliver_updates P->M"``.
    sender
        The sending account.
    status
        False if it reverted.
    fee_wei
        What the sender paid for gas: gas used times the effective gas price.
    """

    chain: str
    tx_hash: str
    block: int
    gas_used: int
    label: str
    sender: str
    status: bool = True
    fee_wei: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of ``receipts.jsonl``)."""
        return asdict(self)


def revert_reason(exc: BaseException) -> str:
    """The contract's revert string inside a web3 / eth-tester exception."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x" + ERROR_SELECTOR.hex()):
        try:
            return str(decode(["string"], bytes.fromhex(data[10:]))[0])
        except Exception:  # pragma: no cover - malformed revert data
            pass
    text = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else exc))
    match = re.search(r"execution reverted:?\s*(.*)", text, re.S)
    reason = (match.group(1) if match else text).strip().strip("'\"")
    return reason or "reverted without a reason"


class ChainClient:
    """Transactions and calls on one chain, appending to a shared receipt log."""

    def __init__(self, view: ChainView, log: list[Receipt], poll_latency: float = 0.001):
        self.view = view
        self.key = view.key
        self.w3 = view.w3
        self.chain_id = view.chain_id
        self._log = log
        self._poll = poll_latency
        self._nonces: dict[str, int] = {}
        self._last: Receipt | None = None
        # Whether the node answers eth_sendRawTransactionSync (None: not tried yet).
        self._sync: bool | None = None if view.url is not None else False

    @property
    def last_receipt(self) -> Receipt:
        """The receipt of the last transaction this client sent."""
        if self._last is None:
            raise RuntimeError(f"no transaction was sent on chain {self.key} yet")
        return self._last

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A web3 contract object at ``address`` (its calls and transactions take the fast path)."""
        return bound(self.w3, artifact, address)

    def _nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self.view._read(
                "reading a nonce",
                lambda: self.w3.eth.get_transaction_count(address, "pending"),  # type: ignore[arg-type]
            )
        return self._nonces[address]

    def send(
        self,
        signer: Signer,
        to: str | None,
        data: bytes,
        *,
        value: int = 0,
        label: str,
        gas: int = TX_GAS,
    ) -> Any:
        """Sign, send and wait for one transaction; return its receipt (see :meth:`transact`).

        A nonce the node calls stale (another client of the same account sent
        meanwhile) is read again, once.

        Raises
        ------
        ChainRejected
            If the node refuses the transaction or it reverts on chain.
        """
        try:
            return self._send(signer, to, data, value=value, label=label, gas=gas)
        except ChainRejected as exc:
            if "nonce" not in exc.reason.lower():
                raise
            return self._send(signer, to, data, value=value, label=label, gas=gas)

    def _send(
        self, signer: Signer, to: str | None, data: bytes, *, value: int, label: str, gas: int
    ) -> Any:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": self._nonce(signer.address),
            "gas": gas,
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": PRIORITY_FEE_PER_GAS,
            "value": value,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        raw = signer.sign_transaction(tx)
        # Sent and awaited as raw JSON-RPC: web3's formatting of both costs more than
        # anvil's execution of the transaction.
        provider = self.w3.provider
        # eth_sendRawTransactionSync (EIP-7966; anvil has it) answers with the receipt:
        # one round trip, no polling. Nodes without it get the classic pair.
        sync = self._sync is not False
        method = "eth_sendRawTransactionSync" if sync else "eth_sendRawTransaction"
        try:
            response = provider.make_request(RPCEndpoint(method), ["0x" + raw.hex()])
        except NODE_REFUSALS as exc:
            self._nonces.pop(signer.address, None)
            raise ChainRejected(revert_reason(exc), chain=self.key, label=label) from None
        except Exception as exc:  # the endpoint itself failed (connection refused, ...)
            self._nonces.pop(signer.address, None)
            raise ChainUnavailable(
                f"{self.view.where}: sending {label} failed: {type(exc).__name__}: {exc}"
            ) from None
        if "error" in response:
            error = response["error"]
            if sync and isinstance(error, dict) and error.get("code") == -32601:
                self._sync = False  # no such method here: send the classic way
                return self._send(signer, to, data, value=value, label=label, gas=gas)
            self._nonces.pop(signer.address, None)
            reason = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise ChainRejected(str(reason), chain=self.key, label=label)
        self._nonces[signer.address] = tx["nonce"] + 1
        if sync and isinstance(response.get("result"), dict):
            self._sync = True
            rcpt = dict(response["result"])
        else:
            tx_hash = str(response["result"])
            rcpt = self.view._read(
                f"waiting for the receipt of {label}", lambda: self._receipt(tx_hash)
            )
        gas_used = _int(rcpt, "gasUsed", "gas_used")
        block = _int(rcpt, "blockNumber", "block_number")
        ok = bool(_int(rcpt, "status", "status"))
        self._last = Receipt(
            chain=self.key,
            tx_hash=str(rcpt.get("transactionHash", rcpt.get("transaction_hash"))),
            block=block,
            gas_used=gas_used,
            label=label,
            sender=signer.address,
            status=ok,
            fee_wei=gas_used * _int(rcpt, "effectiveGasPrice", "effective_gas_price"),
        )
        self._log.append(self._last)
        if not ok:
            raise ChainRejected(
                self._replay_reason(tx, signer.address, block - 1), chain=self.key, label=label
            )
        created = rcpt.get("contractAddress", rcpt.get("contract_address"))
        return {
            "transactionHash": self._last.tx_hash,
            "blockNumber": block,
            "gasUsed": gas_used,
            "status": int(ok),
            "contractAddress": to_checksum_address(created) if created else None,
        }

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        """The raw receipt of a sent transaction, polled until it is mined."""
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        while True:
            response = self.w3.provider.make_request(
                RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
            )
            if response.get("result"):
                return dict(response["result"])
            if "error" in response or time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash}: {response.get('error')}")
            time.sleep(self._poll)

    def events(self, contract: Contract, event: str) -> list[Any]:
        """The ``event`` logs of ``contract`` in the last transaction this client sent."""
        rcpt = self.view._read(
            "reading a receipt",
            lambda: self.w3.eth.get_transaction_receipt(self.last_receipt.tx_hash),  # type: ignore[arg-type]
        )
        return list(contract.events[event]().process_receipt(rcpt, errors=DISCARD))

    def _replay_reason(self, tx: dict[str, Any], sender: str, block: int) -> str:
        call: dict[str, Any] = {k: tx[k] for k in ("to", "data", "value", "gas") if k in tx}
        call["from"] = sender
        try:
            self.w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
        except Exception as exc:
            return revert_reason(exc)
        return "reverted (out of gas or a reason the replay could not reproduce)"

    def transact(
        self,
        signer: Signer,
        contract: Contract,
        fn: str,
        *args: Any,
        value: int = 0,
        label: str | None = None,
        gas: int = TX_GAS,
    ) -> Any:
        """Call ``fn(*args)`` of ``contract`` in a transaction; return its receipt's
        ``transactionHash``, ``blockNumber``, ``gasUsed``, ``status`` and ``contractAddress``
        (decode its events with :meth:`events`)."""
        codec = getattr(contract, "aoichain_codec", None)
        data = (
            codec.calldata(fn, args)
            if codec is not None
            else bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:])
        )
        return self.send(
            signer,
            contract.address,
            data,
            value=value,
            label=label or fn,
            gas=gas,
        )

    def deploy(self, signer: Signer, artifact: Artifact, *args: Any) -> str:
        """Deploy ``artifact`` with constructor ``args``; return the contract address."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        rcpt = self.send(signer, None, bytes.fromhex(data[2:]), label=f"deploy {artifact.name}")
        return str(rcpt["contractAddress"])

    def call(self, contract: Contract, fn: str, *args: Any, block: int | str = "latest") -> Any:
        """Read ``fn(*args)`` of ``contract`` at ``block`` (see :meth:`ChainView.call`)."""
        return self.view.call(contract, fn, *args, block=block)

    def transfer(self, signer: Signer, to: str, wei: int, label: str = "fund") -> None:
        """Send ``wei`` of this chain's native currency."""
        self.send(signer, to, b"", value=wei, label=label, gas=21_000)

    def balance(self, address: str) -> int:
        """Native balance of ``address`` in wei."""
        return self.view.balance(address)


def _int(receipt: dict[str, Any], camel: str, snake: str) -> int:
    """A number of a raw receipt (anvil: camelCase hex; eth-tester: snake_case ints)."""
    value = receipt.get(camel, receipt.get(snake, 0))
    return int(value, 16) if isinstance(value, str) else int(value or 0)

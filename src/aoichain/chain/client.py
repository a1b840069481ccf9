"""Sending transactions and calls to one chain, the same way on every backend.

Transactions are signed locally (coincurve through eth-account), carry the
chain's id, an explicit gas limit (eth-tester's gas estimation is the
bottleneck of the embedded backend; unused gas is refunded), and are sent
raw. A transaction that reverts is still mined; its revert reason is
recovered by replaying it as a call on the parent block and raised as
:class:`~aoichain.chain.errors.ChainRejected`. Every transaction, reverted
or not, is appended to the ledger's receipt log.

A node that stops answering while a transaction is in flight is waited for
(see :meth:`~aoichain.chain.views.ChainView.ride_out`); the transaction may
or may not have been mined before it stopped. Once the node is back the
client asks it: a transaction it holds is read back by its hash, never sent
twice; one it does not hold is sent again, the same signed bytes. The same
check settles a node's "nonce too low" or "already imported" answer to a
transaction the transport re-sent. The nonces a client keeps stay right
across a restart that lost no block; a node that lost blocks the client saw
is :class:`~aoichain.chain.errors.ChainRewound` (its view checks the node
after every new connection), never a transaction signed with a stale nonce.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from eth_utils.exceptions import ValidationError as EthUtilsValidationError
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import RPCEndpoint

from aoichain.chain.artifacts import Artifact
from aoichain.chain.errors import ChainRejected, ChainUnavailable
from aoichain.chain.keys import Signer
from aoichain.chain.transport import KeepAliveProvider
from aoichain.chain.views import ChainView, bound

#: Gas limit of a transaction by default: above the costliest operation, below
#: EIP-7825's per-transaction cap of 2**24 (workers' own transactions set tighter limits).
TX_GAS = 16_000_000
#: Gas a block holds (anvil's default, and Ethereum's): transactions sent together
#: go in as few blocks of this size as their gas limits allow.
BLOCK_GAS = 30_000_000
MAX_FEE_PER_GAS = 50 * 10**9
PRIORITY_FEE_PER_GAS = 10**9
RECEIPT_TIMEOUT_S = 60.0
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
#: Sends of one transaction whose nonce another client of the same key took meanwhile.
NONCE_ATTEMPTS = 6
#: How nodes word that clash: a nonce already used, or one in their pool from the other client.
NONCE_TAKEN = re.compile(r"nonce|replacement transaction underpriced", re.I)
#: How nodes word a refusal of a transaction they already hold (mined, or in their pool).
ALREADY_HELD = re.compile(r"nonce too low|already (known|imported)|known transaction", re.I)
#: What a node raises when it refuses a transaction outright, e.g. a sender
#: that cannot pay for the gas (py-evm in process adds its own: :func:`node_refusals`).
NODE_REFUSALS: tuple[type[Exception], ...] = (
    ContractLogicError,
    Web3RPCError,
    ValueError,
    EthUtilsValidationError,
)


def node_refusals() -> tuple[type[Exception], ...]:
    """:data:`NODE_REFUSALS`, and eth-tester's refusals once eth-tester is loaded (the
    embedded backend loads it; a process that only talks to nodes never does, and saves
    the half second importing it costs)."""
    tester = sys.modules.get("eth_tester.exceptions")
    if tester is None:
        return NODE_REFUSALS
    return (*NODE_REFUSALS, tester.ValidationError, tester.TransactionFailed)


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


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed by its sender, ready to send on its client's chain."""

    client: ChainClient
    sender: str
    tx: dict[str, Any]
    raw: bytes
    label: str


def _blocks(txs: Sequence[SignedTx]) -> list[list[SignedTx]]:
    """Consecutive groups whose gas limits fit one block (as a node includes them)."""
    groups: list[list[SignedTx]] = [[]]
    room = BLOCK_GAS
    for t in txs:
        if groups[-1] and t.tx["gas"] > room:
            groups.append([])
            room = BLOCK_GAS
        groups[-1].append(t)
        room -= t.tx["gas"]
    return groups


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
        # Whether the node answers eth_sendRawTransactionSync, and whether it lets
        # aoichain mine (anvil's automine switch); None: not asked yet.
        self._sync: bool | None = None if view.url is not None else False
        self._mines: bool | None = None

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

    def sign(
        self,
        signer: Signer,
        to: str | None,
        data: bytes,
        *,
        value: int = 0,
        label: str,
        gas: int = TX_GAS,
    ) -> SignedTx:
        """Sign a transaction with ``signer``'s next nonce on this chain (not sent yet)."""
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
        self._nonces[signer.address] = tx["nonce"] + 1
        return SignedTx(self, signer.address, tx, signer.sign_transaction(tx), label)

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
        meanwhile: two runs' relayers share the deployment's relayer key) is
        read again, up to ``NONCE_ATTEMPTS`` times in all.

        Raises
        ------
        ChainRejected
            If the node refuses the transaction or it reverts on chain.
        """
        for attempt in range(1, NONCE_ATTEMPTS + 1):
            signed = self.sign(signer, to, data, value=value, label=label, gas=gas)
            try:
                return self._send_one(signed)
            except ChainRejected as exc:
                if attempt == NONCE_ATTEMPTS or not NONCE_TAKEN.search(exc.reason):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_one(self, signed: SignedTx) -> dict[str, Any]:
        """Send one signed transaction and wait for its receipt, riding out an outage
        without ever sending it twice (see the module's docstring)."""
        raw = "0x" + signed.raw.hex()
        tx_hash = "0x" + keccak(signed.raw).hex()
        sent = False

        def attempt() -> dict[str, Any]:
            nonlocal sent
            if sent:  # the node went away with the transaction in flight
                held = self._held(signed, tx_hash)
                if held is not None:
                    return held
            sent = True
            return self._submit(signed, raw, tx_hash)

        return self._settle(signed, self.view.ride_out(f"sending {signed.label}", attempt))

    def _submit(self, signed: SignedTx, raw: str, tx_hash: str) -> dict[str, Any]:
        """Send the raw transaction once; its raw receipt."""
        # eth_sendRawTransactionSync (EIP-7966; anvil has it) answers with the receipt:
        # one round trip, no polling. Nodes without it get the classic pair.
        sync = self._sync is not False
        method = "eth_sendRawTransactionSync" if sync else "eth_sendRawTransaction"
        response = self._request(signed, method, [raw])
        if "error" in response:
            error = response["error"]
            if sync and isinstance(error, dict) and error.get("code") == -32601:
                self._sync = False  # no such method here: send the classic way
                sync = False
                response = self._request(signed, "eth_sendRawTransaction", [raw])
        if "error" in response:
            error = response["error"]
            if self.view.url is not None and ALREADY_HELD.search(_message(error)):
                held = self._held(signed, tx_hash)
                if held is not None:
                    return held
            raise self._refused(signed, error)
        if sync and isinstance(response.get("result"), dict):
            self._sync = True
            return dict(response["result"])
        return self._receipt(str(response["result"]))

    def _held(self, signed: SignedTx, tx_hash: str) -> dict[str, Any] | None:
        """Whether the chain holds ``signed``: its raw receipt if so, None if it may be sent.

        Raises
        ------
        ChainRejected
            If its nonce can no longer be used: another transaction took it, or
            the node lost the sender's earlier transactions.
        """
        receipt = self._ask("eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return dict(receipt)
        nonce = int(signed.tx["nonce"])
        next_nonce = int(str(self._ask("eth_getTransactionCount", [signed.sender, "pending"])), 16)
        if next_nonce == nonce:
            return None
        if next_nonce > nonce:
            if self._ask("eth_getTransactionByHash", [tx_hash]):  # in the node's pool
                return self._receipt(tx_hash)
            raise self._refused(
                signed, f"nonce too low: another transaction of {signed.sender} took nonce {nonce}"
            )
        raise self._refused(
            signed,
            f"nonce {nonce} is ahead of the chain's next nonce {next_nonce} for {signed.sender}: "
            f"the node lost the sender's last transactions",
        )

    def _held_or_refused(self, signed: SignedTx, error: Any) -> dict[str, Any] | ChainRejected:
        """A transaction the node called already held: its settled receipt, or the refusal."""
        tx_hash = "0x" + keccak(signed.raw).hex()
        try:
            held = self.view.ride_out(
                f"looking up {signed.label}", lambda: self._held(signed, tx_hash)
            )
            return self._settle(signed, held) if held is not None else self._refused(signed, error)
        except ChainRejected as exc:
            return exc

    def _ask(self, method: str, params: list[Any]) -> Any:
        """The result of one raw JSON-RPC call (an outage raises; a riding caller repeats it)."""
        provider: Any = self.w3.provider
        answer = provider.make_request(RPCEndpoint(method), params)
        if "error" in answer:
            raise ChainUnavailable(f"{self.view.where}: {method} failed: {answer['error']}")
        return answer.get("result")

    def send_together(self, txs: Sequence[SignedTx]) -> list[dict[str, Any] | ChainRejected]:
        """Send signed transactions of several accounts at once; their receipts or refusals.

        Each transaction is still its own, signed by its own sender (as a
        round's workers each sign their record). On a node that lets aoichain
        mine (anvil) they go in one JSON-RPC batch and into as few blocks as
        their gas limits allow, as a real chain would include them; anvil
        otherwise mines a block per transaction and slows down with every
        block it holds (measured: from 440 to 90 transactions a second over
        8,000 blocks). Elsewhere they are sent one after the other.
        """
        if not txs:
            return []
        if self.view.url is None or not self._can_mine():
            return self._each(txs)
        results: list[dict[str, Any] | ChainRejected] = []
        for block in _blocks(txs):
            results += self._one_block(block)
        return results

    def _one_block(self, txs: Sequence[SignedTx]) -> list[dict[str, Any] | ChainRejected]:
        seen = self.view.interruptions
        try:
            answers = self._mine_together(txs)
        except Exception as exc:
            if not self.view.is_outage(exc):
                raise
            self.view.wait_out("sending a block of transactions", exc)
        if self.view.interruptions != seen:
            # The node went away meanwhile: each transaction is looked up and, if the
            # chain does not hold it, sent again alone.
            return self._each(txs)
        results: list[dict[str, Any] | ChainRejected] = []
        sent: list[tuple[int, SignedTx, str]] = []
        for i, (signed, answer) in enumerate(zip(txs, answers, strict=True)):
            if "error" in answer and ALREADY_HELD.search(_message(answer["error"])):
                results.append(self._held_or_refused(signed, answer["error"]))
            elif "error" in answer:
                results.append(self._refused(signed, answer["error"]))
            else:
                results.append(ChainRejected("pending", chain=self.key, label=signed.label))
                sent.append((i, signed, str(answer["result"])))
        receipts = self._batch([("eth_getTransactionReceipt", [h]) for _, _, h in sent])
        for (i, signed, tx_hash), answer in zip(sent, receipts, strict=True):
            rcpt = answer.get("result") or self.view._read(
                f"waiting for the receipt of {signed.label}", partial(self._receipt, tx_hash)
            )
            try:
                results[i] = self._settle(signed, dict(rcpt))
            except ChainRejected as exc:
                results[i] = exc
        return results

    def _mine_together(self, txs: Sequence[SignedTx]) -> list[dict[str, Any]]:
        """Send ``txs`` in one batch with automine off, mine them in one block; the answers.

        Nothing here is re-sent: a failed connection raises, and the caller
        asks the node what it holds.
        """
        provider: Any = self.w3.provider
        self._mine_request("evm_setAutomine", [False])
        try:
            requests = [(RPCEndpoint("eth_sendRawTransaction"), ["0x" + t.raw.hex()]) for t in txs]
            if isinstance(provider, KeepAliveProvider):
                answers = provider.make_batch_request(requests, resend=False)
            else:
                answers = provider.make_batch_request(requests)
            if not isinstance(answers, list):
                raise ChainUnavailable(f"{self.view.where}: the node refused a batch: {answers}")
            self._mine_request("evm_mine", [])
        finally:
            try:
                self._mine_request("evm_setAutomine", [True])
            except Exception as exc:  # a node that restarted mines automatically again
                if not self.view.is_outage(exc):
                    raise
        return [dict(a) for a in answers]

    def _each(self, txs: Sequence[SignedTx]) -> list[dict[str, Any] | ChainRejected]:
        """Send ``txs`` one after the other; their receipts or refusals."""
        out: list[dict[str, Any] | ChainRejected] = []
        for signed in txs:
            try:
                out.append(self._send_one(signed))
            except ChainRejected as exc:
                out.append(exc)
        return out

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        if not calls:
            return []
        provider: Any = self.w3.provider
        requests = [(RPCEndpoint(m), p) for m, p in calls]
        answers = self.view._read("a batch of calls", lambda: provider.make_batch_request(requests))
        if not isinstance(answers, list):
            raise ChainUnavailable(f"{self.view.where}: the node refused a batch: {answers}")
        return [dict(a) for a in answers]

    def _can_mine(self) -> bool:
        if self._mines is None:
            answer = self.view._read(
                "anvil_getAutomine",
                lambda: self.w3.provider.make_request(RPCEndpoint("anvil_getAutomine"), []),
            )
            self._mines = answer.get("result") is True
        return self._mines

    def _mine_request(self, method: str, params: list[Any]) -> None:
        """``method`` once (an outage raises)."""
        provider: Any = self.w3.provider
        answer = getattr(provider, "make_request_once", provider.make_request)(
            RPCEndpoint(method), params
        )
        if "error" in answer:
            raise ChainUnavailable(f"{self.view.where}: {method} failed: {answer['error']}")

    def _request(self, signed: SignedTx, method: str, params: list[Any]) -> dict[str, Any]:
        """``method`` once: never re-sent unseen by the transport (an outage raises)."""
        provider: Any = self.w3.provider
        send = getattr(provider, "make_request_once", provider.make_request)
        try:
            return dict(send(RPCEndpoint(method), params))
        except node_refusals() as exc:
            self._nonces.pop(signed.sender, None)
            raise ChainRejected(revert_reason(exc), chain=self.key, label=signed.label) from None
        except Exception as exc:
            if self.view.is_outage(exc):
                raise
            self._nonces.pop(signed.sender, None)
            raise ChainUnavailable(
                f"{self.view.where}: sending {signed.label} failed: {type(exc).__name__}: {exc}"
            ) from None

    def _refused(self, signed: SignedTx, error: Any) -> ChainRejected:
        """A transaction the node would not take: its sender's nonce is read again next time."""
        signed.client._nonces.pop(signed.sender, None)
        reason = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        return ChainRejected(str(reason), chain=self.key, label=signed.label)

    def _settle(self, signed: SignedTx, rcpt: dict[str, Any]) -> dict[str, Any]:
        """Log a mined transaction's receipt; raise its revert reason if it reverted."""
        gas_used = _int(rcpt, "gasUsed", "gas_used")
        block = _int(rcpt, "blockNumber", "block_number")
        ok = bool(_int(rcpt, "status", "status"))
        owner = signed.client
        owner._last = Receipt(
            chain=self.key,
            tx_hash=str(rcpt.get("transactionHash", rcpt.get("transaction_hash"))),
            block=block,
            gas_used=gas_used,
            label=signed.label,
            sender=signed.sender,
            status=ok,
            fee_wei=gas_used * _int(rcpt, "effectiveGasPrice", "effective_gas_price"),
        )
        owner._log.append(owner._last)
        block_hash = rcpt.get("blockHash", rcpt.get("block_hash"))
        if block_hash:
            owner.view.saw(block, _unhex(block_hash))
        if not ok:
            raise ChainRejected(
                self._replay_reason(signed.tx, signed.sender, block - 1),
                chain=self.key,
                label=signed.label,
            )
        created = rcpt.get("contractAddress", rcpt.get("contract_address"))
        return {
            "transactionHash": owner._last.tx_hash,
            "blockNumber": block,
            "gasUsed": gas_used,
            "feeWei": owner._last.fee_wei,
            "status": int(ok),
            "contractAddress": to_checksum_address(created) if created else None,
            "logs": [
                {
                    "address": str(log["address"]),
                    "topics": [HexBytes(x) for x in log["topics"]],
                    "data": HexBytes(log["data"]),
                }
                for log in rcpt.get("logs", [])
            ],
        }

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        """The raw receipt of a sent transaction, polled until it is mined.

        Raises
        ------
        ChainUnavailable
            If the node answers with an error or mines nothing for 60 s (an
            outage raises as is: a riding caller waits for the node).
        """
        deadline = time.monotonic() + RECEIPT_TIMEOUT_S
        while True:
            response = self.w3.provider.make_request(
                RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
            )
            if response.get("result"):
                return dict(response["result"])
            if "error" in response or time.monotonic() > deadline:
                raise ChainUnavailable(
                    f"{self.view.where}: no receipt for {tx_hash}: "
                    f"{response.get('error') or f'not mined within {RECEIPT_TIMEOUT_S:g} s'}"
                )
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


def _message(error: Any) -> str:
    """The text of a JSON-RPC error answer."""
    return str(error.get("message", error) if isinstance(error, dict) else error)


def _unhex(value: Any) -> bytes:
    """Bytes of a hash as a node (0x-hex) or eth-tester (bytes) gives it."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _int(receipt: dict[str, Any], camel: str, snake: str) -> int:
    """A number of a raw receipt (anvil: camelCase hex; eth-tester: snake_case ints)."""
    value = receipt.get(camel, receipt.get(snake, 0))
    return int(value, 16) if isinstance(value, str) else int(value or 0)


def send_together(txs: Sequence[SignedTx]) -> list[dict[str, Any] | ChainRejected]:
    """Send transactions signed by many parties, each chain's in batches (see
    :meth:`ChainClient.send_together`); their receipts or refusals, in order.

    Chains that are nodes of their own (anvil, RPC) get their batches at the
    same time, one thread per chain, as each chain's parties would send them;
    embedded chains, which share this process, one after the other.
    """
    by_view: dict[int, list[int]] = {}
    for i, t in enumerate(txs):
        by_view.setdefault(id(t.client.view.w3), []).append(i)
    groups = [[txs[i] for i in positions] for positions in by_view.values()]

    def send(group: list[SignedTx]) -> list[dict[str, Any] | ChainRejected]:
        return group[0].client.send_together(group)

    if len(groups) > 1 and all(g[0].client.view.url is not None for g in groups):
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            answers = list(pool.map(send, groups))
    else:
        answers = [send(g) for g in groups]
    results: list[dict[str, Any] | ChainRejected] = [ChainRejected("not sent")] * len(txs)
    for positions, answer in zip(by_view.values(), answers, strict=True):
        for i, result in zip(positions, answer, strict=True):
            results[i] = result
    return results

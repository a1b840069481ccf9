"""A party's own view of a chain: what it reads, through the endpoint it chose.

Every verifier (validator, committee member) and every other party reads a
chain through its own :class:`ChainView`, so a lying endpoint misleads only
the parties that chose it. On node backends each view is its own HTTP
connection to the URL the party was configured with; on the embedded backend
every view of a chain reads the same in-process py-evm chain (a test may wrap
one party's view in a lying provider).

A node that stops answering (connection refused or reset, a timeout) is
waited for: the view reports the wait once (a
:class:`~aoichain.chain.errors.ChainOutageWarning`), retries with a growing
pause until the node answers again, then repeats the call; after ``outage_s``
seconds it gives up with :class:`~aoichain.chain.errors.ChainDown`. A node
that came back without a block the view saw (restarted from a state saved
before that block) is :class:`~aoichain.chain.errors.ChainRewound`. Any other
failure (a block the node does not have, a malformed answer) is one
:class:`~aoichain.chain.errors.ChainUnavailable`. Each names the chain and
the URL.
"""

from __future__ import annotations

import http.client
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import RPCEndpoint

from aoichain.chain.abi import Codec, codec
from aoichain.chain.artifacts import Artifact
from aoichain.chain.config import OUTAGE_S
from aoichain.chain.errors import (
    ChainDown,
    ChainOutageWarning,
    ChainRejected,
    ChainRewound,
    ChainUnavailable,
)
from aoichain.chain.proofs import StorageProof, parse_get_proof

T = TypeVar("T")
#: First and longest pause between two asks of a node that does not answer (seconds).
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
# Every outage is its own event: report each one, not only the first of a kind.
warnings.filterwarnings("always", category=ChainOutageWarning, append=True)


@dataclass(frozen=True)
class BlockHeader:
    """What a checkpoint names: a block's number, hash and state root."""

    number: int
    block_hash: bytes
    state_root: bytes


@dataclass
class _Wait:
    """One call's wait for a node: when it gives up, and whether the wait was reported."""

    deadline: float | None = None
    reported: bool = False


class ChainView:
    """Read-only access to one chain through one endpoint.

    Parameters
    ----------
    key : str
        The chain's key (``M``, ``R``, ``P``, ...).
    chain_id : int
        Its chain id (checked against the endpoint when built from a URL).
    w3 : Web3
        The connection.
    url : str or None
        The endpoint's URL (None in process), for error messages.
    outage_s : float
        Seconds to wait for the endpoint when it stops answering.
    """

    def __init__(
        self,
        key: str,
        chain_id: int,
        w3: Web3,
        url: str | None = None,
        *,
        outage_s: float = OUTAGE_S,
    ):
        self.key = key
        self.chain_id = chain_id
        self.w3 = w3
        self.url = url
        self.outage_s = outage_s
        #: Failed connections and new ones this view met (a client sending a block
        #: of transactions checks what the node holds after one).
        self.interruptions = 0
        self._seen: tuple[int, bytes] | None = None
        self._connections = self._connection_count()

    def __repr__(self) -> str:
        return f"ChainView({self.key} {self.url or 'in process'})"

    @property
    def where(self) -> str:
        """``chain P (http://127.0.0.1:8545)``: how errors name this view."""
        return f"chain {self.key} ({self.url or 'in process'})"

    # ------------------------------------------------------------------ outages

    def is_outage(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the endpoint does not answer (rather than answers badly)."""
        return self.url is not None and isinstance(exc, OSError | http.client.HTTPException)

    def ride_out(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, called again once the node answers if it stops answering meanwhile.

        ``fn`` must be safe to repeat (a read, or a send that first checks
        what the node already holds). Exceptions other than an outage pass
        through unchanged. A dropped connection to a node that answers at
        once is retried silently; a node that does not answer is reported
        once (:class:`~aoichain.chain.errors.ChainOutageWarning`) and asked
        again with a growing pause.

        Raises
        ------
        ChainDown
            If the node does not answer again within ``outage_s`` seconds.
        ChainRewound
            If it came back without a block this view saw.
        """
        wait = _Wait()
        while True:
            try:
                result = fn()
            except Exception as exc:
                if not self.is_outage(exc):
                    raise
                self.wait_out(what, exc, wait)
                continue
            if self._connection_count() != self._connections:
                try:
                    self._reconnected()
                except Exception as exc:
                    if not self.is_outage(exc):
                        raise  # ChainRewound; an outage: checked at the next call
            return result

    def wait_out(self, what: str, exc: BaseException, wait: _Wait | None = None) -> None:
        """Wait until the node, which just failed with ``exc`` (an outage), answers again.

        ``wait`` carries one call's deadline and whether it was reported over
        its retries (a fresh one if None).

        Raises
        ------
        ChainDown
            If the node does not answer within ``outage_s`` of the call's first failure.
        ChainRewound
            If it came back without a block this view saw.
        """
        wait = wait or _Wait()
        self.interruptions += 1
        cause = f"{what}: {type(exc).__name__}: {exc}"
        if wait.deadline is None:
            wait.deadline = time.monotonic() + self.outage_s
        elif time.monotonic() >= wait.deadline:  # it answers, yet this call keeps failing
            raise ChainDown(self.key, self.url, f"does not answer ({cause})") from None
        pause = RETRY_FIRST_S
        while not self._answers():
            if time.monotonic() >= wait.deadline:
                raise ChainDown(
                    self.key, self.url, f"is down: no answer for {self.outage_s:g} s ({cause})"
                ) from None
            if not wait.reported:
                wait.reported = True
                warnings.warn(
                    f"{self.where} does not answer ({cause}); waiting up to "
                    f"{self.outage_s:g} s for it to come back",
                    ChainOutageWarning,
                    stacklevel=4,
                )
            time.sleep(max(0.0, min(pause, wait.deadline - time.monotonic())))
            pause = min(2 * pause, RETRY_MAX_S)

    def _answers(self) -> bool:
        """Whether the node answers now (then checked to hold the blocks this view saw)."""
        try:
            self.w3.provider.make_request(RPCEndpoint("eth_blockNumber"), [])
            self._reconnected()
        except Exception as exc:
            if self.is_outage(exc):
                return False
            raise
        return True

    def _reconnected(self) -> None:
        """The provider opened a new connection: check the node still holds what this view saw."""
        count = self._connection_count()
        self.interruptions += 1
        self.check_continuity()
        self._connections = count

    def _connection_count(self) -> int:
        return int(getattr(self.w3.provider, "connections", 0))

    def saw(self, number: int, block_hash: bytes) -> None:
        """Note a block this view's party saw (a receipt's, a header's): the chain must keep it."""
        if self._seen is None or number > self._seen[0]:
            self._seen = (number, bytes(block_hash))

    def check_continuity(self) -> None:
        """Check the node still holds the latest block this view saw (after a reconnection).

        Raises
        ------
        ChainRewound
            If it does not (it restarted from a state saved before that block).
        """
        if self._seen is None:
            return
        number, block_hash = self._seen
        answer = self.w3.provider.make_request(
            RPCEndpoint("eth_getBlockByNumber"), [hex(number), False]
        )
        block = answer.get("result")
        if not block or _unhex(block["hash"]) != block_hash:
            head = self.w3.provider.make_request(RPCEndpoint("eth_blockNumber"), [])
            raise ChainRewound(self.key, self.url, number, int(str(head.get("result", "0x0")), 16))

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return self.ride_out(what, fn)
        except (ContractLogicError, ChainDown, ChainUnavailable):
            raise
        except Exception as exc:  # a missing block, a malformed answer: unusable
            raise ChainUnavailable(
                f"{self.where}: {what} failed: {type(exc).__name__}: {exc}"
            ) from None

    # ------------------------------------------------------------------ reading

    def head(self) -> int:
        """The number of the latest block."""
        return int(self._read("reading the head", lambda: self.w3.eth.block_number))

    def block(self, number: int | str = "latest") -> BlockHeader:
        """Number, hash and state root of a block (``"latest"`` or a number)."""
        raw = self._read(f"reading block {number}", lambda: self.w3.eth.get_block(number))  # type: ignore[arg-type]
        header = BlockHeader(int(raw["number"]), bytes(raw["hash"]), bytes(raw["stateRoot"]))
        self.saw(header.number, header.block_hash)
        return header

    def get_proof(self, address: str, slots: Sequence[int], block: int) -> StorageProof:
        """The ``eth_getProof`` answer for ``slots`` of ``address`` at ``block``."""
        params = [address, ["0x" + s.to_bytes(32, "big").hex() for s in slots], hex(block)]

        def ask() -> dict[str, Any]:
            response = self.w3.provider.make_request(RPCEndpoint("eth_getProof"), params)
            if "error" in response:
                raise ValueError(response["error"])
            return cast(dict[str, Any], response["result"])

        return self._read(f"eth_getProof at block {block}", lambda: parse_get_proof(ask()))

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A web3 contract object bound to ``address`` on this view (calls take the fast path)."""
        return bound(self.w3, artifact, address)

    def call(self, contract: Contract, fn: str, *args: Any, block: int | str = "latest") -> Any:
        """Read ``fn(*args)`` of ``contract`` (bound to this view) at ``block``.

        Raises
        ------
        ChainRejected
            If the call reverts.
        ChainUnavailable
            If the endpoint fails.
        """
        from aoichain.chain.client import revert_reason

        codec: Codec | None = getattr(contract, "aoichain_codec", None)
        if codec is None:
            try:
                return self._read(
                    f"calling {fn}",
                    lambda: contract.functions[fn](*args).call(block_identifier=block),  # type: ignore[arg-type]
                )
            except ContractLogicError as exc:
                raise ChainRejected(revert_reason(exc), chain=self.key, label=fn) from None
        call: dict[str, Any] = {
            "to": contract.address,
            "data": "0x" + codec.calldata(fn, args).hex(),
        }
        caller = self.w3.eth.default_account
        if isinstance(caller, str):
            call["from"] = caller
        # JSON-RPC takes hex block numbers; eth-tester in process takes ints.
        where = hex(block) if isinstance(block, int) and self.url is not None else block
        response = self._read(
            f"calling {fn}",
            lambda: self.w3.provider.make_request(RPCEndpoint("eth_call"), [call, where]),
        )
        if "error" in response:
            error = response["error"]
            text = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            data = error.get("data") if isinstance(error, dict) else None
            if "revert" in text.lower() or (
                isinstance(data, str) and data.startswith("0x08c379a0")
            ):
                raise ChainRejected(revert_reason(_Reverted(text, data)), chain=self.key, label=fn)
            raise ChainUnavailable(f"{self.where}: calling {fn} failed: {text}")
        return codec.result(fn, _unhex(response["result"]))

    def logs(self, event: Any, from_block: int, to_block: int, **filters: Any) -> list[Any]:
        """Decoded logs of a contract event (``contract.events.Name``) in a block range."""
        return list(
            self._read(
                f"reading {event.event_name} logs",
                lambda: event.get_logs(
                    from_block=from_block, to_block=to_block, argument_filters=filters or None
                ),
            )
        )

    def balance(self, address: str) -> int:
        """Native balance of ``address`` in wei."""
        return int(
            self._read(
                "reading a balance",
                lambda: self.w3.eth.get_balance(self.w3.to_checksum_address(address)),
            )
        )


class _Reverted(Exception):
    """A JSON-RPC error answer, in the shape :func:`~aoichain.chain.client.revert_reason` reads."""

    def __init__(self, message: str, data: Any):
        super().__init__(message)
        self.message = message
        self.data = data


def _unhex(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value).removeprefix("0x")
    return bytes.fromhex(text if len(text) % 2 == 0 else "0" + text)


_BOUND: dict[tuple[int, str, str], Contract] = {}


def bound(w3: Web3, artifact: Artifact, address: str) -> Contract:
    """A web3 contract object at ``address`` whose calls and transactions aoichain encodes
    and decodes itself (:mod:`aoichain.chain.abi`); web3 still decodes its events.

    One object per connection and contract (they hold no state of a caller): building
    one costs about a millisecond, and a network of 10,000 workers asks 20,000 times.
    """
    key = (id(w3), artifact.name, address.lower())
    contract = _BOUND.get(key)
    if contract is None or contract.w3 is not w3:
        contract = w3.eth.contract(address=w3.to_checksum_address(address), abi=artifact.abi)
        contract.aoichain_codec = codec(artifact.name)  # type: ignore[attr-defined]
        _BOUND[key] = contract
    return contract


def http_view(
    key: str, url: str, expected_chain_id: int | None = None, *, outage_s: float = OUTAGE_S
) -> ChainView:
    """A view through the JSON-RPC endpoint at ``url``, its chain id checked (once, now:
    an endpoint that does not answer now is bad input, not an outage).

    Raises
    ------
    ChainUnavailable
        If the URL is malformed, nothing answers, or the chain id differs.
    """
    from aoichain.chain.nodes import http_web3

    w3 = http_web3(key, url)
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # nothing answers, or not JSON-RPC: not usable
        raise ChainUnavailable(
            f"chain {key}: no EVM node answers at {url} ({type(exc).__name__}: {exc})"
        ) from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainUnavailable(
            f"chain {key}: the node at {url} has chain id {chain_id}, expected {expected_chain_id}"
        )
    return ChainView(key, chain_id, w3, url, outage_s=outage_s)

"""A lying endpoint: a node front that forges one contract's storage at chosen blocks.

The attack it reproduces: a pass-through proxy in front of a chain's URL
serves a made-up ``stateRoot`` for some blocks and ``eth_getProof`` answers
that verify against it, while the block hash and everything else stay
honest. A validator that only compares what its own node says signs the
forged checkpoint; a committee member that verifies proofs against it reads
the forged storage.

Three pieces:

- :func:`forge_state` builds a storage trie holding exactly the forged slots,
  one account record and a state trie holding only that account, and answers
  ``eth_getProof`` from them in anvil's JSON-RPC format.
- :class:`Lie` says what to forge (contract, storage, which blocks) and
  rewrites JSON-RPC results with one pure function, :meth:`Lie.rewrite`.
- Two transports apply it: :class:`LyingProvider` (a web3 provider around
  another one, for the embedded py-evm backend) and :class:`LyingProxy` (an
  HTTP pass-through server in front of an anvil node). :func:`lying_node`
  picks the right one for a :class:`~aoichain.chain.nodes.ChainNode`.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import rlp
from eth_utils import keccak, to_canonical_address
from trie import HexaryTrie
from web3 import HTTPProvider, Web3
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from aoichain.chain.nodes import ChainNode

EMPTY_CODE_HASH = keccak(b"")
BLANK_ROOT = keccak(rlp.encode(b""))
#: Block tags a request may name instead of a number.
TAGS = frozenset({"latest", "pending", "safe", "finalized", "earliest"})


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _int(value: int | str) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _word(value: bytes | int) -> bytes:
    """A 32-byte storage word from bytes (at most 32, left-padded) or a non-negative int."""
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    if len(value) > 32:
        raise ValueError(f"a storage value is at most 32 bytes; got {len(value)}")
    return bytes(value).rjust(32, b"\0")


# ----------------------------------------------------------------- forged state


@dataclass(frozen=True)
class ForgedState:
    """A state trie holding one account whose storage trie holds exactly the forged slots."""

    address: str
    storage: Mapping[int, bytes]
    nonce: int
    balance: int
    code_hash: bytes
    storage_root: bytes
    state_root: bytes
    _state: HexaryTrie = field(repr=False, compare=False)
    _storage: HexaryTrie = field(repr=False, compare=False)

    def get_proof(
        self, address: str, slots: Sequence[int | str], block: Any = None
    ) -> dict[str, Any]:
        """The ``eth_getProof`` result for ``slots`` of ``address`` in this state.

        Same fields and encoding as anvil's answer (hex strings, lowercase
        address, 32-byte keys, ``["0x80"]`` for a slot of an empty storage
        trie). Any address other than the forged one is absent from this
        state, so it gets a proof of absence. ``block`` is ignored: the forged
        state is the same at every block the lie covers.
        """
        del block
        key = keccak(to_canonical_address(address))
        account_proof = [_hex(rlp.encode(node)) for node in self._state.get_proof(key)]
        own = self._state.get(key) != b""
        storage = self._storage if own else HexaryTrie({})
        entries = []
        for slot in slots:
            number = _int(slot)
            slot_key = keccak(number.to_bytes(32, "big"))
            raw = storage.get(slot_key)
            nodes = storage.get_proof(slot_key)
            entries.append(
                {
                    "key": _hex(number.to_bytes(32, "big")),
                    "value": hex(int.from_bytes(rlp.decode(raw), "big")) if raw else "0x0",
                    "proof": [_hex(rlp.encode(n)) for n in nodes] or ["0x80"],
                }
            )
        return {
            "address": address.lower(),
            "balance": hex(self.balance) if own else "0x0",
            "codeHash": _hex(self.code_hash if own else EMPTY_CODE_HASH),
            "nonce": hex(self.nonce) if own else "0x0",
            "storageHash": _hex(self.storage_root if own else BLANK_ROOT),
            "accountProof": account_proof,
            "storageProof": entries,
        }


def forge_state(
    address: str,
    storage: Mapping[int, bytes | int],
    like: Mapping[str, Any] | None = None,
) -> ForgedState:
    """Build the forged tries of ``address`` holding ``storage`` ({slot: 32-byte value}).

    Zero values are left out of the storage trie (as Ethereum does); a proof
    of such a slot is a proof of absence, which ``verify_storage`` reads as
    zero. ``like`` is a real ``eth_getProof`` answer for the account: its
    nonce, balance and code hash are kept so the lie looks plausible
    (default: nonce 0, balance 0, no code).
    """
    words = {int(slot): _word(value) for slot, value in storage.items()}
    storage_trie = HexaryTrie({})
    for slot, word in words.items():
        if any(word):
            storage_trie[keccak(slot.to_bytes(32, "big"))] = rlp.encode(word.lstrip(b"\0"))
    nonce = _int(like["nonce"]) if like else 0
    balance = _int(like["balance"]) if like else 0
    code_hash = bytes.fromhex(like["codeHash"][2:]) if like else EMPTY_CODE_HASH
    storage_root = storage_trie.root_hash
    state_trie = HexaryTrie({})
    state_trie[keccak(to_canonical_address(address))] = rlp.encode(
        [nonce, balance, storage_root, code_hash]
    )
    return ForgedState(
        address=address,
        storage=words,
        nonce=nonce,
        balance=balance,
        code_hash=code_hash,
        storage_root=storage_root,
        state_root=state_trie.root_hash,
        _state=state_trie,
        _storage=storage_trie,
    )


# ------------------------------------------------------------------------- lie


@dataclass(frozen=True)
class Lie:
    """What a lying endpoint forges: ``address``'s ``storage`` at some blocks.

    Blocks covered: the numbers in ``blocks``, every number from
    ``from_block`` on, and (``latest=True``) whatever a request naming the
    ``latest`` tag gets. A block is recognised by the number in the node's
    answer (``eth_getBlockByNumber`` / ``ByHash``) and by the number in the
    request (``eth_getProof``): a proof asked for by tag is forged only with
    ``latest=True``, one asked for by block hash (EIP-1898) never.

    ``like`` is a real ``eth_getProof`` answer for ``address`` to copy the
    account's nonce, balance and code hash from (see :func:`forge_state`).
    """

    address: str
    storage: Mapping[int, bytes | int]
    blocks: Collection[int] = ()
    from_block: int | None = None
    latest: bool = False
    like: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    forged: ForgedState = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.blocks and self.from_block is None and not self.latest:
            raise ValueError("a Lie must cover some blocks: give blocks, from_block or latest")
        object.__setattr__(self, "blocks", frozenset(self.blocks))
        object.__setattr__(self, "forged", forge_state(self.address, self.storage, self.like))

    @property
    def state_root(self) -> bytes:
        """The forged state root served for every covered block."""
        return self.forged.state_root

    def covers(self, block: Any) -> bool:
        """Whether a block named by a number (int or hex) or a tag is forged."""
        if isinstance(block, str) and block in TAGS:
            return self.latest and block == "latest"
        if isinstance(block, Mapping):  # EIP-1898 {"blockNumber": ...} or {"blockHash": ...}
            return "blockNumber" in block and self.covers(block["blockNumber"])
        try:
            number = _int(block)
        except (TypeError, ValueError):
            return False
        return number in self.blocks or (self.from_block is not None and number >= self.from_block)

    def rewrite(self, method: str, params: Sequence[Any], result: Any) -> Any:
        """What a lying node answers to ``method(params)`` when the honest one says ``result``.

        Pure: ``result`` is not modified. Block results of covered blocks
        get the forged ``stateRoot`` (hash, number and the rest unchanged);
        ``eth_getProof`` at a covered block is answered from the forged
        tries; everything else is returned as it came.
        """
        if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
            if not isinstance(result, Mapping) or result.get("number") is None:
                return result
            by_tag = method == "eth_getBlockByNumber" and bool(params) and params[0] == "latest"
            if self.covers(result["number"]) or (by_tag and self.latest):
                return {**result, "stateRoot": _hex(self.state_root)}
            return result
        if method == "eth_getProof" and len(params) >= 3 and self.covers(params[2]):
            address, slots, block = params[0], params[1], params[2]
            return self.forged.get_proof(address, slots, block)
        return result


def _rewrite_response(lie: Lie | None, method: str, params: Any, response: Any) -> Any:
    """``response`` (one JSON-RPC response object) with its result rewritten by ``lie``."""
    if lie is None or not isinstance(response, dict) or "result" not in response:
        return response
    return {**response, "result": lie.rewrite(method, params or [], response["result"])}


# -------------------------------------------------------------------- provider


class LyingProvider(BaseProvider):
    """A web3 provider that answers like ``upstream`` except for ``lie``.

    Requests go through ``upstream``'s own pipeline (for
    ``EthereumTesterProvider`` that includes the middleware turning
    eth-tester's answers into JSON-RPC ones), then :meth:`Lie.rewrite`.
    ``lie`` may be replaced or set to ``None`` (honest) at any time.
    """

    def __init__(self, upstream: BaseProvider, lie: Lie | None = None):
        super().__init__()
        self.upstream = upstream
        self.lie = lie
        # A Web3 without middleware of its own: upstream.request_func then
        # adds only what the provider itself needs (eth-tester's formatting).
        bare = Web3(upstream, middleware=[])
        self._forward = upstream.request_func(bare, bare.middleware_onion)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """Forward to the upstream and rewrite the answer."""
        response = self._forward(method, params)
        return cast(RPCResponse, _rewrite_response(self.lie, method, params, response))

    def is_connected(self, show_traceback: bool = False) -> bool:
        """Whether the upstream is connected."""
        return self.upstream.is_connected(show_traceback)


# ----------------------------------------------------------------------- proxy


def _rewrite_body(lie: Lie | None, request: Any, response: Any) -> Any:
    """Rewrite a decoded JSON-RPC response (single or batch) for its request."""
    if isinstance(request, dict):
        return _rewrite_response(lie, request.get("method", ""), request.get("params"), response)
    if isinstance(request, list) and isinstance(response, list):
        by_id = {r.get("id"): r for r in request if isinstance(r, dict)}
        out = []
        for item in response:
            req = by_id.get(item.get("id")) if isinstance(item, dict) else None
            if req is None:
                out.append(item)
            else:
                out.append(_rewrite_response(lie, req.get("method", ""), req.get("params"), item))
        return out
    return response


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.server.proxy.forward(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests' output is not the place for an access log


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: LyingProxy):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class LyingProxy:
    """An HTTP JSON-RPC pass-through to ``upstream_url`` on a loopback port, lying with ``lie``.

    Use as a context manager: ``with LyingProxy(url, lie) as proxy_url: ...``
    starts the server in a background thread and stops it on exit. Batches
    are forwarded as one request and each answer rewritten for its request
    (matched by id). ``lie`` may be replaced or set to ``None`` at any time.
    """

    def __init__(self, upstream_url: str, lie: Lie | None = None, timeout: float = 10.0):
        self.upstream_url = upstream_url
        self.lie = lie
        self.timeout = timeout
        self.url: str | None = None
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    def forward(self, body: bytes) -> tuple[int, bytes]:
        """Send ``body`` upstream; the HTTP status and the (rewritten) answer."""
        request = urllib.request.Request(
            self.upstream_url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:
            error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": str(exc)}}
            return 502, json.dumps(error).encode()
        lie = self.lie
        if lie is None:
            return status, payload
        try:
            decoded_request, decoded_answer = json.loads(body), json.loads(payload)
        except ValueError:
            return status, payload
        return status, json.dumps(_rewrite_body(lie, decoded_request, decoded_answer)).encode()

    def start(self) -> str:
        """Start serving; returns the proxy's URL."""
        self._server = _ProxyServer(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        # A short poll interval: shutdown() waits for the loop to look (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="lying-proxy", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------ node


@dataclass
class LyingNode(ChainNode):
    """A :class:`ChainNode` whose endpoint lies; ``liar.lie`` may be changed at any time."""

    liar: LyingProvider | LyingProxy | None = None


@contextmanager
def lying_node(honest: ChainNode, lie: Lie | None) -> Iterator[LyingNode]:
    """A node of the same chain as ``honest`` whose endpoint lies with ``lie``.

    In process (embedded) a :class:`LyingProvider` wraps the honest node's
    provider; over HTTP (anvil, rpc) a :class:`LyingProxy` stands in front of
    its URL and the node's ``rpc_url`` is the proxy's. Leaving the context
    stops the proxy, never the chain.
    """
    if honest.rpc_url is None:
        provider = LyingProvider(honest.w3.provider, lie)
        yield LyingNode(
            honest.key, honest.chain_id, Web3(provider), None, honest.kind, liar=provider
        )
        return
    proxy = LyingProxy(honest.rpc_url, lie)
    with proxy as url:
        w3 = Web3(HTTPProvider(url, exception_retry_configuration=None))
        yield LyingNode(honest.key, honest.chain_id, w3, url, honest.kind, liar=proxy)

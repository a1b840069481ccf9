"""The chains themselves: in-process py-evm, local anvil nodes, or remote RPC nodes.

Each backend yields one :class:`ChainNode` per chain (M, R and the
subchains): a web3 connection, the chain id, its RPC URL (``None`` in
process). Parties read a chain through their own :class:`~aoichain.chain.views.ChainView`
(:meth:`ChainNode.view` for one sharing the node's connection).

- ``embedded``: eth-tester's py-evm backend behind web3's
  ``EthereumTesterProvider``. eth-tester hard-codes one chain id, so the
  py-evm chain object and the ``eth_chainId`` endpoint are given the
  configured id (the ``CHAINID`` opcode then returns it), and an
  ``eth_getProof`` endpoint built from py-evm's state database is added.
- ``anvil``: one ``anvil`` process per chain on a loopback port the OS
  picks (``--port 0``; the port is read from anvil's log), stopped when the
  ledger stops and killed with its parent (``PR_SET_PDEATHSIG``).
- ``rpc``: any JSON-RPC URL; nothing is started, and every node is checked
  (reachable, chain id) before anything is sent.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint

from aoichain.chain.config import chain_name
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.proofs import pyevm_get_proof
from aoichain.chain.transport import KeepAliveProvider
from aoichain.chain.views import ChainView

#: Where ``npm install`` puts the anvil binary (one package per platform), from the project root.
ANVIL_GLOB = "node_modules/@foundry-rs/anvil-*/bin/anvil"
#: Every dev account of the anvil nodes we start holds this much ether (funds our accounts).
ANVIL_DEV_BALANCE_ETH = 10**9
ANVIL_START_TIMEOUT_S = 20.0
RPC_TIMEOUT_S = 10.0


@dataclass
class ChainNode:
    """One running chain and how to talk to it."""

    key: str
    chain_id: int
    w3: Web3
    rpc_url: str | None
    kind: str
    process: AnvilProcess | None = None
    _extra_stop: list[Callable[[], None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``main``, ``relay``, ``physical``, ``virtual-2``..."""
        return chain_name(self.key)

    def view(self) -> ChainView:
        """A view of this chain through the node's own connection."""
        return ChainView(self.key, self.chain_id, self.w3, self.rpc_url)

    def get_proof(self, address: str, slots: list[int], block_number: int) -> dict[str, Any]:
        """The raw ``eth_getProof`` answer for ``slots`` of ``address`` at ``block_number``."""
        params = [address, ["0x" + s.to_bytes(32, "big").hex() for s in slots], hex(block_number)]
        response = self.w3.provider.make_request(RPCEndpoint("eth_getProof"), params)
        if "error" in response:
            raise ChainUnavailable(f"chain {self.key}: eth_getProof failed: {response['error']}")
        return cast(dict[str, Any], response["result"])

    def stop(self) -> None:
        """Stop the node if this process started it."""
        if self.process is not None:
            self.process.stop()
        for fn in self._extra_stop:
            fn()


# --------------------------------------------------------------------- embedded


def start_embedded(key: str, chain_id: int, alloc: Mapping[str, int]) -> ChainNode:
    """A fresh in-process py-evm chain with ``chain_id`` and genesis balances ``alloc`` (wei)."""
    from eth_tester import EthereumTester, PyEVMBackend
    from eth_utils import to_canonical_address
    from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

    genesis = {
        to_canonical_address(addr): {"balance": wei, "nonce": 0, "code": b"", "storage": {}}
        for addr, wei in alloc.items()
    }
    backend = PyEVMBackend(genesis_state=genesis)
    # One chain id per network: CHAINID opcode (VM context) and eth_chainId.
    backend.chain.chain_id = chain_id
    tester = EthereumTester(backend)

    def get_proof(_tester: Any, params: Any) -> dict[str, Any]:
        address, slots, block = params
        number = int(block, 16) if isinstance(block, str) and block.startswith("0x") else block
        if number == "latest":
            number = backend.chain.get_block().number - 1
        return pyevm_get_proof(backend.chain, address, [int(s, 16) for s in slots], int(number))

    endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = static_return(chain_id)
    endpoints["eth"]["getProof"] = get_proof
    w3 = lean(Web3(EthereumTesterProvider(tester, api_endpoints=endpoints)))
    return ChainNode(key=key, chain_id=chain_id, w3=w3, rpc_url=None, kind="embedded")


# ------------------------------------------------------------------------ anvil


def find_anvil() -> Path:
    """Locate the anvil binary installed by ``npm install``.

    Looked for, in order: ``$AOICHAIN_ANVIL``; ``node_modules/...`` in the
    current directory or any parent; the same beside this package's source
    tree; ``anvil`` on ``PATH``.

    Raises
    ------
    ChainUnavailable
        If no anvil binary is found.
    """
    env = os.environ.get("AOICHAIN_ANVIL")
    if env:
        if Path(env).is_file():
            return Path(env)
        raise ChainUnavailable(f"AOICHAIN_ANVIL={env!r} is not a file.")
    roots = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for root in roots:
        for candidate in sorted(root.glob(ANVIL_GLOB)):
            if candidate.is_file():
                return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ChainUnavailable(
        "The anvil binary was not found: run `npm install` in the project folder "
        "(it installs @foundry-rs/anvil from package.json) or set AOICHAIN_ANVIL."
    )


PR_SET_PDEATHSIG = 1


def _death_signal_setter() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when the starting thread dies.

    Only on Linux and from the main thread (the death signal follows the
    thread that forked, so a worker thread's exit would kill the node). libc
    is loaded here, in the parent, so the child only makes one system call.
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def set_death_signal() -> None:  # pragma: no cover - runs in the child
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


_LISTENING = re.compile(r"Listening on ([0-9.]+):(\d+)")


class AnvilProcess:
    """One anvil node on a loopback port chosen by the OS."""

    def __init__(self, chain_id: int, log_path: Path, binary: Path | None = None):
        self.chain_id = chain_id
        self.log_path = log_path
        self.binary = binary or find_anvil()
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The node's process id while it runs."""
        return self._proc.pid if self._proc else None

    def start(self) -> str:
        """Start the node and wait until it listens; returns its URL."""
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (see :meth:`wait_ready`)."""
        args = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            "1",
            "--balance",
            str(ANVIL_DEV_BALANCE_ETH),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_death_signal_setter(),
            )

    def wait_ready(self) -> str:
        """Wait until the launched node listens; returns its URL."""
        assert self._proc is not None, "launch() first"
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.url = f"http://{match.group(1)}:{match.group(2)}"
                return self.url
            if self._proc.poll() is not None:
                break
            time.sleep(0.01)
        tail = self.log_path.read_text(errors="replace")[-500:]
        self.stop()
        raise ChainUnavailable(f"anvil (chain id {self.chain_id}) did not start: {tail.strip()}")

    @property
    def alive(self) -> bool:
        """Whether the node process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_web3(key: str, url: str) -> Web3:
    """A web3 connection to the JSON-RPC endpoint at ``url`` (kept alive; short timeout).

    Raises
    ------
    ChainUnavailable
        If ``url`` is not an http(s) URL.
    """
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        raise ChainUnavailable(f"chain {key}: rpc_url must be an http(s) URL; got {url!r}")
    return lean(Web3(KeepAliveProvider(url, timeout=RPC_TIMEOUT_S)))


def lean(w3: Web3) -> Web3:
    """Drop web3's middleware that aoichain never needs: every transaction carries its
    chain id, gas and fees, and no address is an ENS name (saves an ``eth_chainId``
    round trip per call)."""
    for name in ("validation", "ens_name_to_address", "gas_estimate", "gas_price_strategy"):
        if name in w3.middleware_onion:
            w3.middleware_onion.remove(name)
    return w3


def start_anvils(chain_ids: Mapping[str, int], log_dir: Path | None = None) -> dict[str, ChainNode]:
    """Start one anvil node per chain, in parallel; logs go to ``log_dir`` (a temp dir if None)."""
    cleanup: list[Callable[[], None]] = []
    if log_dir is None:
        tmp = tempfile.mkdtemp(prefix="aoichain-anvil-")
        log_dir = Path(tmp)
        cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    binary = find_anvil()
    procs = {
        k: AnvilProcess(cid, log_dir / f"anvil-{k}.log", binary) for k, cid in chain_ids.items()
    }
    try:
        for proc in procs.values():
            proc.launch()
        urls = {k: proc.wait_ready() for k, proc in procs.items()}
    except BaseException:
        for proc in procs.values():
            proc.stop()
        for fn in cleanup:
            fn()
        raise
    nodes = {
        k: ChainNode(
            key=k,
            chain_id=chain_ids[k],
            w3=http_web3(k, urls[k]),
            rpc_url=urls[k],
            kind="anvil",
            process=procs[k],
        )
        for k in chain_ids
    }
    # The temporary log folder goes when the last node stops.
    list(nodes.values())[-1]._extra_stop.extend(cleanup)
    return nodes


# -------------------------------------------------------------------------- rpc


def attach_rpc(key: str, url: str, expected_chain_id: int | None = None) -> ChainNode:
    """Connect to a running node and check it answers with the expected chain id.

    Raises
    ------
    ChainUnavailable
        If the URL is malformed, the node does not answer, or its chain id
        differs from ``expected_chain_id``.
    """
    w3 = http_web3(key, url)
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # requests/urllib3/JSON errors all mean "not usable"
        raise ChainUnavailable(
            f"chain {key}: no EVM node answers at {url} ({type(exc).__name__}: {exc})"
        ) from None
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainUnavailable(
            f"chain {key}: the node at {url} has chain id {chain_id}, "
            f"the file says {expected_chain_id}"
        )
    return ChainNode(key=key, chain_id=chain_id, w3=w3, rpc_url=url, kind="rpc")

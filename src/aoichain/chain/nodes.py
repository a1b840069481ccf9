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
  ledger stops and killed with its parent (``PR_SET_PDEATHSIG``). Given a
  state file, a node keeps its chain on disk: it starts from the file if it
  exists, its state is saved to it (:meth:`AnvilProcess.save_state`, which
  a :class:`Supervisor` calls within 0.2 s of every new block) and when it
  stops (by us, or as anvil exits on a SIGTERM from elsewhere), and
  :meth:`AnvilProcess.restart` brings a node that died back from it, on the
  same port. A ``kill -9`` loses the blocks mined since the last save.
- ``rpc``: any JSON-RPC URL; nothing is started, and every node is checked
  (reachable, chain id) before anything is sent.
"""

from __future__ import annotations

import ctypes
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint

from aoichain.chain.config import OUTAGE_S, chain_name
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
#: A node's state is saved at most this long (seconds) after a new block, or
#: ``STATE_LOAD`` times as long as its last save took if that is longer (a
#: node holding thousands of blocks takes 0.1 s to serialise: it then spends
#: at most a fifth of its time saving). Without a new block the state is saved
#: every ``STATE_REFRESH_S`` regardless (balances set without a block).
STATE_INTERVAL_S = 0.2
STATE_LOAD = 5.0
STATE_REFRESH_S = 10.0
#: Seconds allowed to fetch and write a node's state (anvil serialises all its blocks).
STATE_TIMEOUT_S = 60.0
#: anvil's own periodic dump, which aoichain does not use (it dumps as it exits).
YEAR_S = 365 * 24 * 3600


@dataclass
class ChainNode:
    """One running chain and how to talk to it."""

    key: str
    chain_id: int
    w3: Web3
    rpc_url: str | None
    kind: str
    process: AnvilProcess | None = None
    #: Seconds its views wait for the node when it stops answering.
    outage_s: float = OUTAGE_S
    _extra_stop: list[Callable[[], None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``main``, ``relay``, ``physical``, ``virtual-2``..."""
        return chain_name(self.key)

    def view(self) -> ChainView:
        """A view of this chain through the node's own connection."""
        return ChainView(self.key, self.chain_id, self.w3, self.rpc_url, outage_s=self.outage_s)

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
    """One anvil node on a loopback port, its chain kept in a state file if given.

    Parameters
    ----------
    chain_id
        The chain id it serves.
    log_path
        Its log (appended to on every start).
    binary
        The anvil binary (found by :func:`find_anvil` if None).
    state_path
        Where its state is kept: loaded at start if the file exists, saved by
        :meth:`save_state` (atomically: a node killed while saving never
        leaves a torn file) and when it stops.
    port
        The port to listen on; None lets the OS pick one at the first start,
        kept for every restart.
    """

    def __init__(
        self,
        chain_id: int,
        log_path: Path,
        binary: Path | None = None,
        *,
        state_path: Path | None = None,
        port: int | None = None,
    ):
        self.chain_id = chain_id
        self.log_path = log_path
        self.binary = binary or find_anvil()
        self.state_path = state_path
        self.port = port
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0
        self._rpc: KeepAliveProvider | None = None
        self._saved: tuple[str, float] | None = None  # (head, time.monotonic()) of the last save
        self._pace = STATE_INTERVAL_S

    @property
    def pid(self) -> int | None:
        """The node's process id while it runs."""
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        """How the process ended (negative: the signal that killed it); None while it runs."""
        return self._proc.poll() if self._proc else None

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
            str(self.port or 0),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            "1",
            "--balance",
            str(ANVIL_DEV_BALANCE_ETH),
        ]
        # anvil's periodic dump (--state-interval) rewrites its file in place: a
        # node killed while it writes leaves a torn file it then refuses to start
        # from. The state is saved by save_state (written beside, then renamed);
        # anvil's own dump serves only as it exits (a SIGTERM from elsewhere, its
        # parent's death), into a file of its own adopted at the next start.
        if self.state_path is not None:
            self._adopt_exit_dump()
            if self.state_path.exists():
                args += ["--load-state", str(self.state_path)]
            args += ["--dump-state", str(self._exit_path), "--state-interval", str(YEAR_S)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_from = log.tell()
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_death_signal_setter(),
                # Its own session: a Ctrl-C at the terminal reaches the parent only,
                # which saves the node's state before it stops it.
                start_new_session=True,
            )

    @property
    def _exit_path(self) -> Path:
        assert self.state_path is not None
        return self.state_path.with_name(self.state_path.stem + ".exit.json")

    def _adopt_exit_dump(self) -> None:
        """Make the state anvil dumped as it last exited the state file, if it is complete
        and newer than the state file (else drop it)."""
        assert self.state_path is not None
        dump = self._exit_path
        if not dump.exists():
            return
        newer = (
            not self.state_path.exists()
            or dump.stat().st_mtime_ns >= self.state_path.stat().st_mtime_ns
        )
        if newer:
            try:
                json.loads(dump.read_bytes())
            except ValueError:  # torn: the node was killed while it wrote
                newer = False
        if newer:
            dump.replace(self.state_path)
        else:
            dump.unlink()

    def _log(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_from)
            return log.read().decode(errors="replace")

    def wait_ready(self) -> str:
        """Wait until the launched node listens; returns its URL."""
        assert self._proc is not None, "launch() first"
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = _LISTENING.search(self._log())
            if match:
                self.port = int(match.group(2))
                self.url = f"http://{match.group(1)}:{match.group(2)}"
                self._rpc = KeepAliveProvider(self.url, timeout=STATE_TIMEOUT_S)
                return self.url
            if self._proc.poll() is not None:
                break
            time.sleep(0.01)
        tail = self._log()[-500:]
        self.stop(save=False)
        raise ChainUnavailable(f"anvil (chain id {self.chain_id}) did not start: {tail.strip()}")

    def restart(self) -> str:
        """Start the node again from its state file, on the same port; returns its URL.

        Raises
        ------
        ChainUnavailable
            If it does not start (its port taken meanwhile, say).
        """
        self.stop(save=False)
        self._saved = None
        return self.start()

    @property
    def alive(self) -> bool:
        """Whether the node process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def save_state(self, *, force: bool = False) -> bool:
        """Save the node's state to its state file if it has a new block (or ``force``).

        Called at least every ``STATE_INTERVAL_S``, a block is saved at most
        ``STATE_INTERVAL_S`` after it is mined (or ``STATE_LOAD`` times the
        last save's duration, if longer); without a new block the state is
        saved every ``STATE_REFRESH_S`` (balances set by ``anvil_setBalance``).
        The file is written beside and renamed over the old one.

        Returns
        -------
        bool
            Whether a state was written.

        Raises
        ------
        OSError
            If the node does not answer or the file cannot be written.
        """
        if self.state_path is None or self._rpc is None or not self.alive:
            return False
        now = time.monotonic()
        if self._saved is not None and not force and now - self._saved[1] < self._pace:
            return False
        try:
            head = str(self._rpc.make_request(RPCEndpoint("eth_blockNumber"), []).get("result"))
            if (
                self._saved is not None
                and not force
                and head == self._saved[0]
                and now - self._saved[1] < STATE_REFRESH_S
            ):
                return False
            answer = self._rpc.make_request(RPCEndpoint("anvil_dumpState"), [])
            if "error" in answer:
                raise OSError(f"anvil_dumpState failed: {answer['error']}")
            data = gzip.decompress(bytes.fromhex(str(answer["result"]).removeprefix("0x")))
        except (http.client.HTTPException, ValueError, EOFError) as exc:
            raise OSError(
                f"the state of anvil (chain id {self.chain_id}) is unreadable: {exc}"
            ) from exc
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(self.state_path)
        self._saved = (head, now)
        self._pace = max(STATE_INTERVAL_S, STATE_LOAD * (time.monotonic() - now))
        return True

    def head(self) -> int:
        """The node's latest block number (asked through its own connection)."""
        assert self._rpc is not None, "start() first"
        return int(str(self._rpc.make_request(RPCEndpoint("eth_blockNumber"), [])["result"]), 16)

    def stop(self, *, save: bool = True) -> None:
        """Stop the node (its state saved first if it has a state file): SIGTERM, then
        SIGKILL after 5 s."""
        if save and self.alive:
            try:
                self.save_state(force=True)
            except OSError as exc:
                warnings.warn(
                    f"anvil (chain id {self.chain_id}): its state could not be saved as it "
                    f"stopped ({exc}); {self.state_path} keeps the last state saved",
                    stacklevel=2,
                )
        proc, self._proc = self._proc, None
        self._rpc = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Supervisor:
    """Keeps the anvil nodes of a deployment running, each from its state on disk.

    Call :meth:`tick` every fraction of a second (``aoichain chains up`` does,
    every ``TICK_S``): a node that died is started again from its state file
    on its own URL, and one line goes to ``report`` per restart (or failed
    attempt, retried with a growing pause); each live node's state is saved
    within ``STATE_INTERVAL_S`` of a new block. Nodes without a process of
    this one (attached by URL) are left alone.
    """

    TICK_S = 0.2
    RETRY_FIRST_S = 1.0
    RETRY_MAX_S = 30.0

    def __init__(self, nodes: Mapping[str, ChainNode], report: Callable[[str], None]):
        self.nodes = dict(nodes)
        self.report = report
        self.restarts: dict[str, int] = {}
        self._retry: dict[str, tuple[float, float]] = {}  # key -> (next attempt, pause)
        self._save_failing: set[str] = set()

    def tick(self) -> None:
        """Restart every dead node that is due; save every live node's state that is due."""
        for key, node in self.nodes.items():
            proc = node.process
            if proc is None:
                continue
            if proc.alive:
                self._save(key, proc)
            elif time.monotonic() >= self._retry.get(key, (0.0, 0.0))[0]:
                self._restart(key, node, proc)

    def _save(self, key: str, proc: AnvilProcess) -> None:
        try:
            proc.save_state()
        except OSError as exc:
            if key not in self._save_failing:  # one line until a save succeeds again
                self._save_failing.add(key)
                self.report(f"chain {key}: its state could not be saved ({exc}); retrying")
        else:
            self._save_failing.discard(key)

    def _restart(self, key: str, node: ChainNode, proc: AnvilProcess) -> None:
        how = _ended(proc.returncode)
        began = time.monotonic()
        try:
            proc.restart()
            head = proc.head()
        except (ChainUnavailable, OSError, http.client.HTTPException, KeyError, ValueError) as exc:
            pause = min(
                2 * self._retry.get(key, (0.0, self.RETRY_FIRST_S / 2))[1], self.RETRY_MAX_S
            )
            self._retry[key] = (time.monotonic() + pause, pause)
            self.report(
                f"chain {key}: its node ({node.rpc_url}) stopped ({how}) and did not start "
                f"again: {' '.join(str(exc).split())}; next attempt in {pause:g} s"
            )
            return
        self._retry.pop(key, None)
        self.restarts[key] = self.restarts.get(key, 0) + 1
        source = f"from {proc.state_path}" if proc.state_path else "empty (no state file)"
        self.report(
            f"chain {key}: its node ({node.rpc_url}) stopped ({how}); restarted {source} "
            f"at block {head} in {time.monotonic() - began:.2f} s"
        )


def _ended(code: int | None) -> str:
    """How a process ended, from its return code: ``exit 1``, ``killed by SIGKILL``."""
    if code is None:
        return "not running"
    if code >= 0:
        return f"exit {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


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


def start_anvils(
    chain_ids: Mapping[str, int],
    log_dir: Path | None = None,
    *,
    state_dir: Path | None = None,
    ports: Mapping[str, int] | None = None,
) -> dict[str, ChainNode]:
    """Start one anvil node per chain, in parallel; logs go to ``log_dir`` (a temp dir if None).

    With ``state_dir`` each node keeps its chain in ``state_dir/<key>.json``
    (started from it if it exists); ``ports`` fixes the port of each chain
    (the OS picks if None).
    """
    cleanup: list[Callable[[], None]] = []
    if log_dir is None:
        tmp = tempfile.mkdtemp(prefix="aoichain-anvil-")
        log_dir = Path(tmp)
        cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    binary = find_anvil()
    procs = {
        k: AnvilProcess(
            cid,
            log_dir / f"anvil-{k}.log",
            binary,
            state_path=state_dir / f"{k}.json" if state_dir is not None else None,
            port=(ports or {}).get(k),
        )
        for k, cid in chain_ids.items()
    }
    try:
        for proc in procs.values():
            proc.launch()
        urls = {k: proc.wait_ready() for k, proc in procs.items()}
    except BaseException:
        for proc in procs.values():
            proc.stop(save=False)
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

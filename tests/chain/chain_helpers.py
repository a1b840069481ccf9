"""Helpers of the chain suite (a module of its own: every test folder has a ``conftest``).

Actors have role names: ``publisher``, ``relayer``, ``committee``,
``validators``, workers ``P0..P3`` and ``V0..V3``, and an ``outsider`` (a
fresh key nobody admitted) that acts with plain web3 calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aoichain.chain import ChainRejected, Included, Network, TaskSpec, Ticket, Worker
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.deployment import contract_of
from aoichain.chain.keys import Signer, sort_signatures
from aoichain.chain.messages import Envelope, RoundRecords


def sha(*parts: object) -> bytes:
    """A distinct 32-byte hash for test data."""
    return hashlib.sha256(repr(parts).encode()).digest()


def rejected(reason: str) -> Any:
    """``pytest.raises`` for a revert whose reason ends with ``reason``."""
    return pytest.raises(ChainRejected, match=f"^.*{reason}$")


def contract(net: Network, key: str) -> Any:
    """The aoichain contract of chain ``key`` (for plain reads and transactions)."""
    return net.view(key).contract(load(contract_of(key)), net.deployment.chains[key].contract)


def client(net: Network, key: str) -> ChainClient:
    """A transaction client on chain ``key`` that logs to the network's receipts."""
    return ChainClient(net.view(key), net.receipts)


def send(net: Network, who: Signer, key: str, fn: str, *args: Any, value: int = 0) -> Any:
    """``who`` calls ``fn(*args)`` on chain ``key``'s contract in a transaction of its own.

    For keys no party of the network sends from (outsiders): a party's own
    client keeps its nonce (see :func:`fund`).
    """
    return client(net, key).transact(who, contract(net, key), fn, *args, value=value)


def call(net: Network, key: str, fn: str, *args: Any, block: int | str = "latest") -> Any:
    """Read ``fn(*args)`` of chain ``key``'s contract."""
    return net.view(key).call(contract(net, key), fn, *args, block=block)


def fund(net: Network, who: Signer, *keys: str) -> Signer:
    """Give ``who`` gas money on the chains ``keys`` (the relayer pays; dev chains only).

    Sent through the relayer's own client: a client keeps its sender's next
    nonce, so a second client sending from the relayer's key would leave the
    relayer's next transaction with a nonce already used.
    """
    for key in keys:
        net.relayer.clients[key].transfer(net.keys.relayer, who.address, 10**19)
    return who


def outsider(net: Network, *keys: str) -> Signer:
    """A fresh key nobody admitted, funded on ``keys``."""
    return fund(net, Signer.random("outsider"), *keys)


def signed_by(signers: list[Signer], digest: bytes) -> list[tuple[int, bytes, bytes]]:
    """Signatures of ``signers`` over ``digest``, sorted by signer address."""
    pairs = [(s.address, s.sign_digest(digest)) for s in signers]
    return [s.as_tuple() for s in sort_signatures(pairs)]


def committee_sigs(net: Network, digest: bytes, members: list[int]) -> list[Any]:
    """Signatures of the given committee members over ``digest``."""
    return signed_by([net.keys.committee[i] for i in members], digest)


@dataclass
class Task:
    """A task published and relayed for one test, with some workers admitted and enrolled."""

    net: Network
    task_id: int
    spec: TaskSpec
    tickets: dict[str, Ticket] = field(default_factory=dict)

    @property
    def stride(self) -> int:
        """Worker indices per item."""
        return self.spec.stride

    def worker(self, label: str) -> Worker:
        """Worker ``P0``..``V3`` of the network."""
        return self.net.worker(label[0], int(label[1:]))

    def admit(self, label: str, item: int, index: int | None = None) -> Ticket:
        """The publisher's ticket for worker ``label`` (index: next free in the item's range)."""
        if index is None:
            taken = [t.index for t in self.tickets.values() if t.item == item]
            index = item * self.stride + len(taken)
        w = self.worker(label)
        return self.net.publisher.admit(self.task_id, w.address, w.subchain, item, index)

    def enrol(self, label: str, item: int, index: int | None = None) -> Ticket:
        """Admit and enrol worker ``label``."""
        ticket = self.admit(label, item, index)
        self.worker(label).enrol(ticket)
        self.tickets[label] = ticket
        return ticket

    def submit(self, label: str, round_no: int, samples: int = 10, tag: object = None) -> bytes:
        """Worker ``label`` records an update for ``round_no``; returns its hash."""
        h = sha(self.task_id, round_no, label, tag)
        self.worker(label).submit_update(self.task_id, round_no, h, samples, 1_000 + round_no)
        return h

    def open(self, round_no: int) -> None:
        """The publisher opens a round; the relayer carries the opening down."""
        self.net.publisher.open_round(self.task_id, round_no)
        self.net.relayer.relay_round_open(self.task_id, round_no)

    def relay_records(self, round_no: int) -> dict[str, RoundRecords]:
        """The relayer carries the round's records to M."""
        return dict(self.net.relayer.relay_records(self.task_id, round_no))

    def finish_round(self, round_no: int, labels: list[str]) -> bytes:
        """Relay the records, record a global model including ``labels``, announce, close."""
        carried = self.relay_records(round_no)
        verified = self.net.publisher.verify_records(self.task_id, round_no, carried)
        wanted = {self.worker(x).address.lower() for x in labels}
        included = [
            Included(r.index, r.worker, r.update_sha256)
            for records in verified.values()
            for r in records
            if r.worker.lower() in wanted
        ]
        global_sha = sha("global", self.task_id, round_no)  # a stand-in for the model's hash
        self.net.publisher.record_global_model(self.task_id, round_no, global_sha, included)
        self.net.relayer.relay_global_model(self.task_id, round_no)
        self.net.publisher.close_round(self.task_id, round_no)
        return global_sha

    def envelope(self, key: str, round_no: int) -> Envelope:
        """A checkpointed, honest subchain -> M message of every record of the round."""
        relayer = self.net.relayer
        block = relayer.checkpoint(key)
        records = relayer.records(key, self.task_id, round_no, block)
        return relayer.envelope(
            key, "M", block, RoundRecords(self.task_id, round_no, tuple(records))
        )


def new_task(
    net: Network,
    *,
    enrol: dict[str, int] | None = None,
    rewards: tuple[int, ...] = (10, 25),
    caps: tuple[int, ...] | None = None,
    rounds: int = 3,
    max_workers: int = 8,
    open_round: bool = True,
) -> Task:
    """Publish and relay a task, admit and enrol workers (label -> item), open round 0."""
    enrol = {"P0": 0, "P1": 1, "V0": 0, "V1": 1} if enrol is None else enrol
    spec = TaskSpec(
        model_spec_hash=sha("spec"),
        rounds=rounds,
        target_accuracy=0.9,
        menu_f=[0.5 + 0.25 * i for i in range(len(rewards))],
        menu_reward_wei_per_round=list(rewards),
        menu_max_samples=list(caps or (100,) * len(rewards)),
        max_workers=max_workers,
    )
    task_id = net.publisher.publish(spec)
    net.relayer.relay_task(task_id)
    task = Task(net, task_id, spec)
    for label, item in enrol.items():
        task.enrol(label, item)
    if open_round:
        task.open(0)
    return task


# ------------------------------------------------------------------- chains up


@contextmanager
def chains_up(
    out: Path, env: Mapping[str, str] | None = None, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``aoichain chains up --out OUT --json [ARGS]`` in a child process (``env`` added to
    ours), stopped with Ctrl-C at the end, which it must survive with exit status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aoichain", "chains", "up", "--out", str(out), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        yield proc
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(file: Path, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> dict[str, Any]:
    """The JSON object ``proc`` writes to ``file``, once written (``deployments.json``)."""
    deadline = time.monotonic() + timeout_s
    while not file.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, f"no {file.name} after {timeout_s} s"
        time.sleep(0.05)
    return dict(json.loads(file.read_text()))


class Lines:
    """The lines of a child's pipe, read by a thread: a test waits for one without blocking."""

    def __init__(self, pipe: Any):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        for raw in pipe:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout_s: float = 30) -> str:
        """The first line matching ``pattern`` (a regex), once the child printed it."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                assert left > 0, f"no line matching {pattern!r} in {self.lines}"
                self._changed.wait(left)


def anvil_pid(parent: int, chain_id: int) -> int:
    """The process id of the anvil node of ``chain_id`` that process ``parent`` started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        flag = cmdline.index(b"--chain-id") if b"--chain-id" in cmdline else -2
        if ppid == parent and cmdline[flag + 1] == str(chain_id).encode():
            return int(stat.parent.name)
    raise AssertionError(f"process {parent} runs no anvil node of chain id {chain_id}")


def wait_until(condition: Any, timeout_s: float = 30, what: str = "the condition") -> None:
    """Poll ``condition()`` until it is true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.02)

"""The processes of a local federation: started together, logged, and stopped together.

Every process starts in its own process group (so a terminal's Ctrl-C reaches
this process, which then stops them all in order) and gets SIGTERM if this
process dies (``PR_SET_PDEATHSIG``, as the anvil nodes do). Flower's
components start processes of their own, some in new sessions (a SuperLink's
``flower-superexec``), which no process-group signal reaches; so while a
federation runs this process is a child subreaper (``PR_SET_CHILD_SUBREAPER``):
whatever they leave behind is re-parented here, and :meth:`Processes.stop`
stops every descendant of what it started, and every orphan it adopted,
SIGTERM first and SIGKILL after a grace period. No process outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aoichain.chain.nodes import _death_signal_setter
from aoichain.flower.errors import FederationError

PR_SET_CHILD_SUBREAPER = 36
#: Seconds between SIGTERM and SIGKILL when stopping (Flower's SuperNodes take 10-15 s
#: to stop on SIGTERM while they retry their connection; nothing is lost by not waiting).
GRACE_S = 3.0


def _set_subreaper(on: bool) -> bool:
    """Make this process adopt its descendants' orphans (Linux); whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0)


def _processes() -> Iterator[tuple[int, str, int]]:
    """Every process as ``(pid, state, parent pid)``, from ``/proc``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        yield int(entry), state, int(ppid)


def _parents() -> dict[int, int]:
    """Every live process's parent (zombies excluded)."""
    return {pid: ppid for pid, state, ppid in _processes() if state != "Z"}


def descendants(roots: Iterable[int], parents: Mapping[int, int] | None = None) -> set[int]:
    """The live processes below ``roots`` (not the roots themselves)."""
    tree = parents if parents is not None else _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in tree.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Started:
    """One process a federation started."""

    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    argv: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.popen.pid

    def tail(self, chars: int = 1500) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""


class Processes:
    """The processes of one federation (use as a context manager: leaving stops them all).

    Parameters
    ----------
    log_dir : Path
        Each process writes ``<label>.log`` here (stdout and stderr).
    env : mapping
        The environment every process starts with.
    """

    def __init__(self, log_dir: Path, env: Mapping[str, str]):
        self.log_dir = Path(log_dir)
        self.env = dict(env)
        self.started: list[Started] = []
        self._adopting = False
        self._children_before: set[int] = set()

    def __enter__(self) -> Processes:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        me = os.getpid()
        self._children_before = {p for p, pp in _parents().items() if pp == me}
        self._adopting = _set_subreaper(True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            if self._adopting:
                _set_subreaper(False)

    def start(
        self,
        label: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ports: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> Started:
        """Start ``argv`` as process ``label`` in its own process group.

        Raises
        ------
        FederationError
            If the program cannot be started.
        """
        log = self.log_dir / f"{label}.log"
        with log.open("ab") as out:
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**self.env, **(env or {})},
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_death_signal_setter(),
                )
            except OSError as exc:
                raise FederationError(f"{label}: cannot start {argv[0]}: {exc}") from None
        started = Started(label, popen, log, tuple(argv), tuple(ports))
        self.started.append(started)
        return started

    def check(self, labels: Sequence[str] | None = None) -> None:
        """Raise if a started process (of ``labels``, default all) has exited.

        Raises
        ------
        FederationError
            Naming the process, its exit status and the end of its log.
        """
        for s in self.started:
            if (labels is None or s.label in labels) and s.popen.poll() is not None:
                raise FederationError(
                    f"{s.label} exited with status {s.popen.returncode}: {s.tail(600)}"
                )

    def wait(self, what: str, ready: Iterator[bool] | None, timeout_s: float) -> None:
        """Wait until ``ready`` yields True (checking every 0.1 s that all still run)."""
        deadline = time.monotonic() + timeout_s
        for ok in ready or iter(()):
            if ok:
                return
            self.check()
            if time.monotonic() > deadline:
                raise FederationError(f"{what} within {timeout_s:.0f} s")
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        """Each started process's id, by label."""
        return {s.label: s.pid for s in self.started}

    def ports(self) -> list[int]:
        """Every port a started process was given."""
        return sorted(p for s in self.started for p in s.ports)

    def everything(self) -> set[int]:
        """Every live process this federation owns: what it started, their descendants,
        and the orphans this process adopted since (zombies excluded)."""
        parents = _parents()
        roots = [s.pid for s in self.started if s.pid in parents]
        me = os.getpid()
        adopted = {p for p, pp in parents.items() if pp == me} - self._children_before
        # Anvil nodes started meanwhile (by this federation's network) are among the
        # adopted: they stop with the rest, and their network then finds them stopped.
        return set(roots) | descendants(roots, parents) | adopted | descendants(adopted, parents)

    def stop(self, grace_s: float = GRACE_S) -> None:
        """Stop everything (:meth:`everything`): SIGTERM, then SIGKILL after ``grace_s``."""
        targets = self.everything()
        for s in self.started:
            with contextlib.suppress(OSError):
                os.killpg(s.pid, signal.SIGTERM)
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self._reap()
            targets = {p for p in targets | self.everything() if alive(p)}
            if not targets:
                break
            time.sleep(0.05)
        for pid in targets | self.everything():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for s in self.started:
            with contextlib.suppress(OSError):
                os.killpg(s.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(alive(p) for p in targets):
            self._reap()
            time.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        """Collect the exit status of every child that ended (ours or adopted)."""
        for s in self.started:
            s.popen.poll()
        me = os.getpid()
        for pid, state, ppid in _processes():
            if state == "Z" and ppid == me and pid not in self._children_before:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

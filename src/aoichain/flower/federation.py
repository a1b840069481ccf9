"""One command's local federation: every party its own process, on loopback.

:func:`run_federation` does what ``aoichain run --engine flower`` does:

1. validates the run config and derives each worker's private facts exactly
   as the in-process engine does (:func:`aoichain.workflow.prepare`);
2. starts anvil chains and deploys the contracts, with fresh keys for the
   deployer, the relayer, the committee and the validators (``chains up``
   style, under ``OUT/chains``), unless given a deployments file;
3. creates fresh keys for the publisher and every worker (``OUT/keys``) and
   funds them (dev chains only);
4. starts one verifier daemon per committee member and validator
   (``aoichain verifier``, each with its own key), and writes where they
   listen (``OUT/flower/verifiers.json``);
5. starts a SuperLink and one SuperNode per worker (``2 × N``: nodes and
   twins), each with its own node config (``OUT/flower/nodes/``);
6. runs the app (``flwr run``): the ServerApp writes the run folder, the
   same files as the in-process engine;
7. stops every process it started, also on Ctrl-C and on failure
   (:class:`~aoichain.flower.processes.Processes`).

Flower runs offline: telemetry and update checks off, runtime dependency
installation off, ``FLWR_HOME`` under ``OUT/flower/home``; nothing reads or
writes ``~/.flwr``. Every component is ``--insecure`` (plain HTTP on
127.0.0.1): right for one machine, wrong for several (``docs/many-machines.md``).
Every process's log is under ``OUT/logs``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aoichain
from aoichain.errors import InvalidInput
from aoichain.flower.errors import FederationDown, FederationError
from aoichain.flower.processes import Processes, free_port, listening
from aoichain.flower.settings import ServerSettings, WorkerFaults
from aoichain.workflow import RunConfig, RunSummary, config_to_toml, prepare

#: Seconds to wait for a component to come up.
START_TIMEOUT_S = 120.0
#: Seconds between two SuperExec polls for work (Flower's default is 1).
SUPEREXEC_POLL_S = "0.2"


@dataclass(frozen=True)
class FederationResult:
    """What :func:`run_federation` returns; the same facts are in the run folder."""

    out_dir: Path
    summary: RunSummary
    rounds: list[dict[str, Any]]
    run_id: int
    pids: dict[str, int] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def flower_program(name: str) -> str:
    """The path of one of flwr's programs (``flower-superlink``...), beside this Python.

    Raises
    ------
    FederationError
        If flwr is not installed.
    """
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FederationError(f"{name} was not found: install flwr (pip install flwr==1.42.0)")
    return found


def offline_env(flwr_home: Path | None = None) -> dict[str, str]:
    """The environment of every process: this ``aoichain`` first on the import path,
    flwr's programs on ``PATH``, Flower offline and at home in the run folder."""
    src = str(Path(aoichain.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        FLWR_SUPEREXEC_TASK_POLL_INTERVAL=SUPEREXEC_POLL_S,
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    return env


def app_pyproject(settings: ServerSettings) -> str:
    """The Flower app's ``pyproject.toml``: components in the installed aoichain package,
    the run config's keys with this run's values."""
    lines = [
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        'name = "aoichain-federation"',
        f'version = "{aoichain.__version__}"',
        'description = "aoichain\'s federated task; its code is the installed aoichain package"',
        'license = "MIT"',
        "dependencies = []",
        "",
        "[tool.flwr.app]",
        'publisher = "aoichain"',
        "",
        "[tool.flwr.app.components]",
        'serverapp = "aoichain.flower.serverapp:app"',
        'clientapp = "aoichain.flower.clientapp:app"',
        "",
        "[tool.flwr.app.config]",
    ]
    for key, value in settings.run_config().items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def write_app(folder: Path, settings: ServerSettings) -> Path:
    """Write the Flower app (one ``pyproject.toml``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(app_pyproject(settings))
    return folder


def write_app_files(
    out: Path,
    config: RunConfig,
    *,
    run_dir: Path,
    deployments: Path,
    publisher_key: Path,
    relayer_key: Path,
    verifiers: Path,
    password_file: Path | None = None,
    wait_s: float = 300.0,
    reply_s: float = 900.0,
    resume: bool = False,
) -> Path:
    """Write ``OUT/run.toml`` (the resolved run config) and ``OUT/app`` (the Flower app,
    its run config naming these files by absolute path); the app's folder."""
    out.mkdir(parents=True, exist_ok=True)
    run_toml = out / "run.toml"
    run_toml.write_text(config_to_toml(config))
    settings = ServerSettings(
        run_dir=str(run_dir.resolve()),
        config=str(run_toml.resolve()),
        deployments=str(deployments.resolve()),
        publisher_key=str(publisher_key.resolve()),
        relayer_key=str(relayer_key.resolve()),
        verifiers=str(verifiers.resolve()),
        password_file=str(password_file.resolve()) if password_file else "",
        nodes=2 * config.workers.physical,
        wait_s=wait_s,
        reply_s=reply_s,
        resume=resume,
    )
    return write_app(out / "app", settings)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _healthy(url: str) -> Iterator[bool]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                yield answer.status == 200
        except OSError:
            yield False


def _files(paths: list[Path]) -> Iterator[bool]:
    while True:
        yield all(p.exists() for p in paths)


def run_federation(
    config: RunConfig,
    out_dir: str | Path,
    *,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    worker_faults: Mapping[str, WorkerFaults] | None = None,
    wait_s: float = 300.0,
    reply_s: float = 900.0,
    resume: bool = False,
) -> FederationResult:
    """Run one federated task on a local Flower federation (see the module docstring).

    Parameters
    ----------
    config : RunConfig
        The run; ``[chain]`` is ``anvil`` (or ``auto``: chains started here) or
        ``rpc`` with a ``deployments.json`` of ``aoichain chains up`` (its
        ``keys/`` beside it hold the relayer's and the verifiers' keys).
    out_dir : str or Path
        The run folder (the in-process engine's files, plus ``keys/``,
        ``flower/``, ``logs/`` and ``progress.jsonl``).
    on_round, on_status : callable, optional
        Progress: each round's metrics (a dict), a short line per stage.
    worker_faults : mapping, optional
        Faults injected on purpose, by worker label (``"P0"``): written into
        that worker's node config (the attackers of ``[faults] byzantine`` get
        their attack there too).
    wait_s, reply_s : float
        Longest waits of the ServerApp for the SuperNodes to connect and for
        one step's replies, seconds: a worker whose SuperNode is not connected
        by then, or that has not answered its enrolment, is left out; one that
        has not answered a round's request missed the round (a SuperNode that
        stopped is reported by Flower sooner: within two of its 30 s heartbeats).
    resume : bool
        Continue the task of the journal in ``out_dir`` (a run on chains that
        outlive it, whose SuperLink or ServerApp stopped): new processes, the
        same keys, the rounds the journal does not hold (see
        :func:`aoichain.workflow.resume_run`).

    Raises
    ------
    InvalidInput
        Bad input (an embedded chain, an output folder holding keys), before
        anything starts.
    FederationError
        A process did not start or died, or the ServerApp failed: one line.
    FederationDown
        The SuperLink or the ServerApp stopped mid-run (or a chain did): one
        line; the task waits in the journal (``resume``) if its chains outlive
        the run.
    """
    from aoichain.chain import Network
    from aoichain.chain.keys import keystore_password
    from aoichain.chain.remote import read_deployment

    status = on_status or (lambda _msg: None)
    chain = config.chain.resolved()
    if chain.backend == "embedded":
        raise InvalidInput(
            "The flower engine runs every party in its own process, so its chains must be "
            "nodes: anvil (the default) or a deployments file (--chains FILE)."
        )
    out = Path(out_dir)
    if resume:
        from aoichain.workflow.journal import check_resumable

        check_resumable(out, chain.backend, False)
    for taken in (out / "keys", out / "chains" / "keys"):
        if not resume and taken.exists() and any(taken.iterdir()):
            raise InvalidInput(
                f"{taken} holds the keys of an earlier run: resume it (--resume {out}), "
                f"settle it (aoichain recover {out}), or choose another --out"
            )
    status("solving the contract and reading the streams")
    prepared = prepare(config)
    from aoichain.flower.server import check_injector

    check_injector(prepared.plugins.faults)  # before any process starts
    faults = dict(worker_faults or {})
    n = config.workers.physical
    unknown = sorted(set(faults) - {f"{s}{i}" for s in "PV" for i in range(n)})
    if unknown:
        raise InvalidInput(f"worker_faults names no worker of this run: {', '.join(unknown)}")
    started = time.monotonic()
    seconds: dict[str, float] = {}
    flower = out / "flower"
    logs = out / "logs"
    for stale in (out / "progress.jsonl", out / "summary.json"):
        stale.unlink(missing_ok=True)
    flower.mkdir(parents=True, exist_ok=True)
    password_file = config.chain.password_file
    pw = str(password_file or "")
    # SIGINT too: a process may have been started with it ignored (a shell's background
    # job, a test runner's worker), and Ctrl-C must still stop every process it started.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as stack:
            procs = stack.enter_context(Processes(logs, offline_env()))
            stack.callback(_record, flower / "processes.json", procs)
            # -- chains and the deployment's keys
            if chain.backend == "rpc":
                assert chain.rpc_file is not None
                deployments = Path(chain.rpc_file)
                infra = deployments.parent / "keys"
            else:
                status("starting the anvil chains")
                network = Network.start(
                    chain.model_copy(update={"backend": "anvil"}),
                    workers={},
                    keys_dir=out / "chains" / "keys",
                    log_dir=logs,
                    for_run=False,
                )
                stack.callback(network.stop)
                deployments = network.deployment.write(out / "chains" / "deployments.json")
                infra = out / "chains" / "keys"
            deployment = read_deployment(deployments)
            seconds["chains"] = time.monotonic() - started
            # -- the run's parties' keys, funded
            if resume:
                keys = _kept_keys(out / "keys", n)
            else:
                status("creating the publisher's and the workers' keys")
                keys = _run_keys(out / "keys", n, keystore_password(password_file), deployment)
            # -- verifiers
            labels = _verifier_labels(deployment)
            status(f"starting {len(labels)} verifiers")
            verifiers = _start_verifiers(procs, labels, infra, deployments, flower, pw)
            seconds["verifiers"] = time.monotonic() - started
            # -- SuperLink and SuperNodes
            status(f"starting the SuperLink and {2 * n} SuperNodes")
            link_port = free_port()
            home = flower / "home"
            procs.start(
                "superlink",
                [
                    flower_program("flower-superlink"),
                    "--insecure",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(link_port),
                    "--disable-runtime-dependency-installation",
                ],
                env={"FLWR_HOME": str(home / "superlink")},
                ports=[link_port],
            )
            _start_supernodes(
                procs, prepared, deployment, keys, deployments, faults, flower, link_port, pw
            )
            procs.wait(
                "the SuperLink did not answer",
                _healthy(f"http://127.0.0.1:{link_port}/health"),
                START_TIMEOUT_S,
            )
            seconds["processes"] = time.monotonic() - started
            # -- the app
            app = write_app_files(
                flower,
                config,
                run_dir=out,
                deployments=deployments,
                publisher_key=keys["publisher"],
                relayer_key=infra / "relayer.json",
                verifiers=verifiers,
                password_file=Path(pw) if pw else None,
                wait_s=wait_s,
                reply_s=reply_s,
                resume=resume,
            )
            cli_home = home / "cli"
            cli_home.mkdir(parents=True, exist_ok=True)
            (cli_home / "config.toml").write_text(
                f'[superlink.local]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n'
            )
            status("resuming the task" if resume else "running the task")
            stopped = _stopped_hint(out, chain.backend)
            run_id = _run_app(procs, app, cli_home, out, on_round, stopped)
            seconds["task"] = time.monotonic() - started
            _check_finished(procs, cli_home, run_id, out, stopped)
            pids, ports = procs.pids(), procs.ports()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary_file = out / "summary.json"
    if not summary_file.exists():
        raise FederationError(f"the ServerApp finished but wrote no {summary_file}")
    seconds["total"] = time.monotonic() - started
    return FederationResult(
        out_dir=out,
        summary=RunSummary.model_validate_json(summary_file.read_text()),
        rounds=_events(out / "progress.jsonl", "round"),
        run_id=run_id,
        pids=pids,
        ports=ports,
        seconds=seconds,
    )


# ------------------------------------------------------------------------------ parts


def _run_keys(keys_dir: Path, n: int, password: str, deployment: Any) -> dict[str, Path]:
    """A fresh key for the publisher and each worker, in its own keystore, funded on the
    chains it acts on (on dev chains; elsewhere fund them yourself)."""
    from aoichain.chain.keys import Signer, write_keystore
    from aoichain.chain.network import PUBLISHER_FUND_WEI, WORKER_FUND_WEI, fund
    from aoichain.chain.views import http_view

    paths: dict[str, Path] = {}
    targets: dict[str, dict[str, int]] = {k: {} for k in deployment.chains}
    publisher = Signer.random("publisher")
    paths["publisher"] = write_keystore(keys_dir / "publisher.json", publisher, password)
    targets["M"][publisher.address] = PUBLISHER_FUND_WEI
    for space in ("P", "V"):
        mine = deployment.subchains_of(space)
        for i in range(n):
            signer = Signer.random(f"worker-{space}-{i}")
            label = f"{space}{i}"
            paths[label] = write_keystore(keys_dir / f"{signer.role}.json", signer, password)
            targets["M"][signer.address] = WORKER_FUND_WEI
            targets[mine[i % len(mine)]][signer.address] = WORKER_FUND_WEI
    for key, wanted in targets.items():
        if wanted:
            chain = deployment.chains[key]
            fund(http_view(key, chain.rpc_url, chain.chain_id), wanted, [])
    return paths


def _kept_keys(keys_dir: Path, n: int) -> dict[str, Path]:
    """The keystores :func:`_run_keys` wrote for the run being resumed.

    Raises
    ------
    InvalidInput
        If one is missing.
    """
    paths = {"publisher": keys_dir / "publisher.json"}
    paths.update({f"{s}{i}": keys_dir / f"worker-{s}-{i}.json" for s in "PV" for i in range(n)})
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InvalidInput(f"the run to resume lacks its keys: {', '.join(missing)}")
    return paths


def _stopped_hint(out: Path, backend: str) -> str:
    """What to do when the SuperLink or the ServerApp stopped mid-run (one sentence)."""
    if backend != "rpc":
        return (
            "the run's own chains ended with it, so it cannot be resumed (run on chains "
            "that outlive it, e.g. aoichain chains up, to resume)"
        )
    return (
        f"the task waits in {out}: 'aoichain run --resume {out}' finishes it, "
        f"'aoichain recover {out}' settles it"
    )


def _verifier_labels(deployment: Any) -> list[str]:
    labels = [f"committee-{i}" for i in range(len(deployment.committee))]
    for key, chain in deployment.chains.items():
        labels += [f"validator-{key}-{i}" for i in range(len(chain.validators))]
    return labels


def _start_verifiers(
    procs: Processes,
    labels: list[str],
    infra: Path,
    deployments: Path,
    flower: Path,
    password_file: str,
) -> Path:
    """One ``aoichain verifier`` per label, each with its own key; the verifiers file."""
    from aoichain.chain.remote import write_verifiers

    ready_dir = flower / "ready"
    ready_dir.mkdir(parents=True, exist_ok=True)
    ready = {label: ready_dir / f"{label}.json" for label in labels}
    for label in labels:
        ready[label].unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "aoichain",
            "verifier",
            "--key",
            str(infra / f"{label}.json"),
            "--deployments",
            str(deployments),
            "--ready",
            str(ready[label]),
        ]
        if password_file:
            argv += ["--password-file", password_file]
        procs.start(label, argv)
    procs.wait("not every verifier started", _files(list(ready.values())), START_TIMEOUT_S)
    entries = {}
    for label, path in ready.items():
        shown = json.loads(path.read_text())
        entries[label] = (str(shown["address"]), str(shown["url"]))
        port = int(str(shown["url"]).rsplit(":", 1)[1])
        next(s for s in procs.started if s.label == label).ports = (port,)
    return write_verifiers(flower / "verifiers.json", entries)


def _start_supernodes(
    procs: Processes,
    prepared: Any,
    deployment: Any,
    keys: dict[str, Path],
    deployments: Path,
    faults: Mapping[str, WorkerFaults],
    flower: Path,
    link_port: int,
    password_file: str,
) -> None:
    """A SuperNode per worker, each with its own node config (key, nodes, data...)."""
    from aoichain.flower.settings import worker_settings, write_node_config

    n = prepared.config.workers.physical
    for space in ("P", "V"):
        for node in range(n):
            label = f"{space}{node}"
            settings = worker_settings(
                prepared,
                deployment,
                space,
                node,
                key=keys[label].resolve(),
                deployments=deployments.resolve(),
                password_file=Path(password_file).resolve() if password_file else None,
                faults=faults.get(label),
                cache=(flower / "cache" / label).resolve(),
            )
            node_config = write_node_config(flower / "nodes" / f"worker-{label}.toml", settings)
            port = free_port()
            procs.start(
                f"supernode-{label}",
                [
                    flower_program("flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{link_port}",
                    "--port",
                    str(port),
                    "--node-config",
                    str(node_config.resolve()),
                ],
                env={"FLWR_HOME": str(flower / "home" / f"supernode-{label}")},
                ports=[port],
            )


def _events(progress: Path, kind: str) -> list[dict[str, Any]]:
    if not progress.exists():
        return []
    lines = [json.loads(x) for x in progress.read_text().splitlines() if x.strip()]
    return [e for e in lines if e.get("event") == kind]


def _run_app(
    procs: Processes,
    app: Path,
    cli_home: Path,
    out: Path,
    on_round: Callable[[dict[str, Any]], None] | None,
    stopped: str,
) -> int:
    """``flwr run`` the app and follow it until it ends; the run id.

    Raises
    ------
    FederationDown
        If the SuperLink dies meanwhile (``stopped`` says what then).
    """
    log = procs.log_dir / "flwr-run.log"
    known = log.stat().st_size if log.exists() else 0  # a resumed run's log goes on
    runner = procs.start(
        "flwr-run",
        [flower_program("flwr"), "run", str(app), "local", "--stream"],
        env={"FLWR_HOME": str(cli_home)},
    )
    shown = 0
    progress = out / "progress.jsonl"
    while True:
        running = runner.popen.poll() is None
        if running:
            link = next(s for s in procs.started if s.label == "superlink")
            if link.popen.poll() is not None:
                done = len(_events(progress, "round"))
                raise FederationDown(
                    f"the SuperLink (pid {link.pid}) {_ended(link.popen.returncode)} after "
                    f"{done} round{'' if done == 1 else 's'} of this run; {stopped}"
                )
        events = _events(progress, "round")
        for event in events[shown:]:
            if on_round is not None:
                on_round(event)
        shown = len(events)
        if not running:
            break
        time.sleep(0.2)
    with log.open("rb") as fh:
        fh.seek(known)
        mine = fh.read().decode(errors="replace")
    match = re.search(r"Successfully started run (\d+)", mine)
    if match is None:
        raise FederationError(f"flwr run did not start the app: {runner.tail(600)}")
    return int(match.group(1))


def _ended(status: int) -> str:
    """How a process ended, from its exit status."""
    if status < 0:
        try:
            return f"was killed ({signal.Signals(-status).name})"
        except ValueError:
            return f"was killed (signal {-status})"
    return f"exited with status {status}"


def _check_finished(procs: Processes, cli_home: Path, run_id: int, out: Path, stopped: str) -> None:
    """Raise the ServerApp's own reason if its run failed (``flwr run --stream`` exits 0
    either way).

    Raises
    ------
    FederationDown
        If the ServerApp failed because a chain or the SuperLink stopped answering
        (its note in ``progress.jsonl`` says so), or died without a word (killed).
    FederationError
        If the ServerApp failed for any other reason (the task was then settled).
    """
    env = {**procs.env, "FLWR_HOME": str(cli_home)}
    answer = subprocess.run(
        [flower_program("flwr"), "list", "local", "--run-id", str(run_id), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    try:
        runs = json.loads(answer.stdout)["runs"]
        run = next(r for r in runs if str(r["run-id"]) == str(run_id))
    except (ValueError, KeyError, StopIteration):
        raise FederationError(
            f"flwr list could not report run {run_id}: {answer.stdout[-400:]}{answer.stderr[-400:]}"
        ) from None
    state = str(run.get("status", ""))
    if state != "finished:completed":
        details = " ".join(str(run.get("status-details", "")).split())
        details = details.removeprefix("ServerApp failed with exception: ")
        failed = _events(out / "progress.jsonl", "failed")
        if not failed:
            raise FederationDown(
                f"the ServerApp stopped without a word ({state}: {details or 'no details'}); "
                f"{stopped}"
            )
        if failed[-1].get("resumable"):
            raise FederationDown(f"the ServerApp's run ended {state}: {details}; {stopped}")
        raise FederationError(f"the ServerApp's run ended {state}: {details}")


def _record(path: Path, procs: Processes) -> None:
    """``processes.json``: what ran, with its pid and ports (to check none outlives it)."""
    path.write_text(
        json.dumps(
            {
                s.label: {"pid": s.pid, "ports": list(s.ports), "argv": list(s.argv)}
                for s in procs.started
            },
            indent=1,
        )
        + "\n"
    )


def still_running(record: Path) -> dict[str, list[int]]:
    """What of a finished federation still runs: pids and listening ports by label
    (from its ``processes.json``; empty when everything stopped)."""
    from aoichain.flower.processes import alive

    left: dict[str, list[int]] = {}
    for label, entry in json.loads(record.read_text()).items():
        found = [p for p in [int(entry["pid"])] if alive(p)]
        found += [p for p in entry["ports"] if listening(int(p))]
        if found:
            left[label] = found
    return left

"""Finish a run that stopped: resume it from its journal, or settle its escrow.

A run on chains that outlive it (``rpc``, e.g. nodes from ``aoichain chains
up``) leaves in its folder a journal, its config and its parties' keystores.
:func:`resume_run` plays the rounds that are missing and pays;
:func:`recover_run` gives up on the training and settles: it closes the open
round, finishes the task, lets each worker claim what it earned and reclaims
the rest of the escrow, so no money stays locked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aoichain.chain import Network
from aoichain.errors import InvalidInput
from aoichain.fl import ModelStore
from aoichain.workflow.config import RunConfig, load_run_config
from aoichain.workflow.journal import Journal, check_resumable
from aoichain.workflow.run import RunResult, prepare, resolve_plugins, run_task
from aoichain.workflow.steps import RoundMetrics
from aoichain.workflow.task import FederatedTask


def resume_run(
    out_dir: str | Path,
    on_round: Callable[[RoundMetrics], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> RunResult:
    """Continue the run in ``out_dir`` from its journal and finish it (rounds, then pay).

    Finished rounds are not played again; a step that was in flight when the
    run stopped is played again only where the chains do not hold its effect.

    Raises
    ------
    InvalidInput
        If the folder holds no journal, its chains died with the run, or
        ``aoichain recover`` already settled its task.
    """
    config = resumable_config(out_dir)
    return run_task(config, out_dir, on_round=on_round, on_status=on_status, resume=True)


def resumable_config(out_dir: str | Path) -> RunConfig:
    """The config of the run in ``out_dir``, if that run can be resumed.

    Raises
    ------
    InvalidInput
        If the folder holds no journal, its chains died with the run, or
        ``aoichain recover`` already settled its task.
    """
    out = Path(out_dir)
    check_resumable(out, "rpc", True)
    config = load_run_config(out / "config.toml")
    check_resumable(out, config.chain.backend, False)
    if any(e["event"] == "recovered" for e in Journal(out).events()):
        raise InvalidInput(
            f"the task of {out} was settled by 'aoichain recover'; nothing to resume"
        )
    return config


def recover_run(out_dir: str | Path, on_status: Callable[[str], None] | None = None) -> list[str]:
    """Settle every task the run's publisher posted: close, finish, claims, reclaim.

    Returns one line per task saying what was done. Safe to repeat: a settled
    task is left as it is.

    Raises
    ------
    InvalidInput
        If the folder holds no journal or its chains died with the run.
    ChainUnavailable
        If a chain's node does not answer.
    """
    status = on_status or (lambda _msg: None)
    out = Path(out_dir)
    check_resumable(out, "rpc", True)
    config = load_run_config(out / "config.toml")
    check_resumable(out, config.chain.backend, False)
    status("reading the run")
    prepared = prepare(config, resolve_plugins(config))
    n = config.workers.physical
    status("reaching the chains")
    chain = config.chain.resolved()
    with Network.start(
        chain, workers={"P": n, "V": n}, keys_dir=out / "keys", run_keys=True
    ) as network:
        task = FederatedTask(prepared, network, ModelStore(out / "store"))
        done = []
        for task_id in network.publisher.my_tasks():
            status(f"settling task {task_id}")
            # The publisher signs the same tickets again: the journal need not have survived.
            tickets = task.admit(task_id)
            done.append(f"task {task_id}: {task.settle(task_id, tickets)}")
    Journal(out).append("recovered", tasks=done)
    return done

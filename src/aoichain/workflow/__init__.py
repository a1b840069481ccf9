"""The orchestrator: one FL task from publish to payment, and its slot clock.

>>> from aoichain.workflow import load_run_config, run_task
>>> result = run_task(load_run_config(overrides={"task": {"rounds": 3}}), "runs/demo")
>>> result.summary.final_accuracy  # doctest: +SKIP
"""

from aoichain.workflow.compare import SeedComparison, compare_schemes, compare_seeds
from aoichain.workflow.config import RunConfig, config_to_toml, load_run_config
from aoichain.workflow.faults import ConfiguredFaults, FaultInjector
from aoichain.workflow.requests import answer_request
from aoichain.workflow.resume import recover_run, resumable_config, resume_run
from aoichain.workflow.run import RunResult, prepare, resolve_plugins, run_task
from aoichain.workflow.schemes import BUILTIN_SCHEMES, Scheme
from aoichain.workflow.sources import DataSource, StreamRequest
from aoichain.workflow.steps import (
    Aggregated,
    Enrolled,
    Evaluation,
    GlobalModel,
    Parties,
    Prepared,
    Rejection,
    Relayed,
    Request,
    RoundMetrics,
    Submission,
    TaskOutcome,
    Trained,
    Uploaded,
)
from aoichain.workflow.summary import RunSummary
from aoichain.workflow.task import FederatedTask, RunAborted, RunInterrupted
from aoichain.workflow.workers import Worker

__all__ = [
    "BUILTIN_SCHEMES",
    "Aggregated",
    "ConfiguredFaults",
    "DataSource",
    "Enrolled",
    "Evaluation",
    "FaultInjector",
    "FederatedTask",
    "GlobalModel",
    "Parties",
    "Prepared",
    "Rejection",
    "Relayed",
    "Request",
    "RoundMetrics",
    "RunAborted",
    "RunConfig",
    "RunInterrupted",
    "RunResult",
    "RunSummary",
    "Scheme",
    "SeedComparison",
    "StreamRequest",
    "Submission",
    "TaskOutcome",
    "Trained",
    "Uploaded",
    "Worker",
    "answer_request",
    "compare_schemes",
    "compare_seeds",
    "config_to_toml",
    "load_run_config",
    "prepare",
    "recover_run",
    "resolve_plugins",
    "resumable_config",
    "resume_run",
    "run_task",
]

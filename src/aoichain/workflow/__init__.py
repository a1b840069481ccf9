"""The orchestrator: one FL task from publish to payment, and its slot clock.

>>> from aoichain.workflow import load_run_config, run_task
>>> result = run_task(load_run_config(overrides={"task": {"rounds": 3}}), "runs/demo")
>>> result.summary["final_accuracy"]  # doctest: +SKIP
"""

from aoichain.workflow.compare import compare_schemes
from aoichain.workflow.config import SCHEMES, RunConfig, config_to_toml, load_run_config
from aoichain.workflow.run import RunResult, prepare, run_task
from aoichain.workflow.task import FederatedTask, Prepared, RoundMetrics, TaskOutcome
from aoichain.workflow.workers import Worker

__all__ = [
    "SCHEMES",
    "FederatedTask",
    "Prepared",
    "RoundMetrics",
    "RunConfig",
    "RunResult",
    "TaskOutcome",
    "Worker",
    "compare_schemes",
    "config_to_toml",
    "load_run_config",
    "prepare",
    "run_task",
]

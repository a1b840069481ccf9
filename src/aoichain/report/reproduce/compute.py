"""The whole computation: solve, simulate and judge every claim, writing nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aoichain.report.reproduce.config import ReproduceConfig, StepFn, no_progress
from aoichain.report.reproduce.errata_claims import concavity_claims, errata_claims
from aoichain.report.reproduce.fig2_claims import fig2_claims
from aoichain.report.reproduce.fig3_claims import fig3_claims
from aoichain.report.reproduce.fig4_claims import consistency_claims, fig4_claims
from aoichain.report.reproduce.numbers import (
    ErrataNumbers,
    FormulaRun,
    SimulationCheck,
    errata_numbers,
    simulation_check,
    solve_formula_set,
)
from aoichain.report.reproduce.verdicts import Claim


@dataclass(frozen=True)
class Reproduction:
    """The computed reproduction: runs per formula set, the simulation check, the claims."""

    config: ReproduceConfig
    runs: dict[str, FormulaRun]
    simulation: SimulationCheck
    errata: ErrataNumbers
    claims: tuple[Claim, ...]
    seconds: float


def all_claims(
    config: ReproduceConfig,
    runs: dict[str, FormulaRun],
    sim: SimulationCheck,
    errata: ErrataNumbers,
) -> tuple[Claim, ...]:
    """Every claim of the report, in report order."""
    return tuple(
        fig2_claims(runs)
        + fig3_claims(runs)
        + fig4_claims(runs)
        + consistency_claims(config, runs)
        + concavity_claims(runs)
        + errata_claims(sim, errata)
    )


def compute(
    config: ReproduceConfig | None = None, *, on_step: StepFn | None = None
) -> Reproduction:
    """Solve, simulate and judge every claim; write nothing.

    Parameters
    ----------
    config : ReproduceConfig, optional
        What to reproduce; defaults to the paper's setting under both closed forms.
    on_step : callable, optional
        Called with a short description after each of ``config.n_steps`` steps
        (the ones :func:`write_outputs` reports included), e.g. to advance a
        progress bar.

    Returns
    -------
    Reproduction
    """
    config = config or ReproduceConfig()
    step = on_step or no_progress
    start = time.perf_counter()
    runs: dict[str, FormulaRun] = {
        forms: solve_formula_set(config, forms, step) for forms in config.formula_sets
    }
    t = next(iter(runs.values())).market.t
    sim = simulation_check(config, t, step)
    errata = errata_numbers(config, step)
    claims = all_claims(config, runs, sim, errata)
    return Reproduction(config, runs, sim, errata, claims, time.perf_counter() - start)

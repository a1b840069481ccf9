"""The whole computation: solve, simulate and judge every claim, writing nothing.

Every figure is solved twice: under the config's bound on c, and under the
other one (:attr:`ReproduceConfig.variant_c_max`), whose claims the report
shows beside this run's where they differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aoichain.report.reproduce.config import ReproduceConfig, StepFn, bound_label, no_progress
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
class Variant:
    """The figures and their claims under the other bound on c, reported beside the run.

    Attributes
    ----------
    c_max : float or None
        Its bound: Table I's 15 beside an unbounded run, ``None`` beside a bounded one.
    runs : dict
        ``{formulas: FormulaRun}``, as :attr:`Reproduction.runs`.
    claims : tuple of Claim
        The claims that depend on the runs (Figs. 2-4, consistency, concavity).
    """

    c_max: float | None
    runs: dict[str, FormulaRun]
    claims: tuple[Claim, ...]

    @property
    def label(self) -> str:
        """``c ≤ 15`` or ``no bound on c``."""
        return bound_label(self.c_max)

    def claim(self, claim_id: str) -> Claim | None:
        """The variant's claim ``claim_id`` (``None`` for one that does not depend on c)."""
        return next((c for c in self.claims if c.id == claim_id), None)


@dataclass(frozen=True)
class Reproduction:
    """The computed reproduction: runs per formula set, the simulation check, the claims."""

    config: ReproduceConfig
    runs: dict[str, FormulaRun]
    variant: Variant
    simulation: SimulationCheck
    errata: ErrataNumbers
    claims: tuple[Claim, ...]
    seconds: float

    @property
    def label(self) -> str:
        """This run's bound on c: ``c ≤ 15`` or ``no bound on c``."""
        return bound_label(self.config.c_max)


def run_claims(config: ReproduceConfig, runs: dict[str, FormulaRun]) -> tuple[Claim, ...]:
    """The claims judged from the solved figures, in report order."""
    return tuple(
        fig2_claims(runs)
        + fig3_claims(runs)
        + fig4_claims(runs)
        + consistency_claims(config, runs)
        + concavity_claims(runs)
    )


def all_claims(
    config: ReproduceConfig,
    runs: dict[str, FormulaRun],
    sim: SimulationCheck,
    errata: ErrataNumbers,
) -> tuple[Claim, ...]:
    """Every claim of the report, in report order."""
    return run_claims(config, runs) + tuple(errata_claims(sim, errata))


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
    other = config.model_copy(update={"c_max": config.variant_c_max})
    other_runs: dict[str, FormulaRun] = {
        forms: solve_formula_set(other, forms, step) for forms in other.formula_sets
    }
    variant = Variant(other.c_max, other_runs, run_claims(other, other_runs))
    t = next(iter(runs.values())).market.t
    sim = simulation_check(config, t, step)
    errata = errata_numbers(config, step)
    claims = all_claims(config, runs, sim, errata)
    return Reproduction(config, runs, variant, sim, errata, claims, time.perf_counter() - start)

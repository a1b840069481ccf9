"""What to reproduce: the validated configuration, the paper's constants, the market of a run.

:class:`ReproduceConfig` defaults to the paper's Sec. V setting; every market
a reproduction solves is built by :func:`paper_market` from
``Market.paper_default`` plus the config's ``a``, ``alpha`` and bound on ``c``.

The continuous figures are solved without a bound on the collection phase by
default (``c_max = None``): Table I's range ``c in [1, 15]`` would otherwise
decide some claims by itself (under the corrected forms every type's
unbounded optimum lies above 15 slots at the default market). Each run is
also solved under the other bound (:attr:`ReproduceConfig.variant_c_max`:
Table I's 15 beside an unbounded run, no bound beside a bounded one) and
reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aoichain.incentive import Formulas, Market, Scheme

FloatArray = NDArray[np.float64]
FormulaSet = Formulas
SCHEMES: tuple[Scheme, ...] = ("CA", "CC", "CS")
FORMULA_SETS: tuple[FormulaSet, ...] = ("paper", "corrected")
#: Table I's largest number of slots for c and for a.
TABLE_I_MAX_SLOTS = 15
PAPER_REF = (
    "Kang et al., Blockchain-based Federated Learning for Industrial Metaverses: "
    "Incentive Scheme with Optimal AoI (2022)"
)

# Axis ranges printed in the paper's figures (the only numbers the text-extracted
# paper gives for them): (low, high) of the plotted quantity.
PAPER_AXES: dict[str, tuple[float, float]] = {
    "fig2": (-60.0, 60.0),
    "fig3a": (860.0, 940.0),
    "fig3b": (0.0, 600.0),
    "fig4a": (0.0, 0.02),
    "fig4b": (0.0, 8.0),
    "fig4c": (0.0, 10.0),
    "fig4d": (0.0, 6.0),
}

FIGURES: tuple[str, ...] = ("2", "3a", "3b", "4a", "4b", "4c", "4d", "sim")

StepFn = Callable[[str], None]


class ReproduceConfig(BaseModel):
    """What to reproduce (validated once; the defaults are the paper's Sec. V setting).

    The market itself is ``Market.paper_default`` with ``a`` and ``alpha`` set
    below; see :data:`SETTING_NOTES` for why each unstated default was chosen.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    formulas: Literal["paper", "corrected", "both"] = "both"
    a: int = Field(5, ge=1, le=15, description="idle slots for Figs. 2 and 4")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="AoI preference for Figs. 2 and 3")
    a_values: tuple[int, ...] = Field(tuple(range(2, 13)), min_length=3)
    alphas: tuple[float, ...] = Field((0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), min_length=3)
    fig2_types: tuple[int, ...] = Field((1, 4, 7, 10), min_length=1)
    sim_a_values: tuple[int, ...] = Field((2, 5, 12), min_length=1)
    sim_c_max: int = Field(15, ge=1, le=100)
    sim_slots: int = Field(100_003, ge=1_000, le=10_000_000)
    method: Literal["exact", "algorithm1"] = "exact"
    c_max: float | None = Field(
        None,
        ge=1.0,
        le=1000.0,
        description="longest collection phase (slots); None: no bound (Table I says 15)",
    )

    @field_validator("a_values", "sim_a_values")
    @classmethod
    def _slots_in_range(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 or v > 15 for v in values):
            raise ValueError("every value must be a whole number of slots in [1, 15]")
        return values

    @field_validator("alphas")
    @classmethod
    def _alphas_in_range(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= v <= 1.0 for v in values) or list(values) != sorted(set(values)):
            raise ValueError("must be distinct increasing floats in [0, 1]")
        return values

    @property
    def formula_sets(self) -> tuple[FormulaSet, ...]:
        """The closed forms to run under, in report order."""
        if self.formulas == "both":
            return ("paper", "corrected")
        return (self.formulas,)

    @property
    def variant_c_max(self) -> float | None:
        """The bound of the run reported beside this one: Table I's 15 if this one has none."""
        return float(TABLE_I_MAX_SLOTS) if self.c_max is None else None

    @property
    def sim_a_shown(self) -> int:
        """The ``a`` whose simulation the report draws and tabulates: ``a`` if simulated."""
        return self.a if self.a in self.sim_a_values else self.sim_a_values[0]

    @property
    def n_steps(self) -> int:
        """Progress steps :func:`reproduce` reports (for a progress bar's total)."""
        per_set = 1 + len(self.a_values) + len(self.alphas)
        runs = 2 * len(self.formula_sets) * per_set  # this bound and the variant's
        return runs + len(self.sim_a_values) + 1 + len(FIGURES) + 1


def bound_label(c_max: float | None) -> str:
    """How a bound on ``c`` is named in the report: ``c ≤ 15`` or ``no bound on c``."""
    return "no bound on c" if c_max is None else f"c ≤ {c_max:g}"


def no_progress(_: str) -> None:
    """A progress callback that reports nothing."""
    return None


def paper_market(config: ReproduceConfig, formulas: FormulaSet, **overrides: Any) -> Market:
    """The paper's market with the config's ``a``, ``alpha`` and ``c_max``, then ``overrides``.

    Built afresh (and so validated) for every point of a sweep.
    """
    values: dict[str, Any] = {
        "formulas": formulas,
        "a": config.a,
        "alpha": config.alpha,
        "c_max": config.c_max,
    }
    return Market.paper_default(**(values | overrides))

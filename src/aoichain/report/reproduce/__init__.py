"""Reproduce Section V of the paper, and check it (and the errata of ``docs/formulas.md``).

:func:`reproduce` solves the paper's numerical setting with the incentive
engine, under the printed closed forms (``paper``), the ones the slot rules
really give (``corrected``), or both; plays the slot rules with the
simulator; draws Figs. 2-4 and a closed-form check; and judges every claim of
Section V and every erratum of the SPEC from the numbers of this run. Nothing
here is written in advance: each verdict is chosen by code, and the tests
check that the report says what the numbers say.

The computation (:func:`compute`) is separate from the writing
(:func:`write_outputs`): a failure while computing leaves nothing on disk, and
each file is written to a temporary name and renamed into place.

One module per job, each importing only those above it:

``config``
    :class:`ReproduceConfig`, the paper's constants, the market of a run.
``numbers``
    The numbers behind the claims: contracts per closed form
    (:class:`FormulaRun`), the slot simulation (:class:`SimulationCheck`)
    and Algorithm 1 and the domain (:class:`ErrataNumbers`).
``verdicts``
    :class:`~aoichain.report.reproduce.verdicts.Claim` and ``Verdict``, and
    how series are compared.
``fig2_claims``, ``fig3_claims``, ``fig4_claims``, ``errata_claims``
    The claims of each figure (Fig. 4's with the figures' consistency), and
    the SPEC's errata with the paper's concavity remark.
``magnitudes``
    The paper's axis ranges against a run's values (which forms fit).
``compute``
    :func:`compute`: the numbers and every claim, as a :class:`Reproduction`,
    with the same under the other bound on c (:class:`Variant`).
``figures``, ``document``
    PNG and CSV per figure; the report as a document.
``writing``
    :func:`write_outputs`, :func:`reproduce` and :func:`claims_json`.
"""

from aoichain.report.reproduce.compute import Reproduction, Variant, compute
from aoichain.report.reproduce.config import (
    FIGURES,
    FORMULA_SETS,
    PAPER_AXES,
    PAPER_REF,
    SCHEMES,
    TABLE_I_MAX_SLOTS,
    FloatArray,
    FormulaSet,
    ReproduceConfig,
    StepFn,
)
from aoichain.report.reproduce.document import SETTING_NOTES, build_document
from aoichain.report.reproduce.fig3_claims import fig3_claims
from aoichain.report.reproduce.numbers import ErrataNumbers, FormulaRun, SimulationCheck
from aoichain.report.reproduce.verdicts import Claim, Verdict
from aoichain.report.reproduce.writing import ReproduceResult, claims_json, reproduce, write_outputs

# The name Fig. 3's claims had before this module became a package (tests use it).
_fig3_claims = fig3_claims

__all__ = [
    "FIGURES",
    "FORMULA_SETS",
    "PAPER_AXES",
    "PAPER_REF",
    "SCHEMES",
    "SETTING_NOTES",
    "TABLE_I_MAX_SLOTS",
    "Claim",
    "ErrataNumbers",
    "FloatArray",
    "FormulaRun",
    "FormulaSet",
    "ReproduceConfig",
    "ReproduceResult",
    "Reproduction",
    "SimulationCheck",
    "StepFn",
    "Variant",
    "Verdict",
    "build_document",
    "claims_json",
    "compute",
    "fig3_claims",
    "reproduce",
    "write_outputs",
]

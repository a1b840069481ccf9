"""Claims and verdicts: a statement, and what this run's numbers say about it.

A :class:`Claim` quotes a statement (from the paper, or an erratum of the
SPEC) and carries one :class:`Verdict` per formula set it was checked under.
Verdicts are produced by code from measured numbers, never written in
advance; the helpers here compare series with a stated tolerance so that
"equal" is reported as equal rather than as a win by rounding noise.

A verdict is ``holds``, ``partly`` or ``fails``, or ``not decidable`` when
the cases that go against the claim are all decided by a bound on the
collection phase ``c`` (e.g. two schemes tie because every type sits at
``c_max`` in both): the bound, not the model, made the outcome, so the run
cannot tell whether the claim holds (:func:`judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aoichain.jsonio import jsonable

__all__ = [
    "NOT_DECIDABLE",
    "VERDICT_KINDS",
    "Claim",
    "Verdict",
    "VerdictKind",
    "compare",
    "fmt",
    "ids_text",
    "judge",
    "kind_by_count",
    "monotone",
    "seq_text",
    "unimodal_peak",
]

VerdictKind = Literal["holds", "partly", "fails", "not decidable"]
NOT_DECIDABLE: VerdictKind = "not decidable"
#: Every verdict kind, in report order.
VERDICT_KINDS: tuple[VerdictKind, ...] = ("holds", "partly", "fails", NOT_DECIDABLE)

# Two utilities closer than this (relative to their size) are reported as equal.
REL_TOL = 1e-6


@dataclass(frozen=True)
class Verdict:
    """What one run says about a claim.

    Attributes
    ----------
    kind : {"holds", "partly", "fails", "not decidable"}
        The verdict, chosen by code from ``numbers``.
    evidence : str
        One or two sentences with the numbers behind the verdict.
    numbers : dict
        The measured values (JSON-serialisable) the verdict was computed from.
    formulas : str or None
        ``"paper"`` or ``"corrected"`` if the check depends on the closed forms.
    """

    kind: VerdictKind
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)
    formulas: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "formulas": self.formulas,
            "verdict": self.kind,
            "evidence": self.evidence,
            "numbers": jsonable(self.numbers),
        }


@dataclass(frozen=True)
class Claim:
    """A statement and its verdicts.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"fig3.cc-best-for-sp"``.
    source : str
        Where it comes from, e.g. ``"Sec. V, Fig. 3"`` or ``"SPEC erratum 2"``.
    statement : str
        The claim in the paper's words (or the erratum's).
    verdicts : tuple of Verdict
        One per formula set checked (or one, if formula-independent).
    """

    id: str
    source: str
    statement: str
    verdicts: tuple[Verdict, ...]

    @property
    def kind(self) -> VerdictKind:
        """Overall verdict over the formula sets.

        The common verdict if all agree. Otherwise the ``not decidable`` ones
        are set aside: if the rest all hold, the claim is ``not decidable``
        overall (it is not known to hold everywhere); if the rest all fail, it
        ``fails``; any other mix is ``partly``.
        """
        kinds = {v.kind for v in self.verdicts}
        if len(kinds) == 1:
            return next(iter(kinds))
        decided = kinds - {NOT_DECIDABLE}
        if decided == {"holds"}:
            return NOT_DECIDABLE
        if decided == {"fails"}:
            return "fails"
        return "partly"

    def verdict_for(self, formulas: str | None) -> Verdict:
        """The verdict under ``formulas`` (or the formula-independent one)."""
        for verdict in self.verdicts:
            if verdict.formulas == formulas or verdict.formulas is None:
                return verdict
        raise KeyError(formulas)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "source": self.source,
            "statement": self.statement,
            "verdict": self.kind,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def fmt(value: float, digits: int = 4) -> str:
    """A number for prose: ``digits`` significant digits, no exponent for usual sizes."""
    value = float(value)
    if value == 0 or not np.isfinite(value):
        return str(value)
    if 10**digits <= abs(value) < 1e9:
        return f"{value:,.0f}"
    if 1e-3 <= abs(value) < 10**digits:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def kind_by_count(n_ok: int, total: int) -> VerdictKind:
    """``holds`` when all ``total`` cases agree with a claim, ``fails`` when none does."""
    if n_ok == total:
        return "holds"
    return "fails" if n_ok == 0 else "partly"


def judge(n_ok: int, n_bound: int, total: int) -> VerdictKind:
    """Verdict over ``total`` cases when some may be decided by a bound on ``c``.

    ``n_ok`` cases agree with the claim and ``n_bound`` go against it only
    because a bound of ``c`` binds there (e.g. a tie with every type at
    ``c_max``); the others go against it. A bound-decided case never counts
    as a failure: with no other case against the claim the verdict is
    ``holds`` (no bound-decided case) or ``not decidable``; otherwise it is
    :func:`kind_by_count` over the decided cases.
    """
    n_fail = total - n_ok - n_bound
    if n_fail == 0:
        return "holds" if n_bound == 0 else NOT_DECIDABLE
    return kind_by_count(n_ok, n_ok + n_fail)


def compare(x: ArrayLike, y: ArrayLike, rel_tol: float = REL_TOL) -> np.ndarray:
    """Elementwise sign of ``x - y`` (+1, 0 or -1), with ties within ``rel_tol``."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    scale = np.maximum(np.maximum(np.abs(xa), np.abs(ya)), 1.0)
    diff = xa - ya
    return np.where(np.abs(diff) <= rel_tol * scale, 0, np.sign(diff)).astype(int)


def monotone(y: ArrayLike, rel_tol: float = REL_TOL) -> str:
    """Shape of a series: ``"increasing"``, ``"decreasing"``, ``"non-decreasing"``,
    ``"non-increasing"``, ``"constant"`` or ``"mixed"`` (steps within ``rel_tol`` are flat)."""
    ya = np.asarray(y, dtype=float)
    steps = compare(ya[1:], ya[:-1], rel_tol)
    if steps.size == 0 or np.all(steps == 0):
        return "constant"
    if np.all(steps > 0):
        return "increasing"
    if np.all(steps < 0):
        return "decreasing"
    if np.all(steps >= 0):
        return "non-decreasing"
    if np.all(steps <= 0):
        return "non-increasing"
    return "mixed"


def unimodal_peak(y: ArrayLike, rel_tol: float = REL_TOL) -> tuple[int, bool]:
    """Index of the maximum, and whether the series rises strictly to it and falls after.

    An interior peak with strict rise and fall is what "first increases then
    decreases" means; a peak at either end means it does not.
    """
    ya = np.asarray(y, dtype=float)
    k = int(np.argmax(ya))
    rise = compare(ya[1 : k + 1], ya[:k], rel_tol)
    fall = compare(ya[k + 1 :], ya[k:-1], rel_tol)
    interior = 0 < k < ya.size - 1
    return k, bool(interior and np.all(rise > 0) and np.all(fall < 0))


def seq_text(values: ArrayLike, digits: int = 4) -> str:
    """A short series for prose: all values up to 6, else first 3 … last 2."""
    vals = [fmt(v, digits) for v in np.asarray(values, dtype=float).ravel()]
    if len(vals) <= 6:
        return ", ".join(vals)
    return ", ".join(vals[:3]) + ", …, " + ", ".join(vals[-2:])


def ids_text(values: Sequence[float] | NDArray[np.float64]) -> str:
    """Numbers listed for prose, shortest form: ``2, 5, 0.3``."""
    return ", ".join(f"{float(v):g}" for v in values)

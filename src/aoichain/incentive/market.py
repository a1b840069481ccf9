"""The market the service provider contracts in: the validated boundary of the engine.

A :class:`Market` holds everything Sections III-IV of the paper need: the
slot length ``t``, the idle phase ``a``, the satisfaction parameters
``beta, K, H``, the number of workers ``M``, the worker types ``gamma_n``
(ascending; ``gamma = 1/delta``, the inverse unit update cost) with their
probabilities ``Q_n``, the AoI preference ``alpha`` (one value or one per
type), the closed forms to use and the allowed collection phase
``c_min <= c <= c_max``. It validates itself when built and never changes;
the solvers read plain numpy arrays from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from aoichain.config import describe_validation_error
from aoichain.incentive._model import F_MIN, Domain, Performance, positive_domain
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.satisfaction import satisfaction_of_performance

__all__ = [
    "DEFAULT_C_MAX_INTEGER",
    "F_MIN",
    "Market",
    "equal_types",
    "performance_at",
    "satisfaction",
    "satisfaction_by_type",
    "virtual_costs",
]

FloatArray = NDArray[np.float64]
_T = TypeVar("_T")


class _Cache:
    """Derived arrays of a market; never part of its equality or its dump."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Cache)

    __hash__ = None  # type: ignore[assignment]


#: Largest collection phase (slots) of the integer method when ``c_max`` is not set (Table I).
DEFAULT_C_MAX_INTEGER = 15

_PROB_TOL = 1e-9


def equal_types(
    n: int, low: float = 0.001, high: float = 0.01
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``n`` types equally spaced on ``[low, high]`` with equal probabilities (Sec. V).

    Returns
    -------
    (gammas, probs)
        Two tuples of length ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidMarket(f"The number of types must be an integer >= 1. Got {n!r} instead.")
    gammas = np.linspace(low, high, int(n)) if n > 1 else np.array([low])
    return tuple(gammas.tolist()), (1.0 / n,) * int(n)


def _finite(value: float, rule: str) -> float:
    if not math.isfinite(value):
        raise PydanticCustomError("aoichain", f"must be {rule}")
    return value


def _float_tuple(value: Any, what: str) -> tuple[float, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | np.ndarray):
        raise PydanticCustomError("aoichain", f"must be a non-empty sequence of {what}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PydanticCustomError("aoichain", f"must be a non-empty sequence of {what}") from None
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise PydanticCustomError("aoichain", f"must be a non-empty sequence of {what}")
    return tuple(arr.tolist())


class Market(BaseModel):
    """A contract market (Sec. III-IV), validated when built.

    Parameters
    ----------
    t : float
        Slot length in seconds: one global FL iteration plus consensus (``t > 0``).
    a : float
        Slots of the serving (idle) phase of every update cycle (``a >= 1``).
    beta : float
        Unit profit of satisfaction, ``G = beta ln g`` (eq. 11; ``beta > 0``).
    K, H : float
        Largest tolerated AoI and latency, seconds (eq. 12; ``> 0``).
    workers : int
        Number of workers ``M`` (``>= 1``).
    gammas : tuple of float
        Worker types ``gamma_n = 1/delta_n``, strictly ascending and positive
        (type ``N`` has the lowest unit update cost).
    probs : tuple of float
        Type probabilities ``Q_n``: non-negative, summing to 1 within 1e-9
        (default: equal probabilities for the given types).
    alpha : float or tuple of float
        AoI preference ``alpha_n`` in ``[0, 1]``, one value or one per type.
    formulas : {"paper", "corrected"}
        Closed forms of AoI and latency (see :mod:`aoichain.incentive.freshness`).
    c_min : float
        Shortest collection phase in slots (``> 0``, default 1).
    c_max : float or None
        Longest collection phase in slots (``>= c_min``). ``None``: unbounded
        for the continuous methods, except that ``f >= F_MIN = 1e-5`` Hz
        (Algorithm 1's ``f_min``, a cycle of at most 1e5 s), and 15 for the
        integer method (Table I).

    Raises
    ------
    InvalidMarket
        Naming every bad field and its rule; also when some type has ``g <= 0``
        for every allowed cycle, or no non-decreasing ``f`` keeps ``g_n > 0``
        for every type with ``Q_n > 0``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)

    t: float = 2.0
    a: float = 5.0
    beta: float = 20.0
    K: float = 200.0
    H: float = 50.0
    workers: int = 20
    gammas: tuple[float, ...] = Field(default_factory=lambda: equal_types(10)[0])
    probs: tuple[float, ...] = Field(default_factory=lambda: equal_types(10)[1])
    alpha: float | tuple[float, ...] = 0.5
    formulas: Literal["paper", "corrected"] = "paper"
    c_min: float = 1.0
    c_max: float | None = None
    _cache: _Cache = PrivateAttr(default_factory=_Cache)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise InvalidMarket(describe_validation_error(err, "Market")) from None

    # Tell pydantic this is its own __init__, so that model_validate() does not route
    # through it (and wrap InvalidMarket, a ValueError, into a ValidationError).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def _memo(self, key: str, compute: Callable[[], _T]) -> _T:
        values = self._cache.values
        if key not in values:
            values[key] = compute()
        result: _T = values[key]
        return result

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Market:
        """A copy with ``update`` applied, validated like a new market."""
        return Market(**{**self.model_dump(), **(update or {})})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str | None = None) -> Market:
        """Build a market from a mapping (e.g. a TOML ``[market]`` table).

        ``source`` names where the values came from in error messages.
        """
        try:
            return cls.model_validate(dict(values))
        except ValidationError as err:
            raise InvalidMarket(describe_validation_error(err, "Market", source)) from None

    @classmethod
    def paper_default(cls, *, types: int | None = None, **overrides: Any) -> Market:
        """The default setting of Sec. V (``docs/formulas.md``), with ``overrides`` applied.

        ``t = 2 s, beta = 20, K = 200 s, H = 50 s, M = 20``, ``N = 10`` types
        equally spaced on ``[0.001, 0.01]`` with ``Q_n = 1/10``, ``alpha = 0.5``,
        ``a = 5``, ``paper`` formulas. ``types=N`` asks for ``N`` equally spaced
        types with equal probabilities instead of 10.
        """
        values: dict[str, Any] = {}
        if types is not None:
            values["gammas"], values["probs"] = equal_types(types)
        values.update(overrides)
        return cls(**values)

    # ---- field rules -------------------------------------------------------------------

    @_model_validator(mode="before")
    @classmethod
    def _equal_probs_by_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "gammas" in data and "probs" not in data:
            try:
                n = len(data["gammas"])
            except TypeError:
                return data
            return {**data, "probs": (1.0 / n,) * n} if n else data
        return data

    @field_validator("t", "beta", "K", "H")
    @classmethod
    def _positive(cls, v: float) -> float:
        _finite(v, "a finite number > 0")
        if not v > 0:
            raise PydanticCustomError("aoichain", "must be a finite number > 0")
        return v

    @field_validator("a")
    @classmethod
    def _a_at_least_one(cls, v: float) -> float:
        _finite(v, "a finite number >= 1 (slots of the serving phase)")
        if not v >= 1:
            raise PydanticCustomError(
                "aoichain", "must be a finite number >= 1 (slots of the serving phase)"
            )
        return v

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if v < 1:
            raise PydanticCustomError("aoichain", "must be an integer >= 1")
        return v

    @field_validator("gammas", mode="before")
    @classmethod
    def _gammas(cls, v: Any) -> tuple[float, ...]:
        g = _float_tuple(v, "positive, strictly ascending types")
        arr = np.asarray(g)
        if not np.all(arr > 0):
            raise PydanticCustomError("aoichain", "must all be > 0 (gamma = 1/unit cost)")
        if arr.size > 1 and not np.all(np.diff(arr) > 0):
            raise PydanticCustomError(
                "aoichain", "must be strictly ascending (each type above the one before)"
            )
        return g

    @field_validator("probs", mode="before")
    @classmethod
    def _probs(cls, v: Any, info: Any) -> tuple[float, ...]:
        q = _float_tuple(v, "probabilities")
        arr = np.asarray(q)
        if not np.all(arr >= 0):
            raise PydanticCustomError("aoichain", "must all be >= 0")
        if abs(float(arr.sum()) - 1.0) > _PROB_TOL:
            raise PydanticCustomError(
                "aoichain", f"must sum to 1 within {_PROB_TOL:g} (they sum to {float(arr.sum())!r})"
            )
        gammas = info.data.get("gammas")
        if gammas is not None and len(gammas) != len(q):
            raise PydanticCustomError(
                "aoichain",
                f"must have one probability per type: {len(gammas)} gammas, {len(q)} probs",
            )
        return q

    @field_validator("alpha", mode="before")
    @classmethod
    def _alpha(cls, v: Any, info: Any) -> float | tuple[float, ...]:
        rule = "a float in the range [0, 1], or a sequence of such floats, one per type"
        if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
            values: tuple[float, ...] = (float(v),)
            scalar = True
        else:
            try:
                values = _float_tuple(v, "floats in the range [0, 1]")
            except PydanticCustomError:
                raise PydanticCustomError("aoichain", f"must be {rule}") from None
            scalar = False
        if not all(0.0 <= x <= 1.0 for x in values):
            raise PydanticCustomError("aoichain", f"must be {rule}")
        if scalar:
            return values[0]
        gammas = info.data.get("gammas")
        if gammas is not None and len(gammas) != len(values):
            raise PydanticCustomError(
                "aoichain",
                f"must be one value or one per type: {len(gammas)} gammas, {len(values)} alphas",
            )
        return values

    @field_validator("c_min")
    @classmethod
    def _c_min(cls, v: float) -> float:
        _finite(v, "a finite number > 0 (slots)")
        if not v > 0:
            raise PydanticCustomError("aoichain", "must be a finite number > 0 (slots)")
        return v

    @field_validator("c_max")
    @classmethod
    def _c_max(cls, v: float | None, info: Any) -> float | None:
        if v is None:
            return v
        _finite(v, "a finite number >= c_min (slots), or None")
        c_min = info.data.get("c_min")
        if c_min is not None and not v >= c_min:
            raise PydanticCustomError(
                "aoichain", f"must be >= c_min = {c_min!r} (slots), or None for no bound"
            )
        return v

    @_model_validator(mode="after")
    def _feasible(self) -> Market:
        lo, hi = self.theta_bounds
        if not lo <= hi:
            raise PydanticCustomError(
                "aoichain",
                f"the shortest allowed cycle (c_min + a) t = {lo:g} s is longer than the longest, "
                f"1/f_min = {1 / F_MIN:g} s; set c_max",
            )
        dom = self.domain
        bad = np.flatnonzero(dom.empty[self.distinct_alphas[1]])
        if bad.size:
            if bad.size == self.n_types:
                types = "every type"
            else:
                more = f" and {bad.size - 5} more" if bad.size > 5 else ""
                types = "type(s) " + ", ".join(str(i + 1) for i in bad[:5]) + more
            peak = float(np.max(dom.gmax[self.distinct_alphas[1]][bad]))
            raise PydanticCustomError(
                "aoichain",
                f"every allowed update frequency gives g <= 0 for {types} "
                f"(g = alpha (K - AoI) + (1 - alpha)(H - latency) peaks at {peak:.4g} for "
                f"cycles in [{lo:g}, {hi:g}] s), so no worker of that type can be satisfying; "
                "raise K or H, or lower t or a",
            )
        pos = self.prob_array > 0
        if isinstance(self.alpha, tuple):
            left = dom.left[self.distinct_alphas[1]][pos]
            right = dom.right[self.distinct_alphas[1]][pos]
            if not np.all(np.minimum.accumulate(right) > left):
                raise PydanticCustomError(
                    "aoichain",
                    "no non-decreasing update frequencies keep g_n > 0 for every type with "
                    "Q_n > 0 (the per-type alphas make the feasible cycles of a cheaper type "
                    "all longer than those of a costlier one)",
                )
        return self

    # ---- derived plain values ---------------------------------------------------------

    @property
    def n_types(self) -> int:
        """Number of types ``N``."""
        return len(self.gammas)

    @property
    def gamma_array(self) -> FloatArray:
        """``gamma_n`` as a read-only array."""
        return self._memo("gamma", lambda: _frozen(np.asarray(self.gammas, dtype=np.float64)))

    @property
    def prob_array(self) -> FloatArray:
        """``Q_n`` as a read-only array."""
        return self._memo("prob", lambda: _frozen(np.asarray(self.probs, dtype=np.float64)))

    @property
    def alpha_array(self) -> FloatArray:
        """``alpha_n`` per type as a read-only array."""

        def compute() -> FloatArray:
            if isinstance(self.alpha, tuple):
                return _frozen(np.asarray(self.alpha, dtype=np.float64))
            return _frozen(np.full(self.n_types, float(self.alpha)))

        return self._memo("alpha", compute)

    @property
    def performance(self) -> Performance:
        """The plain parameters of ``g``."""
        return Performance(self.t, self.a, self.beta, self.K, self.H, self.formulas)

    @property
    def theta_bounds(self) -> tuple[float, float]:
        """Allowed cycles ``[(c_min + a) t, (c_max + a) t]``, s (``1/F_MIN`` without c_max)."""
        lo = (self.c_min + self.a) * self.t
        hi = (self.c_max + self.a) * self.t if self.c_max is not None else 1.0 / F_MIN
        return lo, hi

    @property
    def f_bounds(self) -> tuple[float, float]:
        """Allowed update frequencies ``[f_lo, f_hi]`` in Hz."""
        lo, hi = self.theta_bounds
        return 1.0 / hi, 1.0 / lo

    @property
    def distinct_alphas(self) -> tuple[FloatArray, NDArray[np.intp]]:
        """Distinct alpha values and, per type, the index of its value."""

        def compute() -> tuple[FloatArray, NDArray[np.intp]]:
            values, index = np.unique(self.alpha_array, return_inverse=True)
            return values, index.reshape(-1)

        return self._memo("distinct_alphas", compute)

    @property
    def domain(self) -> Domain:
        """Where ``g > 0`` among the allowed cycles, per distinct alpha (``distinct_alphas``)."""
        lo, hi = self.theta_bounds
        return self._memo(
            "domain", lambda: positive_domain(self.performance, self.distinct_alphas[0], lo, hi)
        )


def _frozen(arr: FloatArray) -> FloatArray:
    arr.setflags(write=False)
    return arr


def virtual_costs(market: Market) -> FloatArray:
    """Virtual costs ``b_n`` of Problem 2 (eq. 19).

    ``b_n = Q_n/gamma_n + (1/gamma_n - 1/gamma_{n+1}) sum_{j>n} Q_j`` for
    ``n < N`` and ``b_N = Q_N/gamma_N``, so that with the rewards of eq. (18)
    the SP's utility is ``U_s = sum_n M (Q_n G_n(f_n) - b_n f_n)``.
    """
    g = market.gamma_array
    q = market.prob_array
    inv = 1.0 / g
    tail = np.concatenate([np.cumsum(q[::-1])[::-1][1:], [0.0]])
    gap = np.concatenate([inv[:-1] - inv[1:], [0.0]])
    return np.asarray(q * inv + gap * tail, dtype=np.float64)


def performance_at(market: Market, f: ArrayLike) -> FloatArray:
    """The SP's performance ``g_n(f) = alpha (K - A) + (1 - alpha)(H - D)`` (eq. 12).

    Parameters
    ----------
    market : Market
    f : array_like
        Update frequencies in Hz, broadcastable to ``(N,)`` (one per type) when
        ``alpha`` is given per type, any shape otherwise.

    Returns
    -------
    ndarray
        ``g_n(f)`` in seconds; ``-inf`` where ``f >= 1/(a t)`` (no collection phase).
    """
    fa = np.asarray(f, dtype=np.float64)
    alpha: FloatArray | float = (
        market.alpha_array if isinstance(market.alpha, tuple) else float(market.alpha)
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        theta = np.where(fa > 0, 1.0 / fa, np.inf)
        return market.performance.g(theta, alpha)


def satisfaction(market: Market, f: ArrayLike) -> FloatArray:
    """The SP's satisfaction ``G_n(f) = beta ln g_n(f)`` (eqs. 11-12).

    ``market`` and ``f`` are as in :func:`performance_at`.

    Returns
    -------
    ndarray
        ``G_n(f)``; ``-inf`` where ``g <= 0`` or ``f >= 1/(a t)`` (no collection phase).
    """
    return satisfaction_of_performance(performance_at(market, f), market.beta)


def satisfaction_by_type(market: Market, f: ArrayLike) -> FloatArray:
    """``G_n(f_k)`` for every type ``n`` and every candidate frequency ``f_k``.

    Parameters
    ----------
    market : Market
    f : array_like
        Candidate update frequencies in Hz, one-dimensional.

    Returns
    -------
    ndarray
        Shape ``(N, len(f))``; ``-inf`` where ``g <= 0``.
    """
    fa = np.asarray(f, dtype=np.float64)
    if isinstance(market.alpha, tuple):
        return np.stack([satisfaction(market, np.full(market.n_types, x)) for x in fa], axis=1)
    return satisfaction(market, np.broadcast_to(fa[None, :], (market.n_types, fa.size)))

"""The privacy split between a physical node and its virtual twin.

A node's :class:`PrivacyPolicy` says which of its data are sensitive:
whole columns, time windows, and records matching value rules. Sensitive
data never leave the node: :func:`twin_view` is the only way data reach the
virtual space, and it withholds every sensitive record and zeroes every
sensitive column (setting the column mask, which the model reads as an
input). The virtual space may then add data of its own with
:func:`augment_virtual`, computed from the twin's view alone.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aoichain.fl.errors import InvalidPolicy
from aoichain.fl.streams import BoolArray, SensorStream

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_OPS: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Rule(BaseModel):
    """A record is sensitive when ``record[column] <op> value`` (float32 comparison)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(min_length=1)
    op: Op
    value: float = Field(allow_inf_nan=False)


class PrivacyPolicy(BaseModel):
    """Which of a node's data are sensitive (set per node in the run's config).

    Parameters
    ----------
    sensitive_columns : tuple of str
        Columns never shown to the twin (masked: zeros, mask channel 0).
    sensitive_windows : tuple of (start_s, end_s)
        Stream-time intervals, seconds, closed at both ends; records inside
        are withheld.
    sensitive_rules : tuple of Rule
        A record matching any rule is withheld.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensitive_columns: tuple[str, ...] = ()
    sensitive_windows: tuple[tuple[float, float], ...] = ()
    sensitive_rules: tuple[Rule, ...] = ()

    @field_validator("sensitive_windows")
    @classmethod
    def _ordered(cls, v: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        for start, end in v:
            if not (np.isfinite(start) and np.isfinite(end) and start <= end):
                raise ValueError(
                    f"each window must be finite with start <= end, got {(start, end)}"
                )
        return v

    @classmethod
    def none(cls) -> PrivacyPolicy:
        """A policy under which nothing is sensitive."""
        return cls()

    def check_columns(self, columns: tuple[str, ...]) -> None:
        """Raise :class:`InvalidPolicy` if the policy names a column the stream lacks."""
        named = list(self.sensitive_columns) + [r.column for r in self.sensitive_rules]
        unknown = sorted({c for c in named if c not in columns})
        if unknown:
            raise InvalidPolicy(
                f"The privacy policy names unknown column(s) {unknown}; the stream has "
                f"{list(columns)}."
            )

    def sensitive_records(self, stream: SensorStream) -> BoolArray:
        """Boolean per record: True where the record is withheld from the twin."""
        self.check_columns(stream.columns)
        hidden = np.zeros(len(stream), dtype=bool)
        for start, end in self.sensitive_windows:
            hidden |= (stream.times >= start) & (stream.times <= end)
        for rule in self.sensitive_rules:
            col = stream.values[:, stream.columns.index(rule.column)]
            hidden |= _OPS[rule.op](col, np.float32(rule.value))
        return hidden

    def column_mask(self, stream: SensorStream) -> BoolArray:
        """Boolean per column: True where the twin may see the column."""
        self.check_columns(stream.columns)
        keep = np.array([c not in self.sensitive_columns for c in stream.columns], dtype=bool)
        return keep & stream.mask


def twin_view(stream: SensorStream, policy: PrivacyPolicy) -> SensorStream:
    """What the node's virtual twin receives of ``stream``: the only path to the virtual space.

    Sensitive records are dropped, sensitive columns are zeroed and marked
    False in the returned stream's ``mask``. Times keep the node's clock, so
    :meth:`SensorStream.window` means the same on both sides.

    Raises
    ------
    InvalidPolicy
        If the policy names a column ``stream`` does not have.
    """
    keep = ~policy.sensitive_records(stream)
    mask = policy.column_mask(stream)
    values = stream.values[keep] * mask.astype(np.float32)
    return SensorStream(
        name=stream.name,
        columns=stream.columns,
        times=stream.times[keep],
        values=values,
        labels=stream.labels[keep],
        mask=mask,
        origin=stream.origin,
    )


def augment_virtual(
    twin: SensorStream, seed: int, *, noise: float = 0.1, gain: float = 0.05
) -> SensorStream:
    """Data the virtual space generates: a simulated variation of what the twin received.

    Each visible column ``s`` is rescaled by a random gain ``1 + gain * N(0, 1)``
    about its median and gets Gaussian noise of ``noise`` times its robust
    spread (IQR / 1.349), both estimated from ``twin`` itself; labels and
    times are kept, masked columns stay zero. It reads nothing but ``twin``,
    so it can add nothing sensitive.

    Parameters
    ----------
    twin : SensorStream
        A twin's view (from :func:`twin_view`).
    seed : int
        Seeds the variation.
    noise, gain : float
        Relative sizes of the added noise and the per-column gain change.
    """
    rng = np.random.default_rng(seed)
    n, s = twin.values.shape
    values = twin.values.astype(np.float64)
    if n:
        med = np.median(values, axis=0)
        q25, q75 = np.percentile(values, [25, 75], axis=0)
        spread = np.maximum((q75 - q25) / 1.349, 1e-6 * np.maximum(1.0, np.abs(med)))
        gains = 1.0 + gain * rng.standard_normal(s)
        values = med + (values - med) * gains + noise * spread * rng.standard_normal((n, s))
    values *= twin.mask
    return SensorStream(
        name=f"{twin.name}+virtual",
        columns=twin.columns,
        times=twin.times,
        values=values.astype(np.float32),
        labels=twin.labels,
        mask=twin.mask,
        origin=twin.origin,
    )

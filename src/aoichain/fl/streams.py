"""Time-stamped multi-sensor streams and the CSV reader (SKAB and generic formats).

A :class:`SensorStream` is one node's record of its sensors: ``T`` records of
``S`` sensor values, each with a time and an anomaly label. Times are seconds
*relative to the stream's first record*, so streams recorded on different
days share one clock (the run's clock); the absolute time of record 0 is kept
in :attr:`SensorStream.origin`. Streams are read as time advances:
:meth:`SensorStream.until` and :meth:`SensorStream.window` never return a
record later than the time asked for.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aoichain.fl.errors import InvalidStream

TIME_COLUMNS = ("datetime", "timestamp", "time", "date", "t")
LABEL_COLUMNS = ("anomaly", "label", "is_anomaly", "target")
IGNORED_COLUMNS = ("changepoint",)

Float64Array = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class SensorStream:
    """``T`` time-ordered records of ``S`` sensors with an anomaly label each.

    Parameters
    ----------
    name : str
        Where the stream came from (file path relative to the folder read, or
        ``"gen-003"`` for generated streams).
    columns : tuple of str
        The ``S`` sensor names, in the order of ``values``' columns.
    times : ndarray of float64, shape (T,)
        Seconds since the stream's first record (``times[0] == 0.0`` for a
        whole stream), non-decreasing.
    values : ndarray of float32, shape (T, S)
        Sensor readings.
    labels : ndarray of int8, shape (T,)
        1 where the record is anomalous, else 0.
    mask : ndarray of bool, shape (S,)
        True where a column carries real readings; False where the column was
        masked by a privacy policy (its values are then zeros). All True for a
        physical node's own stream.
    origin : float
        Absolute time of the stream's first record, POSIX seconds (naive
        timestamps read as UTC); 0.0 for generated streams.

    The arrays are read-only; slicing methods return views.
    """

    name: str
    columns: tuple[str, ...]
    times: Float64Array
    values: Float32Array
    labels: Int8Array
    mask: BoolArray = field(default=None)  # type: ignore[arg-type]
    origin: float = 0.0

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float32)
        labels = np.asarray(self.labels, dtype=np.int8)
        n_cols = len(self.columns)
        mask = (
            np.ones(n_cols, dtype=bool) if self.mask is None else np.asarray(self.mask, dtype=bool)
        )
        if values.ndim != 2 or values.shape[1] != n_cols:
            raise ValueError(f"values must have shape (T, {n_cols}); got {values.shape}")
        if times.shape != (values.shape[0],) or labels.shape != times.shape:
            raise ValueError(
                f"times {times.shape}, labels {labels.shape} and values {values.shape} "
                "must agree on T"
            )
        if mask.shape != (n_cols,):
            raise ValueError(f"mask must have shape ({n_cols},); got {mask.shape}")
        if times.size > 1 and np.any(np.diff(times) < 0):
            raise ValueError("times must be non-decreasing")
        object.__setattr__(self, "columns", tuple(self.columns))
        for name, array in (("times", times), ("values", values), ("labels", labels)):
            object.__setattr__(self, name, _frozen(array))
        object.__setattr__(self, "mask", _frozen(mask))

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def n_sensors(self) -> int:
        """Number of sensor columns ``S``."""
        return len(self.columns)

    @property
    def period(self) -> float:
        """Median spacing of records, seconds (``nan`` with fewer than 2 records)."""
        if len(self) < 2:
            return math.nan
        return float(np.median(np.diff(self.times)))

    def _slice(self, lo: int, hi: int) -> SensorStream:
        return SensorStream(
            name=self.name,
            columns=self.columns,
            times=self.times[lo:hi],
            values=self.values[lo:hi],
            labels=self.labels[lo:hi],
            mask=self.mask,
            origin=self.origin,
        )

    def until(self, now: float) -> SensorStream:
        """Records sensed no later than ``now`` (``time <= now``), seconds."""
        return self._slice(0, int(np.searchsorted(self.times, now, side="right")))

    def window(self, start: float, end: float) -> SensorStream:
        """Records sensed in ``(start, end]``, seconds: what a cache filled then holds."""
        lo = int(np.searchsorted(self.times, start, side="right"))
        hi = int(np.searchsorted(self.times, end, side="right"))
        return self._slice(lo, max(lo, hi))


def _parse_time(text: str) -> float:
    """Seconds of a timestamp: a number of seconds, or an ISO-8601 date-time."""
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def read_stream_csv(path: str | Path, name: str | None = None) -> SensorStream:
    """Read one CSV file of time-stamped sensor records into a :class:`SensorStream`.

    The format is detected from the header: comma- or semicolon-separated;
    one timestamp column (``datetime``, ``timestamp``, ``time``, ``date`` or
    ``t``; ISO-8601 date-times or numbers of seconds); an optional label column
    (``anomaly``, ``label``, ``is_anomaly`` or ``target``; 0/1; a file without
    one, such as SKAB's ``anomaly-free.csv``, is all-normal); SKAB's
    ``changepoint`` column is ignored; every other column is a sensor and must
    be numeric and finite. Timestamps must be strictly increasing.

    Raises
    ------
    InvalidStream
        Naming the file (and line and column where it applies) and what is wrong.
    """
    file = Path(path)
    label = name if name is not None else str(file)
    if not file.is_file():
        raise InvalidStream(f"Stream file {str(file)!r} does not exist.")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidStream(f"Stream file {str(file)!r} cannot be read: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InvalidStream(f"Stream file {str(file)!r} is empty: expected a header line.")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    where = f"Stream file {str(file)!r}"

    t_col = _find_column(header, TIME_COLUMNS)
    if t_col is None:
        raise InvalidStream(
            f"{where} is not a sensor stream: no timestamp column "
            f"(expected one of {', '.join(TIME_COLUMNS)}); header is {header!r}."
        )
    y_col = _find_column(header, LABEL_COLUMNS)
    skip = {t_col} | ({y_col} if y_col is not None else set())
    skip |= {i for i, h in enumerate(header) if h.lower() in IGNORED_COLUMNS}
    sensor_cols = [i for i in range(len(header)) if i not in skip]
    if not sensor_cols:
        raise InvalidStream(f"{where} is not a sensor stream: it has no sensor columns.")
    if not body:
        raise InvalidStream(f"{where} has a header but no records.")

    times = np.empty(len(body), dtype=np.float64)
    values = np.empty((len(body), len(sensor_cols)), dtype=np.float32)
    labels = np.zeros(len(body), dtype=np.int8)
    for k, (line_no, row) in enumerate(body):
        if len(row) != len(header):
            raise InvalidStream(
                f"{where}, line {line_no}: {len(row)} fields, the header has {len(header)}."
            )
        try:
            times[k] = _parse_time(row[t_col])
        except ValueError:
            raise InvalidStream(
                f"{where}, line {line_no}: timestamp {row[t_col]!r} is neither a number of "
                "seconds nor an ISO-8601 date-time."
            ) from None
        for j, c in enumerate(sensor_cols):
            try:
                v = float(row[c])
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise InvalidStream(
                    f"{where}, line {line_no}, column {header[c]!r}: value {row[c]!r} is not "
                    "a finite number."
                )
            values[k, j] = v
        if y_col is not None:
            try:
                y = float(row[y_col])
            except ValueError:
                y = math.nan
            if y not in (0.0, 1.0):
                raise InvalidStream(
                    f"{where}, line {line_no}, column {header[y_col]!r}: label {row[y_col]!r} "
                    "must be 0 or 1."
                )
            labels[k] = int(y)
    steps = np.diff(times)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise InvalidStream(
            f"{where}, line {body[bad + 1][0]}: timestamps are not strictly increasing "
            f"({body[bad][1][t_col]!r} then {body[bad + 1][1][t_col]!r})."
        )
    return SensorStream(
        name=label,
        columns=tuple(header[c] for c in sensor_cols),
        times=times - times[0],
        values=values,
        labels=labels,
        origin=float(times[0]),
    )


def read_stream_folder(path: str | Path) -> list[SensorStream]:
    """Read every ``*.csv`` below ``path`` (recursive, sorted by path), one stream per file.

    Each stream is named by its path relative to ``path`` (e.g.
    ``"valve1/0.csv"``). All files must have the same sensor columns, since
    the streams feed one model. See :func:`read_stream_csv` for the format;
    a clone of SKAB's ``data/`` folder reads as is.

    Raises
    ------
    InvalidStream
        If the folder is missing, holds no CSV file, a file is not a valid
        stream, or two files disagree on their sensor columns.
    """
    folder = Path(path)
    if not folder.exists():
        raise InvalidStream(f"Stream folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise InvalidStream(f"Stream folder {str(folder)!r} is not a folder.")
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    if not files:
        raise InvalidStream(f"Stream folder {str(folder)!r} holds no *.csv file.")
    streams = [read_stream_csv(f, name=f.relative_to(folder).as_posix()) for f in files]
    first = streams[0]
    for s in streams[1:]:
        if s.columns != first.columns:
            raise InvalidStream(
                f"Stream file {str(folder / s.name)!r} has sensor columns {list(s.columns)}, "
                f"but {str(folder / first.name)!r} has {list(first.columns)}: the streams of "
                "one folder must share their sensor columns."
            )
    return streams

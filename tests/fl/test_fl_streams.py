"""Reading sensor streams (SKAB and generic CSV), and reading them as time advances."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoichain.errors import InvalidInput
from aoichain.fl import InvalidStream, SensorStream, read_stream_csv, read_stream_folder

SKAB_HEADER = (
    "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;"
    "Thermocouple;Voltage;Volume Flow RateRMS;anomaly;changepoint"
)


def test_skab_file_reads_with_relative_times_and_absolute_origin(skab: Path) -> None:
    stream = read_stream_csv(skab / "valve1" / "0.csv")
    assert stream.columns[0] == "Accelerometer1RMS" and stream.n_sensors == 8
    assert "anomaly" not in stream.columns and "changepoint" not in stream.columns
    assert stream.times[0] == 0.0 and stream.period == 1.0
    assert stream.origin == datetime(2020, 3, 9, 10, 14, 33, tzinfo=UTC).timestamp()
    assert stream.values.dtype == np.float32 and stream.labels.dtype == np.int8
    assert 0.2 < stream.labels.mean() < 0.5
    assert stream.values[0, 0] == np.float32(0.0265878)


def test_skab_folder_reads_every_file_sorted_recursively(skab: Path) -> None:
    streams = read_stream_folder(skab)
    names = [s.name for s in streams]
    assert names == sorted(names) and len(streams) == 21
    assert names[0] == "anomaly-free/anomaly-free.csv" and "valve2/3.csv" in names
    free = streams[0]
    assert len(free) > 9000 and not free.labels.any()  # no label column: all normal
    assert all(s.times[0] == 0.0 for s in streams)  # one shared clock despite other dates
    assert len({s.origin for s in streams}) == len(streams)


def test_generic_comma_csv_with_numeric_seconds(tmp_path: Path) -> None:
    (tmp_path / "n1.csv").write_text("timestamp,a,b,label\n100.5,1,2,0\n101.5,3,4,1\n103,5,6,0\n")
    (stream,) = read_stream_folder(tmp_path)
    assert stream.name == "n1.csv" and stream.columns == ("a", "b")
    np.testing.assert_array_equal(stream.times, [0.0, 1.0, 2.5])
    np.testing.assert_array_equal(stream.values, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(stream.labels, [0, 1, 0])
    assert stream.origin == 100.5 and stream.mask.all()


BAD_FILES = {
    "empty": ("", "is empty"),
    "no timestamp column": ("a,b,label\n1,2,0\n", "no timestamp column"),
    "no sensor column": ("time,label\n1,0\n2,1\n", "no sensor columns"),
    "header only": ("time,a,label\n", "no records"),
    "field count": ("time,a,label\n1,2,0\n2,3\n", "line 3: 2 fields"),
    "bad timestamp": ("time,a\n1,2\nnoon,3\n", "line 3: timestamp 'noon'"),
    "non-numeric value": ("time,a,b\n1,2,3\n2,x,4\n", "line 3, column 'a': value 'x'"),
    "nan value": ("time,a\n1,nan\n", "line 2, column 'a': value 'nan'"),
    "bad label": ("time,a,anomaly\n1,2,0\n2,3,2\n", "label '2' must be 0 or 1"),
    "unsorted": ("time,a\n1,2\n3,3\n2,4\n", "line 4: timestamps are not strictly increasing"),
    "duplicate time": ("time,a\n1,2\n1,3\n", "not strictly increasing"),
    "skab unsorted": (
        f"{SKAB_HEADER}\n2020-03-09 10:14:34;1;1;1;1;1;1;1;1;0;0\n"
        "2020-03-09 10:14:33;1;1;1;1;1;1;1;1;0;0\n",
        "line 3: timestamps are not strictly increasing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_reader_rejects_bad_files_naming_file_and_fault(tmp_path: Path, case: str) -> None:
    text, phrase = BAD_FILES[case]
    file = tmp_path / "bad.csv"
    file.write_text(text)
    with pytest.raises(InvalidStream) as info:
        read_stream_folder(tmp_path)
    assert isinstance(info.value, InvalidInput)
    assert str(file) in str(info.value) and phrase in str(info.value)


def test_reader_rejects_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(InvalidStream, match="does not exist"):
        read_stream_folder(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("time,a\n1,2\n")
    with pytest.raises(InvalidStream, match=r"holds no \*\.csv file"):
        read_stream_folder(tmp_path)
    with pytest.raises(InvalidStream, match="is not a folder"):
        read_stream_folder(tmp_path / "notes.txt")


def test_reader_rejects_folders_mixing_sensor_sets(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("time,x,y\n1,2,3\n")
    (tmp_path / "b.csv").write_text("time,x,z\n1,2,3\n")
    with pytest.raises(InvalidStream, match="must share their sensor columns"):
        read_stream_folder(tmp_path)


def _stream(times: list[float]) -> SensorStream:
    t = np.asarray(sorted(times), dtype=np.float64)
    return SensorStream(
        name="s",
        columns=("a",),
        times=t,
        values=np.arange(t.size, dtype=np.float32)[:, None],
        labels=np.zeros(t.size, dtype=np.int8),
    )


times_st = st.lists(st.floats(0, 100, allow_nan=False), max_size=40)


@given(times=times_st, now=st.floats(-1, 101, allow_nan=False))
def test_until_is_exactly_the_records_not_later_than_now(times: list[float], now: float) -> None:
    stream = _stream(times)
    seen = stream.until(now)
    np.testing.assert_array_equal(seen.times, stream.times[stream.times <= now])
    np.testing.assert_array_equal(seen.values[:, 0], stream.values[stream.times <= now, 0])


@given(times=times_st, a=st.floats(-1, 101), b=st.floats(-1, 101))
def test_window_is_exactly_start_exclusive_end_inclusive(
    times: list[float], a: float, b: float
) -> None:
    stream = _stream(times)
    got = stream.window(a, b)
    want = (stream.times > a) & (stream.times <= b)
    np.testing.assert_array_equal(got.times, stream.times[want])
    np.testing.assert_array_equal(got.labels, stream.labels[want])


def test_streams_are_read_only(line: list[SensorStream]) -> None:
    with pytest.raises(ValueError, match="read-only"):
        line[0].values[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        line[0].until(5.0).times[0] = 1.0

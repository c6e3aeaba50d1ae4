"""Tests of telewatch.sources.files: parsing uploaded metric files."""

from __future__ import annotations

import contextlib
import gzip
import lzma
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telewatch.core.errors import IngestError
from telewatch.sources.files import IngestOptions, ParsedFile, ParsedSeries, parse_file

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
REDLAB_COLUMNS = ("point", "web_response", "throughput", "apdex", "error")


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps)).tz_localize("UTC")


def write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_name(parsed: ParsedFile) -> dict[str, ParsedSeries]:
    return {s.name: s for s in parsed.series}


def ingest_error(data: str | bytes, options: IngestOptions | None = None) -> IngestError:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(IngestError) as info:
        parse_file(raw, options, name="up.csv")
    assert info.value.source == "up.csv"
    return info.value


def assert_series_convention(s: ParsedSeries) -> None:
    idx = s.values.index
    assert isinstance(idx, pd.DatetimeIndex)
    assert str(idx.tz) == "UTC"
    assert idx.is_monotonic_increasing
    assert idx.is_unique
    assert s.values.dtype == np.float64


# ------------------------------------------------------------------------------------------- formats


def test_csv_with_header_wide(tmp_path: Path) -> None:
    path = write(tmp_path, "time,cpu,mem\n2024-01-01 00:00:00,1.5,10\n2024-01-01 00:01:00,2.5,11\n")
    parsed = parse_file(path)
    assert (parsed.shape, parsed.format, parsed.rows, parsed.timestamp_column) == ("wide", "csv", 2, "time")
    assert [s.name for s in parsed.series] == ["cpu", "mem"]
    cpu = parsed.series[0]
    assert cpu.labels == {}
    assert cpu.values.tolist() == [1.5, 2.5]
    assert cpu.values.index.equals(utc("2024-01-01 00:00", "2024-01-01 00:01"))
    assert parsed.duplicates_resolved == 0
    assert parsed.warnings == []
    for s in parsed.series:
        assert_series_convention(s)


def test_csv_without_header_names_columns_by_position() -> None:
    parsed = parse_file(b"2024-01-01 00:00,1,2\n2024-01-01 00:01,3,4\n")
    assert parsed.timestamp_column == "col1"
    assert [s.name for s in parsed.series] == ["col2", "col3"]
    assert parsed.series[1].values.tolist() == [2.0, 4.0]
    assert parsed.rows == 2


def test_headerless_with_columns_option() -> None:
    options = IngestOptions(columns=("point", "web_response", "throughput"))
    parsed = parse_file(b"2024-01-01 00:00\t0.5\t10\n2024-01-01 00:01\t0.7\t12\n", options)
    assert parsed.timestamp_column == "point"
    assert [s.name for s in parsed.series] == ["web_response", "throughput"]
    assert parsed.format == "tsv"


def test_columns_option_renames_a_header() -> None:
    parsed = parse_file(b"t,a\n2024-01-01,1\n", IngestOptions(columns=("ts", "cpu"), header=True))
    assert parsed.timestamp_column == "ts"
    assert parsed.series[0].name == "cpu"


def test_explicit_header_false_reads_first_row_as_data() -> None:
    parsed = parse_file(b"2024-01-01,1\n2024-01-02,2\n", IngestOptions(header=False))
    assert parsed.rows == 2


def test_tsv_with_header(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp\tlatency\n2024-01-01T00:00:00\t3\n2024-01-01T00:05:00\t4\n", "m.tsv")
    parsed = parse_file(path)
    assert parsed.format == "tsv"
    assert parsed.series[0].name == "latency"
    assert parsed.series[0].values.tolist() == [3.0, 4.0]


def test_semicolon_csv_with_decimal_comma() -> None:
    parsed = parse_file(b"date;load;temp\n01.02.2024 10:00;1,5;20\n01.02.2024 10:01;2,25;-0,5\n")
    s = by_name(parsed)
    assert s["load"].values.tolist() == [1.5, 2.25]
    assert s["temp"].values.tolist() == [20.0, -0.5]
    # DD.MM.YYYY is day first
    assert s["load"].values.index[0] == pd.Timestamp("2024-02-01 10:00", tz="UTC")


def test_clickhouse_tabseparated_headerless_with_null() -> None:
    parsed = parse_file(b"2024-01-01 00:00:00\t1.5\t\\N\n2024-01-01 00:01:00\t\\N\t7\n")
    assert parsed.format == "clickhouse-tsv"
    assert [s.name for s in parsed.series] == ["col2", "col3"]
    assert parsed.series[0].values.tolist()[0] == 1.5
    assert math.isnan(parsed.series[0].values.iloc[1])
    assert math.isnan(parsed.series[1].values.iloc[0])


def test_clickhouse_with_names() -> None:
    parsed = parse_file(b"point\trps\n2024-01-01 00:00:00\t\\N\n2024-01-01 00:01:00\t5\n")
    assert parsed.format == "clickhouse-tsv"
    assert parsed.timestamp_column == "point"
    assert parsed.series[0].values.isna().tolist() == [True, False]


def test_clickhouse_with_names_and_types() -> None:
    data = (
        "ts\tvalue\terrors\n"
        "DateTime\tFloat64\tNullable(Float64)\n"
        "2024-01-01 00:00:00\t1\t\\N\n"
        "2024-01-01 00:01:00\t2\t3\n"
    )
    parsed = parse_file(data.encode())
    assert parsed.format == "clickhouse-tsv"
    assert parsed.rows == 2
    s = by_name(parsed)
    assert s["value"].values.tolist() == [1.0, 2.0]
    assert s["errors"].values.isna().tolist() == [True, False]


def test_clickhouse_types_row_gives_zone_and_text_columns() -> None:
    data = (
        "metric\tt\tv\n"
        "LowCardinality(String)\tDateTime('Europe/Moscow')\tFloat64\n"
        "rps\t2024-01-01 03:00:00\t1\n"
        "rps\t2024-01-01 03:01:00\t2\n"
    )
    parsed = parse_file(data.encode())
    assert parsed.shape == "long"
    assert parsed.series[0].name == "rps"
    assert parsed.series[0].values.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_clickhouse_escapes_in_labels_are_undone() -> None:
    data = (
        "metric\tts\tvalue\thost\n"
        "String\tDateTime\tFloat64\tString\n"
        "cpu\t2024-01-01 00:00:00\t1\tweb\\t1\n"
        "cpu\t2024-01-01 00:00:00\t2\tback\\\\slash\n"
    )
    parsed = parse_file(data.encode())
    assert {s.labels["host"] for s in parsed.series} == {"web\t1", "back\\slash"}


def test_clickhouse_format_forced() -> None:
    parsed = parse_file(b"2024-01-01 00:00:00\t1\n", IngestOptions(format="clickhouse-tsv"))
    assert parsed.format == "clickhouse-tsv"


def test_nab_file_is_one_metric_named_value(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,value\n2014-07-01 00:00:00,10844\n2014-07-01 00:30:00,8127\n")
    parsed = parse_file(path)
    assert parsed.shape == "wide"
    assert [s.name for s in parsed.series] == ["value"]
    assert parsed.series[0].values.tolist() == [10844.0, 8127.0]


def test_compressed_paths(tmp_path: Path) -> None:
    text = b"time,a\n2024-01-01,1\n2024-01-02,2\n"
    (tmp_path / "m.csv.gz").write_bytes(gzip.compress(text))
    (tmp_path / "m.csv.xz").write_bytes(lzma.compress(text))
    for name in ("m.csv.gz", "m.csv.xz"):
        assert parse_file(tmp_path / name).series[0].values.tolist() == [1.0, 2.0]
    assert parse_file(gzip.compress(text)).rows == 2


def test_crlf_bom_and_quoted_fields() -> None:
    data = '\ufeff"time","cpu load"\r\n"2024-01-01 00:00","1.5"\r\n"2024-01-01 00:01","2"\r\n'
    parsed = parse_file(data.encode())
    assert parsed.series[0].name == "cpu load"
    assert parsed.series[0].values.tolist() == [1.5, 2.0]


def test_blank_lines_are_skipped_and_lines_still_counted() -> None:
    err = ingest_error("time,a\n\n2024-01-01,1\n\n2024-01-02,x\n2024-01-03,3\n2024-01-04,4\n")
    assert (err.line, err.column) == (5, "a")


# -------------------------------------------------------------------------------------- long shape


def test_long_table_with_labels() -> None:
    data = (
        "timestamp,metric,value,host,dc\n"
        "2024-01-01 00:00,cpu,1,a,x\n"
        "2024-01-01 00:00,cpu,2,b,x\n"
        "2024-01-01 00:01,cpu,3,a,x\n"
        "2024-01-01 00:00,mem,4,a,x\n"
    )
    parsed = parse_file(data.encode())
    assert parsed.shape == "long"
    got = {(s.name, tuple(sorted(s.labels.items()))): s.values.tolist() for s in parsed.series}
    assert got == {
        ("cpu", (("dc", "x"), ("host", "a"))): [1.0, 3.0],
        ("cpu", (("dc", "x"), ("host", "b"))): [2.0],
        ("mem", (("dc", "x"), ("host", "a"))): [4.0],
    }
    for s in parsed.series:
        assert_series_convention(s)


def test_long_headerless_metric_from_first_text_column() -> None:
    data = b"cpu,2024-01-01 00:00,1\nmem,2024-01-01 00:00,2\ncpu,2024-01-01 00:01,3\n"
    parsed = parse_file(data)
    assert parsed.shape == "long"
    s = by_name(parsed)
    assert s["cpu"].values.tolist() == [1.0, 3.0]
    assert s["mem"].labels == {}


def test_value_column_named_value_takes_metric_from_text_column() -> None:
    parsed = parse_file(b"ts,sensor,value\n2024-01-01,t1,1\n2024-01-01,t2,2\n")
    assert sorted(s.name for s in parsed.series) == ["t1", "t2"]


def test_text_columns_become_labels_of_named_numeric_columns() -> None:
    data = b"time,host,cpu,mem\n2024-01-01,a,1,10\n2024-01-01,b,2,20\n2024-01-02,a,3,30\n"
    parsed = parse_file(data)
    got = {(s.name, s.labels["host"]): s.values.tolist() for s in parsed.series}
    assert got == {
        ("cpu", "a"): [1.0, 3.0],
        ("cpu", "b"): [2.0],
        ("mem", "a"): [10.0, 30.0],
        ("mem", "b"): [20.0],
    }


def test_long_explicit_columns() -> None:
    data = b"when,what,how_much,count,host,zone\n2024-01-01,cpu,1,5,a,z\n2024-01-02,cpu,2,6,a,z\n"
    options = IngestOptions(
        timestamp_column="when", metric_column="what", value_column="how_much", label_columns=("host",)
    )
    parsed = parse_file(data, options)
    assert parsed.shape == "long"
    (series,) = parsed.series
    assert (series.name, series.labels, series.values.tolist()) == ("cpu", {"host": "a"}, [1.0, 2.0])


def test_long_missing_label_is_empty_string_and_missing_value_is_nan() -> None:
    data = b"metric\tts\tvalue\thost\ncpu\t2024-01-01 00:00:00\t\\N\t\\N\n"
    parsed = parse_file(data)
    (series,) = parsed.series
    assert series.labels == {"host": ""}
    assert math.isnan(series.values.iloc[0])


def test_metrics_option_filters_wide_and_long() -> None:
    wide = parse_file(b"time,a,b,c\n2024-01-01,1,2,3\n", IngestOptions(metrics=("c", "a")))
    assert [s.name for s in wide.series] == ["c", "a"]
    long = parse_file(
        b"metric,ts,value\ncpu,2024-01-01,1\nmem,2024-01-01,2\n", IngestOptions(metrics=("mem",))
    )
    assert [s.name for s in long.series] == ["mem"]
    err = ingest_error("time,a\n2024-01-01,1\n", IngestOptions(metrics=("zzz",)))
    assert err.column == "zzz"


def test_explicit_wide_shape_rejects_text_column() -> None:
    err = ingest_error("time,host,cpu\n2024-01-01,a,1\n", IngestOptions(shape="wide"))
    assert (err.line, err.column) == (2, "host")


# ------------------------------------------------------------------------------- missing and gaps


@pytest.mark.parametrize("token", ["", "NaN", "nan", "NULL", "\\N", "null"])
def test_missing_markers_are_nan_not_zero(token: str) -> None:
    parsed = parse_file(f"time,a\n2024-01-01,{token}\n2024-01-02,0\n".encode())
    values = parsed.series[0].values
    assert math.isnan(values.iloc[0])
    assert values.iloc[1] == 0.0


def test_gaps_stay_gaps_and_rows_are_sorted() -> None:
    parsed = parse_file(b"time,a\n2024-01-01 00:05,3\n2024-01-01 00:00,1\n2024-01-01 00:01,2\n")
    values = parsed.series[0].values
    assert values.index.equals(utc("2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 00:05"))
    assert values.tolist() == [1.0, 2.0, 3.0]


# ---------------------------------------------------------------------------------------- timezones


def test_naive_times_read_in_timezone() -> None:
    parsed = parse_file(b"time,a\n2024-01-01 03:00,1\n", IngestOptions(timezone="Europe/Moscow"))
    assert parsed.series[0].values.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_explicit_offsets_are_respected() -> None:
    data = b"time,a\n2024-01-01T03:00:00+03:00,1\n2024-01-01T01:00:00Z,2\n2024-01-01 02:00:00+0000,3\n"
    parsed = parse_file(data, IngestOptions(timezone="Europe/Moscow"))
    assert parsed.series[0].values.index.equals(
        utc("2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00")
    )


def test_mixed_naive_and_offset_times() -> None:
    data = b"time,a\n2024-01-01 03:00,1\n2024-01-01 03:00+00:00,2\n"
    parsed = parse_file(data, IngestOptions(timezone="Europe/Moscow"))
    assert parsed.series[0].values.tolist() == [1.0, 2.0]


def test_dst_ambiguous_hour_is_inferred_from_order() -> None:
    data = b"time,a\n2024-10-27 02:30,1\n2024-10-27 02:30,2\n"
    parsed = parse_file(data, IngestOptions(timezone="Europe/Berlin"))
    assert parsed.series[0].values.index.equals(utc("2024-10-27 00:30", "2024-10-27 01:30"))
    assert parsed.duplicates_resolved == 0


def test_dst_ambiguous_hour_that_cannot_be_inferred_warns() -> None:
    parsed = parse_file(b"time,a\n2024-10-27 02:30,1\n", IngestOptions(timezone="Europe/Berlin"))
    assert parsed.series[0].values.index[0] == pd.Timestamp("2024-10-27 00:30", tz="UTC")
    assert parsed.warnings


@pytest.mark.parametrize(
    ("cell", "options", "expected"),
    [
        ("1704067200", IngestOptions(), "2024-01-01 00:00"),
        ("1704067200000", IngestOptions(), "2024-01-01 00:00"),
        ("1704067200", IngestOptions(timestamp_format="unix_s"), "2024-01-01 00:00"),
        ("1704067200500", IngestOptions(timestamp_format="unix_ms"), "2024-01-01 00:00:00.5"),
        ("2024/01/31 10:00", IngestOptions(timestamp_format="%Y/%m/%d %H:%M"), "2024-01-31 10:00"),
        ("31.01.2024 10:00:05", IngestOptions(), "2024-01-31 10:00:05"),
        ("31.01.2024", IngestOptions(), "2024-01-31"),
        ("2024-01-31T10:00:05.250", IngestOptions(), "2024-01-31 10:00:05.25"),
        ("2024-01-31", IngestOptions(), "2024-01-31"),
    ],
)
def test_timestamp_formats(cell: str, options: IngestOptions, expected: str) -> None:
    parsed = parse_file(f"time,a\n{cell},1\n".encode(), options)
    assert parsed.series[0].values.index[0] == pd.Timestamp(expected, tz="UTC")


def test_headerless_unix_first_column() -> None:
    parsed = parse_file(b"1704067200,1\n1704067260,2\n")
    assert parsed.timestamp_column == "col1"
    assert parsed.series[0].values.index[1] == pd.Timestamp("2024-01-01 00:01", tz="UTC")


# --------------------------------------------------------------------------------------- duplicates

DUPLICATED = "time,a,b\n2024-01-01,1,5\n2024-01-02,2,\n2024-01-01,3,\n2024-01-01,,7\n"


@pytest.mark.parametrize(
    ("rule", "a", "b"),
    [
        ("last", 3.0, 7.0),
        ("first", 1.0, 5.0),
        ("mean", 2.0, 6.0),
        ("max", 3.0, 7.0),
        ("min", 1.0, 5.0),
        ("sum", 4.0, 12.0),
    ],
)
def test_duplicate_rules_wide(rule: str, a: float, b: float) -> None:
    parsed = parse_file(DUPLICATED.encode(), IngestOptions(duplicates=rule))  # type: ignore[arg-type]
    s = by_name(parsed)
    assert s["a"].values.iloc[0] == a
    assert s["b"].values.iloc[0] == b
    assert s["a"].values.iloc[1] == 2.0
    assert math.isnan(s["b"].values.iloc[1])
    assert parsed.duplicates_resolved == 2  # (a, 2024-01-01) and (b, 2024-01-01)
    assert s["a"].values.index.is_unique


def test_duplicate_all_missing_stays_missing() -> None:
    for rule in ("last", "first", "sum", "mean"):
        parsed = parse_file(b"time,a\n2024-01-01,\n2024-01-01,NaN\n", IngestOptions(duplicates=rule))
        assert math.isnan(parsed.series[0].values.iloc[0])


def test_duplicate_error_names_second_occurrence() -> None:
    err = ingest_error(DUPLICATED, IngestOptions(duplicates="error"))
    assert (err.line, err.column) == (4, "time")
    assert "duplicate" in str(err)


@pytest.mark.parametrize(("rule", "expected"), [("last", 3.0), ("first", 1.0), ("sum", 4.0)])
def test_duplicate_rules_long(rule: str, expected: float) -> None:
    data = (
        b"metric,ts,value,host\n"
        b"cpu,2024-01-01,1,a\ncpu,2024-01-01,1,b\ncpu,2024-01-01,3,a\nmem,2024-01-01,9,a\n"
    )
    parsed = parse_file(data, IngestOptions(duplicates=rule))  # type: ignore[arg-type]
    got = {(s.name, s.labels["host"]): s.values.tolist() for s in parsed.series}
    assert got == {("cpu", "a"): [expected], ("cpu", "b"): [1.0], ("mem", "a"): [9.0]}
    assert parsed.duplicates_resolved == 1


def test_duplicate_error_long() -> None:
    data = "metric,ts,value\ncpu,2024-01-01,1\nmem,2024-01-01,1\ncpu,2024-01-01,3\n"
    err = ingest_error(data, IngestOptions(duplicates="error"))
    assert (err.line, err.column) == (4, "ts")


# --------------------------------------------------------------------------------------- malformed


def test_text_in_numeric_cell() -> None:
    err = ingest_error("time,a,b\n2024-01-01,1,2\n2024-01-02,3,abc\n2024-01-03,4,5\n")
    assert (err.line, err.column) == (3, "b")
    assert "abc" in str(err)
    assert "up.csv" in str(err)


def test_text_in_numeric_cell_headerless_names_position() -> None:
    err = ingest_error("2024-01-01\t1\t2\n2024-01-02\t3\toops\n2024-01-03\t4\t5\n")
    assert (err.line, err.column) == (2, "col3")


def test_text_in_long_value_column() -> None:
    err = ingest_error("metric,ts,value\ncpu,2024-01-01,1\ncpu,2024-01-02,x\ncpu,2024-01-03,3\n")
    assert (err.line, err.column) == (3, "value")


def test_only_text_in_value_column() -> None:
    err = ingest_error("time,value\n2024-01-01,abc\n")
    assert (err.line, err.column) == (2, "value")


@pytest.mark.parametrize(
    ("data", "line", "found"),
    [
        ("time,a,b\n2024-01-01,1,2\n2024-01-02,3\n", 3, "found 2"),
        ("time,a,b\n2024-01-01,1,2\n2024-01-02,3,4,5\n", 3, "found 4"),
        ('time,a\n"2024-01-01",1\n"2024-01-02","x\ny",2\n', 3, "found 3"),
        ("2024-01-01\t1\n2024-01-02\t2\t3\n", 2, "found 3"),
    ],
)
def test_ragged_row(data: str, line: int, found: str) -> None:
    err = ingest_error(data)
    assert err.line == line
    assert "expected" in str(err)
    assert found in str(err)


def test_error_line_counts_quoted_line_breaks() -> None:
    data = 'time,note,value\n2024-01-01,"two\nlines",1\n2024-01-02,plain,zz\n2024-01-03,x,3\n'
    err = ingest_error(data, IngestOptions(value_column="value", label_columns=("note",)))
    assert (err.line, err.column) == (4, "value")


def test_unparseable_timestamp() -> None:
    err = ingest_error("time,a\n2024-01-01 00:00,1\n2024-13-45 00:00,2\n")
    assert (err.line, err.column) == (3, "time")


def test_unparseable_custom_format_timestamp() -> None:
    err = ingest_error("time,a\n2024/01/01,1\nyesterday,2\n", IngestOptions(timestamp_format="%Y/%m/%d"))
    assert (err.line, err.column) == (3, "time")


def test_missing_timestamp() -> None:
    err = ingest_error("time,a\n2024-01-01,1\n,2\n")
    assert (err.line, err.column) == (3, "time")


def test_nonexistent_local_time_in_dst_gap() -> None:
    data = "time,a\n2024-03-31 01:30,1\n2024-03-31 02:30,2\n"
    err = ingest_error(data, IngestOptions(timezone="Europe/Berlin"))
    assert (err.line, err.column) == (3, "time")
    assert "does not exist" in str(err)


@pytest.mark.parametrize("data", ["", "\n\n", "   \n"])
def test_empty_file(data: str) -> None:
    assert "empty" in str(ingest_error(data))


def test_header_only_file() -> None:
    err = ingest_error("time,cpu\n")
    assert err.line == 1
    assert "no data rows" in str(err)


def test_header_and_types_only() -> None:
    assert "no data rows" in str(ingest_error("t\tv\nDateTime\tFloat64\n"))


def test_no_timestamp_column() -> None:
    assert "no timestamp column" in str(ingest_error("a,b\n1,2\n3,4\n"))


def test_small_numbers_are_not_timestamps() -> None:
    err = ingest_error("time,a\n1,2\n")
    assert (err.line, err.column) == (2, "time")


def test_no_numeric_column() -> None:
    assert "no numeric column" in str(ingest_error("time\n2024-01-01\n2024-01-02\n"))


def test_infinite_value_rejected() -> None:
    err = ingest_error("time,a\n2024-01-01,1\n2024-01-02,inf\n")
    assert (err.line, err.column) == (3, "a")


def test_file_larger_than_max_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "time,a\n" + "2024-01-01,1\n" * 100)
    with pytest.raises(IngestError, match="limit"):
        parse_file(path, IngestOptions(max_bytes=100))
    with pytest.raises(IngestError, match="limit"):
        parse_file(path.read_bytes(), IngestOptions(max_bytes=100))
    # a small compressed file that unpacks past the limit
    with pytest.raises(IngestError, match="limit"):
        parse_file(gzip.compress(path.read_bytes()), IngestOptions(max_bytes=1000))


def test_more_than_max_rows() -> None:
    err = ingest_error("time,a\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n", IngestOptions(max_rows=2))
    assert err.line == 4
    assert "max_rows" in str(err)


def test_binary_file() -> None:
    err = ingest_error(b"time,a\n\x00\x01\x02\xff")
    assert err.line == 2
    assert "byte offset 7" in str(err)


def test_undecodable_file() -> None:
    err = ingest_error(b"time,a\n2024-01-01,1\n2024-01-02,\xff\xfe\n")
    assert err.line == 3
    assert "UTF-8" in str(err)


def test_corrupt_gzip() -> None:
    assert "gzip" in str(ingest_error(b"\x1f\x8b\x08\x00garbage"))


def test_duplicate_column_names() -> None:
    err = ingest_error("time,a,a\n2024-01-01,1,2\n")
    assert (err.line, err.column) == (1, "a")


def test_unknown_option_columns_and_zone() -> None:
    assert ingest_error("time,a\n2024-01-01,1\n", IngestOptions(timestamp_column="nope")).column == "nope"
    assert "timezone" in str(ingest_error("time,a\n2024-01-01,1\n", IngestOptions(timezone="Mars/Base")))
    assert "columns=" in str(ingest_error("time,a\n2024-01-01,1\n", IngestOptions(columns=("x",))))


def test_missing_path() -> None:
    with pytest.raises(IngestError, match="cannot read"):
        parse_file(Path("/nonexistent/telewatch/file.csv"))


# -------------------------------------------------------------------------------------- properties

_metric_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"time", "timestamp", "ts", "date", "datetime", "point", "nan", "null", "inf"}
)
_cell_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**15), 10**15), st.none()
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_metric_names, min_size=1, max_size=4, unique=True),
    minutes=st.lists(st.integers(0, 10**6), min_size=1, max_size=30, unique=True),
    data=st.data(),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_wide_csv_round_trips_values_exactly(
    names: list[str], minutes: list[int], data: st.DataObject, delimiter: str
) -> None:
    rows = [[data.draw(_cell_values) for _ in names] for _ in minutes]
    base = pd.Timestamp("2020-01-01")
    lines = [delimiter.join(["time", *names])]
    for minute, row in zip(minutes, rows, strict=True):
        stamp = (base + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")
        cells = ["" if v is None else repr(float(v)) if isinstance(v, float) else str(v) for v in row]
        lines.append(delimiter.join([stamp, *cells]))
    parsed = parse_file(("\n".join(lines) + "\n").encode())
    assert [s.name for s in parsed.series] == names
    order = np.argsort(minutes)
    for k, s in enumerate(parsed.series):
        expected = [np.nan if rows[i][k] is None else float(rows[i][k]) for i in order]
        assert np.array_equal(s.values.to_numpy(), np.asarray(expected, dtype=np.float64), equal_nan=True)
        assert_series_convention(s)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_raise_only_ingest_error(blob: bytes) -> None:
    with contextlib.suppress(IngestError):
        parse_file(blob)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "2024-01-01",
                "2024-01-01 00:00",
                " ",
                ",",
                ";",
                "\t",
                "\n",
                '"',
                "\\N",
                "1",
                "-2.5",
                "x",
                "time",
                "metric",
                "value",
                "1,5",
                "",
                "1704067200",
                "31.12.2024",
                "+03:00",
                "NaN",
                "\r",
            ]
        ),
        max_size=40,
    )
)
def test_garbage_text_raises_only_ingest_error(parts: list[str]) -> None:
    try:
        parsed = parse_file("".join(parts).encode())
    except IngestError:
        return
    for s in parsed.series:
        assert_series_convention(s)


# -------------------------------------------------------------------------------------- real data


@pytest.mark.shared
def test_redlab_key_features() -> None:
    path = SHARED / "redlab" / "key_features.tsv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    started = time.perf_counter()
    parsed = parse_file(path, IngestOptions(columns=REDLAB_COLUMNS))
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert parsed.rows == 43_272
    assert parsed.timestamp_column == "point"
    assert [s.name for s in parsed.series] == list(REDLAB_COLUMNS[1:])
    for s in parsed.series:
        assert len(s.values) == 43_272
        assert_series_convention(s)
    errors = by_name(parsed)["error"].values
    assert int(errors.isna().sum()) == 14_530
    assert (errors.dropna() >= 0).all()
    assert int(by_name(parsed)["throughput"].values.isna().sum()) == 0


@pytest.mark.shared
def test_nab_nyc_taxi() -> None:
    path = SHARED / "nab" / "data" / "realKnownCause" / "nyc_taxi.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    parsed = parse_file(path)
    (series,) = parsed.series
    assert series.name == "value"
    assert parsed.rows == len(series.values) == 10_320
    assert series.values.iloc[0] == 10844.0
    assert series.values.index[0] == pd.Timestamp("2014-07-01 00:00", tz="UTC")
    assert_series_convention(series)

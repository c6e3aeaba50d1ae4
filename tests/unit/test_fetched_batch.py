"""The columnar fetch path (FetchedBatch) holds exactly what the per-series path holds.

The references below are the per-series implementations the batch path replaced (a groupby with one
pandas Series per group, and the per-series watermark filter): the batch path must give the same
series, in the same order, with the same points and the same advanced state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telewatch.sources.base import (
    ColumnarSource,
    FetchedBatch,
    FetchedSeries,
    SourceState,
    filter_new,
    filter_new_batch,
    long_to_batch,
    make_series,
)

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def reference_long_to_series(
    frame: pd.DataFrame, *, metric_column: str | None, value_columns: list[str], label_columns: list[str]
) -> list[FetchedSeries]:
    """The per-group implementation (before the batch path)."""
    out: list[FetchedSeries] = []
    if frame.empty:
        return out
    group_cols = ([metric_column] if metric_column else []) + label_columns
    groups: Iterable[tuple[Any, pd.DataFrame]] = (
        frame.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), frame)]
    )
    for key, part in groups:
        key_tuple = key if isinstance(key, tuple) else (key,)
        names = dict(zip(group_cols, key_tuple, strict=True))
        labels = {c: str(names[c]) for c in label_columns}
        if metric_column:
            values = make_series(part["__ts"], part[value_columns[0]], unit="s")
            out.append(FetchedSeries(name=str(names[metric_column]), labels=labels, values=values))
        else:
            for col in value_columns:
                out.append(
                    FetchedSeries(
                        name=col, labels=labels, values=make_series(part["__ts"], part[col], unit="s")
                    )
                )
    return out


def assert_same(batch: FetchedBatch, items: list[FetchedSeries]) -> None:
    got = batch.series()
    assert [(s.name, s.labels) for s in got] == [(s.name, s.labels) for s in items]
    for a, b in zip(got, items, strict=True):
        assert a.values.index.equals(b.values.index.as_unit("ns")), a.name
        np.testing.assert_array_equal(a.values.to_numpy(), b.values.to_numpy())


def random_long_frame(rng: np.random.Generator, rows: int, *, wide: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "__ts": rng.integers(0, 40, rows) * 60.0 + T0.timestamp(),  # duplicates and disorder
            "metric": rng.choice(["cpu", "mem", "rx_bps"], rows),
            "host": rng.choice(["r1", "r2", "r10"], rows),
            "value": rng.normal(size=rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "value"] = np.nan
    if wide:
        frame["errors"] = rng.integers(0, 5, rows).astype(object)
        frame.loc[rng.random(rows) < 0.1, "errors"] = "n/a"  # not a number: NaN, as per series
    return frame


@pytest.mark.parametrize("seed", range(6))
def test_long_shape_equals_the_per_group_split(seed: int) -> None:
    frame = random_long_frame(np.random.default_rng(seed), 400, wide=False)
    for labels in ([], ["host"]):
        batch = long_to_batch(frame, metric_column="metric", value_columns=["value"], label_columns=labels)
        ref = reference_long_to_series(
            frame, metric_column="metric", value_columns=["value"], label_columns=labels
        )
        assert_same(batch, ref)


@pytest.mark.parametrize("seed", range(6))
def test_wide_shape_equals_the_per_group_split(seed: int) -> None:
    frame = random_long_frame(np.random.default_rng(seed), 300, wide=True).drop(columns=["metric"])
    for labels in ([], ["host"]):
        kw: dict[str, Any] = {
            "metric_column": None,
            "value_columns": ["value", "errors"],
            "label_columns": labels,
        }
        assert_same(long_to_batch(frame, **kw), reference_long_to_series(frame, **kw))


def test_duplicate_timestamps_keep_the_last_row_and_text_values_are_missing() -> None:
    frame = pd.DataFrame({"__ts": [120.0, 60.0, 60.0, 0.0], "m": ["a"] * 4, "value": [3, 1, 2, "x"]})
    batch = long_to_batch(frame, metric_column="m", value_columns=["value"], label_columns=[])
    assert batch.series()[0].values.tolist()[1:] == [2.0, 3.0]
    assert np.isnan(batch.values[0])
    assert (
        long_to_batch(frame.iloc[:0], metric_column="m", value_columns=["value"], label_columns=[]).ts.size
        == 0
    )


def series_lists() -> st.SearchStrategy[list[FetchedSeries]]:
    minute = st.integers(0, 30)
    one = st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from([{}, {"host": "r1"}, {"host": "r2"}]),
        st.lists(minute, min_size=0, max_size=8, unique=True),
    )

    def build(raw: list[tuple[str, dict[str, str], list[int]]]) -> list[FetchedSeries]:
        out, seen = [], set()
        for name, labels, minutes in raw:
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                continue  # a source returns each series once
            seen.add(key)
            index = pd.DatetimeIndex(
                [T0 + pd.Timedelta(minutes=m) for m in sorted(minutes)], tz="UTC"
            ).as_unit("ns")
            out.append(
                FetchedSeries(
                    name, dict(labels), pd.Series(np.arange(len(minutes), dtype="float64"), index=index)
                )
            )
        return out

    return st.lists(one, max_size=8).map(build)


@settings(max_examples=150, deadline=None)
@given(
    items=series_lists(),
    marks=st.dictionaries(st.sampled_from(["a", "b", "c{host=r1}", "d{host=r2}"]), st.integers(-1, 31)),
)
def test_filter_new_batch_equals_filter_new(items: list[FetchedSeries], marks: dict[str, int]) -> None:
    state = SourceState(
        last_seen={k: T0 + pd.Timedelta(minutes=m) for k, m in marks.items()}, cursor={"x": 1}
    )
    ref_items, ref_state = filter_new(items, state)
    batch, new_state = filter_new_batch(FetchedBatch.from_series(items), state)
    assert_same(batch, ref_items)
    assert new_state.last_seen == ref_state.last_seen
    assert new_state.cursor == ref_state.cursor
    assert state.last_seen == {k: T0 + pd.Timedelta(minutes=m) for k, m in marks.items()}  # not modified


def test_select_and_round_trip() -> None:
    index = pd.date_range(T0, periods=3, freq="1min")
    items = [
        FetchedSeries("a", {}, pd.Series([1.0, 2.0, 3.0], index=index)),
        FetchedSeries("b", {"host": "r1"}, pd.Series([4.0], index=index[:1])),
        FetchedSeries("c", {}, pd.Series([np.nan, 6.0], index=index[1:].tz_convert("Europe/Paris"))),
    ]
    batch = FetchedBatch.from_series(items)
    assert batch.counts.tolist() == [3, 1, 2]
    assert batch.keys() == ["a", "b{host=r1}", "c"]
    picked = batch.select(np.array([True, False, True]))
    assert picked.names == ["a", "c"]
    assert picked.offsets.tolist() == [0, 3, 5]
    assert picked.series()[1].values.index[0] == index[1]  # converted to UTC, same instant
    with pytest.raises(ValueError, match="offsets"):
        FetchedBatch(["a"], [{}], np.zeros(2, "int64"), np.zeros(2), np.array([0, 1]))


class _Columns(ColumnarSource):
    kind = "test"

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self.asked: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        self.asked.append((start, end))
        stamps = pd.date_range(T0, periods=self.minutes, freq="1min")
        keep = stamps[(stamps >= start) & (stamps < end)]
        ns = np.asarray(keep.as_unit("ns").asi8)
        return FetchedBatch(
            names=["x", "y"],
            labels=[{}, {}],
            ts=np.concatenate([ns, ns]),
            values=np.arange(2 * ns.size, dtype="float64"),
            offsets=np.array([0, ns.size, 2 * ns.size]),
        )


def test_a_columnar_source_fetches_only_what_is_new() -> None:
    src = _Columns(30)
    first, state = src.fetch_incremental_batch(
        state=SourceState(), end=T0 + pd.Timedelta(minutes=10), lookback=pd.Timedelta(hours=1)
    )
    assert first.counts.tolist() == [10, 10]
    again, same = src.fetch_incremental_batch(state=state, end=T0 + pd.Timedelta(minutes=10))
    assert len(again) == 0
    assert same.last_seen == state.last_seen
    more, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=12))
    assert [len(s.values) for s in more] == [2, 2]
    assert state.last_seen["x"] == T0 + pd.Timedelta(minutes=11)
    assert src.asked[-1][0] == T0 + pd.Timedelta(minutes=9, microseconds=1)

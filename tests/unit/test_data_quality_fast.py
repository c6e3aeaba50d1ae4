"""The numpy data-quality typing (issue 18, "Speed stays") gives exactly what the pandas version gave.

The reference implementations below are verbatim copies of ``find_data_quality``,
``sampling_step``, ``unusual_gap_steps`` and ``metric_quality_changes`` as they were before the
rewrite (commit a167cd9); random series of every shape the tick feeds them are compared field by
field, old against new.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from telewatch.incidents.data_quality import (
    DataQualityIssue,
    find_data_quality,
    issues_between,
    sampling_step,
)
from telewatch.incidents.types import (
    MIN_TYPING_GAP,
    QUALITY_SLACK_MINUTES,
    MetricChange,
    metric_quality_changes,
    quality_changes,
    unusual_gap_steps,
)

# --- the reference (pre-rewrite) implementations ------------------------------------------------


def _ref_sampling_step(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    if len(index) < 2:
        return None
    diffs = np.diff(pd.DatetimeIndex(index).as_unit("ns").asi8)
    return pd.Timedelta(int(np.median(diffs)), unit="ns")


def _ref_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.r_[False, mask, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _ref_find_data_quality(
    series: pd.Series,
    *,
    gap_steps: int = 3,
    stuck_min_points: int = 10,
    stuck_p: float = 1e-6,
    reset_share: float = 0.1,
) -> list[DataQualityIssue]:
    issues: list[DataQualityIssue] = []
    if len(series) < 2:
        return issues
    index = pd.DatetimeIndex(series.index)
    values = series.to_numpy(dtype="float64")
    step = _ref_sampling_step(index)
    if step is not None and step > pd.Timedelta(0):
        diffs = np.diff(index.as_unit("ns").asi8)
        for k in np.flatnonzero(diffs > gap_steps * step.value).tolist():
            missing = round(float(diffs[k]) / step.value) - 1
            issues.append(
                DataQualityIssue("collection_gap", index[k] + step, index[k + 1] - step, missing, math.nan)
            )
    for start, stop in _ref_runs(np.isnan(values)):
        if stop - start >= gap_steps:
            issues.append(DataQualityIssue("collection_gap", index[start], index[stop - 1], stop - start))
    finite = np.isfinite(values)
    v = values[finite]
    idx_f = index[finite]
    if v.size >= 3:
        d = np.diff(v)
        repeat = d == 0.0
        rate = float(repeat.mean())
        if rate < 0.5:
            longest_ok = (
                stuck_min_points
                if rate == 0.0
                else max(stuck_min_points, math.ceil(math.log(stuck_p) / math.log(rate)) + 1)
            )
            for start, stop in _ref_runs(repeat):
                points = stop - start + 1
                value = float(v[start])
                if points >= longest_ok and value != 0.0:
                    issues.append(DataQualityIssue("stuck_value", idx_f[start], idx_f[stop], points, value))
        rises = d > 0
        if rises.mean() > 0.5 and (d >= 0).mean() >= 0.99:
            for k in np.flatnonzero(d < 0).tolist():
                if v[k + 1] <= reset_share * v[k]:
                    issues.append(
                        DataQualityIssue("counter_reset", idx_f[k + 1], idx_f[k + 1], 1, float(v[k + 1]))
                    )
    issues.sort(key=lambda i: (i.start, i.kind))
    return issues


def _ref_unusual_gap_steps(series: object, before: object) -> int:
    values = series if isinstance(series, pd.Series) else pd.Series(series)
    index = pd.DatetimeIndex(values.index)
    history = index[index < pd.Timestamp(before)]  # type: ignore[arg-type]
    step = _ref_sampling_step(index)
    if step is None or step <= pd.Timedelta(0) or len(history) < 2:
        return MIN_TYPING_GAP
    missing = np.diff(history.as_unit("ns").asi8) // step.value - 1
    return max(MIN_TYPING_GAP, int(missing.max()) + 1)


def _ref_metric_quality_changes(
    metric: str, series: object, start: object, end: object, *, group: str | None = None
) -> list[MetricChange]:
    values = series if isinstance(series, pd.Series) else pd.Series(series)
    slack = pd.Timedelta(minutes=QUALITY_SLACK_MINUTES)
    return quality_changes(
        metric,
        _ref_find_data_quality(
            values,
            gap_steps=_ref_unusual_gap_steps(values, pd.Timestamp(start) - slack),  # type: ignore[arg-type]
        ),
        start,
        end,
        group=group,
        slack=slack,
    )


# --- random series --------------------------------------------------------------------------------


def _random_series(rng: np.random.Generator, tz: str | None = "UTC") -> pd.Series:
    """A day-ish of one metric (minute or 5-minute steps) with gaps, NaN runs, stuck runs and,
    for counters, resets; sometimes tiny, rounded to few values, or with duplicate timestamps."""
    shape = rng.integers(0, 20)
    step = pd.Timedelta(minutes=int(rng.choice([1, 5])))
    n = {0: 0, 1: 1, 2: 2, 3: 3}.get(int(shape), int(rng.integers(4, 1600)))
    t0 = pd.Timestamp("2024-05-01", tz=tz) + pd.Timedelta(seconds=int(rng.integers(0, 86_400)))
    ns = t0.value + np.arange(n, dtype=np.int64) * step.value
    kind = rng.integers(0, 4)
    if kind == 0:  # a counter: rises, sometimes resets
        values = np.cumsum(rng.integers(0, 5, n).astype(float) + (rng.random(n) < 0.9))
        for k in rng.integers(0, max(n, 1), int(rng.integers(0, 3))) if n else []:
            values[k:] -= values[k] - rng.choice([0.0, values[k] * 0.05, values[k] * 0.5])
    elif kind == 1:  # few distinct readings: many repeats
        values = rng.integers(0, int(rng.integers(2, 6)), n).astype(float)
    elif kind == 2:  # a continuous metric, rounded
        values = (100 + 10 * rng.normal(size=n)).round(int(rng.integers(0, 3)))
    else:  # mostly zero
        values = np.where(rng.random(n) < 0.3, rng.normal(5, 1, n).round(1), 0.0)
    values = values.astype(float)
    for _ in range(int(rng.integers(0, 4))):  # stuck runs
        if n > 2:
            a = int(rng.integers(0, n - 1))
            values[a : a + int(rng.integers(2, 60))] = rng.choice([values[a], 0.0, 7.5])
    for _ in range(int(rng.integers(0, 3))):  # NaN runs
        if n > 1:
            a = int(rng.integers(0, n))
            values[a : a + int(rng.integers(1, 12))] = np.nan
    if n > 3 and rng.random() < 0.05:  # an infinite reading: neither missing nor finite
        values[int(rng.integers(0, n))] = rng.choice([np.inf, -np.inf])
    keep = np.ones(n, dtype=bool)
    for _ in range(int(rng.integers(0, 5))):  # holes of 1-40 steps
        if n > 2:
            a = int(rng.integers(0, n))
            keep[a : a + int(rng.integers(1, 41))] = False
    ns, values = ns[keep], values[keep]
    if ns.size and rng.random() < 0.1:  # duplicate timestamps
        k = rng.integers(0, ns.size, 3)
        ns = np.sort(np.r_[ns, ns[k]])
        values = np.r_[values, values[k]][: ns.size]
    if ns.size > 3 and rng.random() < 0.05:  # jitter: not a whole number of steps
        ns = np.sort(ns + rng.integers(-20_000_000_000, 20_000_000_000, ns.size))
    index = pd.DatetimeIndex(ns.astype("datetime64[ns]"))
    index = index.tz_localize("UTC").tz_convert(tz) if tz else index
    if rng.random() < 0.1 and len(index):
        index = index.as_unit("s") if rng.random() < 0.5 else index.as_unit("us")
    return pd.Series(values, index=index, name="value")


def _fields(issues: list[DataQualityIssue]) -> list[tuple[object, ...]]:
    return [
        (i.kind, i.start, i.end, str(i.start.tz), i.points, i.value, type(i.points), type(i.value))
        for i in issues
    ]


def _same(a: list[DataQualityIssue], b: list[DataQualityIssue]) -> None:
    fa, fb = _fields(a), _fields(b)
    assert len(fa) == len(fb), (fa, fb)
    for x, y in zip(fa, fb, strict=True):
        assert x[:5] == y[:5], (x, y)
        assert x[6:] == y[6:], (x, y)
        xv, yv = float(x[5]), float(y[5])  # type: ignore[arg-type]
        assert xv == yv or (math.isnan(xv) and math.isnan(yv)), (x, y)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", None])
def test_the_fast_version_matches_the_reference_on_random_series(tz: str | None) -> None:
    rng = np.random.default_rng(18 + (tz or "").__len__())
    found = {"collection_gap": 0, "stuck_value": 0, "counter_reset": 0}
    changes = 0
    for case in range(400):
        series = _random_series(rng, tz)
        kwargs = {}
        if case % 3 == 1:
            kwargs = {"gap_steps": int(rng.integers(1, 15)), "stuck_min_points": int(rng.integers(2, 12))}
        old = _ref_find_data_quality(series, **kwargs)
        _same(find_data_quality(series, **kwargs), old)
        for i in old:
            found[i.kind] += 1
        assert sampling_step(series.index) == _ref_sampling_step(series.index)  # type: ignore[arg-type]
        if len(series):
            lo, hi = series.index[0], series.index[-1]
            for _ in range(3):
                start = lo + (hi - lo) * float(rng.random())
                end = start + pd.Timedelta(minutes=int(rng.integers(0, 120)))
                before = start - pd.Timedelta(minutes=QUALITY_SLACK_MINUTES)
                assert unusual_gap_steps(series, before) == _ref_unusual_gap_steps(series, before)
                new_changes = metric_quality_changes("m", series, start, end, group="g")
                assert new_changes == _ref_metric_quality_changes("m", series, start, end, group="g")
                changes += len(new_changes)
        else:
            start = pd.Timestamp("2024-05-01 12:00", tz=tz)
            assert unusual_gap_steps(series, start) == _ref_unusual_gap_steps(series, start)
            assert metric_quality_changes("m", series, start, start) == _ref_metric_quality_changes(
                "m", series, start, start
            )
    # the random series exercise every kind (a generator that found nothing would prove nothing)
    assert min(found.values()) >= 10, found
    assert changes >= 50


def test_the_tick_shape_matches_the_reference() -> None:
    """As services.incidents._quality calls it: a day before the incident and the incident window, a
    pandas Series on a UTC index, for minute and 5-minute metrics."""
    rng = np.random.default_rng(7)
    for freq, n in (("1min", 1440 + 75), ("5min", 288 + 15)):
        idx = pd.date_range("2024-05-01", periods=n, freq=freq, tz="UTC")
        for _ in range(30):
            series = pd.Series((100 + 10 * rng.normal(size=n)).round(1), index=idx, name="value")
            a = int(rng.integers(0, n - 50))
            series.iloc[a : a + int(rng.integers(1, 30))] = series.iloc[a]
            series = series.drop(idx[int(rng.integers(0, n - 40)) :][: int(rng.integers(0, 40))])
            start, end = idx[-15 if freq == "5min" else -75], idx[-1]
            _same(find_data_quality(series), _ref_find_data_quality(series))
            assert metric_quality_changes("m", series, start, end) == _ref_metric_quality_changes(
                "m", series, start, end
            )


def test_non_series_input_matches_the_reference() -> None:
    """``metric_quality_changes`` / ``unusual_gap_steps`` accept anything pd.Series takes."""
    idx = pd.date_range("2024-05-01", periods=200, freq="1min", tz="UTC")
    data = dict(zip(idx.delete(list(range(50, 70))), np.arange(180.0), strict=True))
    start = idx[100]
    assert unusual_gap_steps(data, start) == _ref_unusual_gap_steps(data, start) == 21
    assert metric_quality_changes("m", data, idx[60], idx[80]) == _ref_metric_quality_changes(
        "m", data, idx[60], idx[80]
    )
    assert issues_between([], start, start) == []


@pytest.mark.parametrize("naive_index", [True, False])
def test_a_bound_of_the_other_timezone_kind_is_refused_as_before(naive_index: bool) -> None:
    """A tz-aware bound on a naive series (or the reverse) is a TypeError, as pandas' comparison was."""
    idx = pd.date_range("2024-05-01", periods=50, freq="1min", tz=None if naive_index else "UTC")
    series = pd.Series(np.arange(50.0), index=idx)
    bound = pd.Timestamp("2024-05-01 00:30", tz="UTC" if naive_index else None)
    with pytest.raises(TypeError):
        _ref_unusual_gap_steps(series, bound)
    with pytest.raises(TypeError, match="cannot compare"):
        unusual_gap_steps(series, bound)
    with pytest.raises(TypeError, match="cannot compare"):
        metric_quality_changes("m", series, bound, bound)


def test_a_reset_to_exactly_the_share_matches_the_reference() -> None:
    """A counter falling to exactly ``reset_share`` of the value before is a reset (``<=``)."""
    idx = pd.date_range("2024-05-01", periods=200, freq="1min", tz="UTC")
    values = np.r_[np.arange(1.0, 101.0), np.arange(10.0, 110.0)]  # 100 -> 10: 0.1 x 100
    series = pd.Series(values, index=idx)
    old = _ref_find_data_quality(series)
    assert [(i.kind, i.start, i.value) for i in old] == [("counter_reset", idx[100], 10.0)]
    _same(find_data_quality(series), old)

"""Data-quality anomalies: the collection broke, not the system it measures.

Three kinds, found on a metric's own series (no detector, no labels):

* ``collection_gap`` — points missing: a hole in the timestamps longer than ``gap_steps`` sampling
  steps, or a run of at least ``gap_steps`` missing (NaN) values;
* ``stuck_value`` — the same reading repeated for longer than the metric's own history makes
  plausible (a run of identical values whose probability, at the series' rate of exact repeats, is
  below ``stuck_p``; at least ``stuck_min_points`` points) where the metric normally varies. A run at
  exactly 0 is not stuck: a count at 0 for hours is an outage, which detection must keep;
* ``counter_reset`` — a metric that only ever rises (a cumulative counter: at least 99 % of its steps
  are not down) falls back towards 0 (below ``reset_share`` of the value before).

:func:`find_data_quality` returns the issues; :mod:`telewatch.incidents.types` turns a metric's issues
that overlap an incident into :class:`~telewatch.incidents.types.MetricChange` s of direction ``gap``,
``stuck`` or ``reset``, which the shipped rules type as "Collection gap", "Stuck value" and "Counter
reset" instead of a latency degradation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

QualityKind = Literal["collection_gap", "stuck_value", "counter_reset"]
#: Kind → the direction of the :class:`~telewatch.incidents.types.MetricChange` it becomes.
QUALITY_DIRECTIONS: dict[str, str] = {
    "collection_gap": "gap",
    "stuck_value": "stuck",
    "counter_reset": "reset",
}


@dataclass(frozen=True, slots=True)
class DataQualityIssue:
    """One data-quality anomaly of a series: ``[start, end]`` (timestamps, inclusive), how many
    points it spans (missing points for a gap) and the value involved (the stuck value, the value
    after a reset; NaN for a gap)."""

    kind: QualityKind
    start: pd.Timestamp
    end: pd.Timestamp
    points: int
    value: float = math.nan


def sampling_step(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The series' usual step: the median difference between consecutive timestamps."""
    if len(index) < 2:
        return None
    return pd.Timedelta(_median_step(_ns(index)), unit="ns")


def _ns(index: object) -> np.ndarray:
    """The index's timestamps as int64 nanoseconds since the epoch (UTC)."""
    dti = index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)  # type: ignore[arg-type]
    return dti.asi8 if dti.unit == "ns" else dti.as_unit("ns").asi8


def _median_step(ns: np.ndarray) -> int:
    """:func:`sampling_step` in nanoseconds, of at least two timestamps."""
    return int(np.median(np.diff(ns)))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[start, stop)`` of each run of True (two int arrays)."""
    padded = np.zeros(mask.size + 2, dtype=np.int8)
    padded[1:-1] = mask
    edges = np.flatnonzero(np.diff(padded))
    return edges[::2], edges[1::2]


def find_data_quality(
    series: pd.Series,
    *,
    gap_steps: int = 3,
    stuck_min_points: int = 10,
    stuck_p: float = 1e-6,
    reset_share: float = 0.1,
) -> list[DataQualityIssue]:
    """The data-quality anomalies of ``series`` (a DatetimeIndex, NaN = missing), in time order.

    >>> idx = pd.date_range("2024-01-01", periods=300, freq="1min", tz="UTC")
    >>> x = pd.Series(np.random.default_rng(0).normal(50, 5, 300), index=idx)
    >>> x.iloc[100:110] = np.nan          # 10 missing minutes
    >>> x.iloc[110:140] = 47.25           # then 30 identical readings
    >>> [(i.kind, i.points) for i in find_data_quality(x)]
    [('collection_gap', 10), ('stuck_value', 30)]
    """
    if len(series) < 2:
        return []
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    return _find(
        index, _ns(index), series.to_numpy(dtype="float64"), gap_steps, stuck_min_points, stuck_p, reset_share
    )


def _find(
    index: pd.DatetimeIndex,
    ns: np.ndarray,
    values: np.ndarray,
    gap_steps: int = 3,
    stuck_min_points: int = 10,
    stuck_p: float = 1e-6,
    reset_share: float = 0.1,
    step_ns: int | None = None,
) -> list[DataQualityIssue]:
    """:func:`find_data_quality` on the series' index, its int64 ns timestamps and float values (at
    least two points; ``step_ns``: their :func:`sampling_step` in ns if known): plain numpy;
    Timestamps are made only for the issues found."""
    issues: list[DataQualityIssue] = []
    diffs = np.diff(ns)
    if step_ns is None:
        step_ns = int(np.median(diffs))
    # 1. holes in the timestamps
    if step_ns > 0:
        holes = np.flatnonzero(diffs > gap_steps * step_ns)
        if holes.size:
            step = pd.Timedelta(step_ns, unit="ns")
            for k in holes.tolist():
                missing = round(float(diffs[k]) / step_ns) - 1
                issues.append(
                    DataQualityIssue(
                        "collection_gap", index[k] + step, index[k + 1] - step, missing, math.nan
                    )
                )
    # 2. runs of missing values
    nan = np.isnan(values)
    if nan.any():
        starts, stops = _runs(nan)
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            if stop - start >= gap_steps:
                issues.append(DataQualityIssue("collection_gap", index[start], index[stop - 1], stop - start))
    finite = np.isfinite(values)
    pos = np.flatnonzero(finite)  # the finite points' positions in the index
    v = values if pos.size == values.size else values[finite]
    if v.size >= 3:
        d = np.diff(v)
        # 3. stuck values: runs of exact repeats far longer than the series' own repeat rate allows
        repeat = d == 0.0
        rate = np.count_nonzero(repeat) / repeat.size  # = float(repeat.mean()), exactly
        if rate < 0.5:  # the metric normally varies
            longest_ok = (
                stuck_min_points
                if rate == 0.0
                else max(stuck_min_points, math.ceil(math.log(stuck_p) / math.log(rate)) + 1)
            )
            if rate > 0.0:
                starts, stops = _runs(repeat)
                points = stops - starts + 1  # k repeats = k + 1 identical readings
                hit = np.flatnonzero((points >= longest_ok) & (v[starts] != 0.0))
                for r in hit.tolist():
                    start, stop = int(starts[r]), int(stops[r])
                    issues.append(
                        DataQualityIssue(
                            "stuck_value",
                            index[pos[start]],
                            index[pos[stop]],
                            int(points[r]),
                            float(v[start]),
                        )
                    )
        # 4. counter resets: a counter that only rises falls back towards zero
        if np.count_nonzero(d > 0) / d.size > 0.5 and np.count_nonzero(d >= 0) / d.size >= 0.99:
            ks = np.flatnonzero(d < 0)
            for k in ks[v[ks + 1] <= reset_share * v[ks]].tolist():
                at = index[pos[k + 1]]
                issues.append(DataQualityIssue("counter_reset", at, at, 1, float(v[k + 1])))
    if len(issues) > 1:
        issues.sort(key=lambda i: (i.start, i.kind))
    return issues


def issues_between(
    issues: list[DataQualityIssue],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    slack: pd.Timedelta | None = None,
) -> list[DataQualityIssue]:
    """The issues overlapping ``[start - slack, end + slack]`` (default slack: none)."""
    pad = slack if slack is not None else pd.Timedelta(0)
    lo, hi = pd.Timestamp(start) - pad, pd.Timestamp(end) + pad
    return [i for i in issues if i.start <= hi and i.end >= lo]

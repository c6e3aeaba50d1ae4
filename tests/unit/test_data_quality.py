"""Data-quality anomalies (issue 19, item 8): collection gap, stuck value, counter reset — found on
planted data and typed as such, not as a latency degradation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.incidents.data_quality import find_data_quality
from telewatch.incidents.types import MetricChange, classify, load_rules, quality_changes

IDX = pd.date_range("2024-05-01", periods=3 * 1440, freq="1min", tz="UTC")


def _latency(seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    day = np.sin(2 * np.pi * np.arange(IDX.size) / 1440)
    return pd.Series(120 + 30 * day + 8 * rng.normal(size=IDX.size), index=IDX).round(1)


def test_gap_then_identical_values_is_a_collection_problem_not_a_latency_degradation() -> None:
    """The RedLab case: a collection gap followed by 14 minutes of identical values."""
    series = _latency()
    series = series.drop(series.index[2000:2030])  # 30 minutes without points
    series.iloc[2000:2014] = series.iloc[1999]  # then 14 identical readings (forward-filled)
    issues = find_data_quality(series)
    # the stuck run starts at the last reading before the gap (15 identical values in all)
    assert [(i.kind, i.points) for i in issues] == [("stuck_value", 15), ("collection_gap", 30)]
    gap = issues[1]
    assert (gap.start, gap.end) == (IDX[2000], IDX[2029])
    rules = load_rules()
    start, end = IDX[2030], IDX[2045]
    changes = quality_changes("web_response_ms", issues, start, end, slack=pd.Timedelta(minutes=5))
    assert changes == [MetricChange("web_response_ms", "gap"), MetricChange("web_response_ms", "stuck")]
    assert classify(rules, [*changes, MetricChange("apdex", "down")]).name == "collection_gap"  # type: ignore[union-attr]
    # without the data-quality view the same incident was a latency degradation
    assert classify(rules, [MetricChange("web_response_ms", "up")]).name == "latency_degradation"  # type: ignore[union-attr]


def test_missing_values_count_as_a_gap_and_short_holes_do_not() -> None:
    series = _latency(1)
    series.iloc[500:502] = np.nan  # two missing points: ordinary
    series.iloc[900:960] = np.nan  # an hour
    kinds = [(i.kind, i.points, i.start) for i in find_data_quality(series)]
    assert kinds == [("collection_gap", 60, IDX[900])]


def test_stuck_value_needs_a_run_the_metric_never_shows_and_zero_is_an_outage() -> None:
    rng = np.random.default_rng(2)
    # a small integer gauge repeats itself often: a 6-point repeat is ordinary there
    gauge = pd.Series(rng.integers(0, 3, IDX.size).astype(float) + 10, index=IDX)
    assert not [i for i in find_data_quality(gauge) if i.kind == "stuck_value"]
    throughput = pd.Series(np.round(1150 + 60 * rng.normal(size=IDX.size)), index=IDX)
    throughput.iloc[1000:1120] = 0.0  # a 2-hour outage: zero traffic is not a stuck collector
    throughput.iloc[2000:2040] = 1187.0  # 40 identical readings of a value that always varies
    issues = find_data_quality(throughput)
    assert [(i.kind, i.start, i.points, i.value) for i in issues] == [("stuck_value", IDX[2000], 40, 1187.0)]
    assert classify(load_rules(), [MetricChange("throughput_rpm", "stuck")]).name == "stuck_value"  # type: ignore[union-attr]


def test_counter_reset() -> None:
    rng = np.random.default_rng(3)
    counter = np.cumsum(rng.poisson(40, IDX.size)).astype(float)
    counter[3000:] -= counter[2999]  # the process restarted: the counter starts again from 0
    issues = find_data_quality(pd.Series(counter, index=IDX))
    assert [(i.kind, i.start) for i in issues] == [("counter_reset", IDX[3000])]
    # a gauge that goes up and down has no resets, however deep its dips
    gauge = pd.Series(np.abs(np.sin(np.arange(IDX.size) / 50.0)) * 100, index=IDX)
    assert not [i for i in find_data_quality(gauge) if i.kind == "counter_reset"]
    changes = quality_changes("requests_total", issues, IDX[2990], IDX[3010])
    assert classify(load_rules(), changes).name == "counter_reset"  # type: ignore[union-attr]


def test_any_direction_does_not_match_a_data_quality_change() -> None:
    from telewatch.incidents.types import Condition

    assert not Condition(metric="*").matches(MetricChange("error_rate", "gap"))
    assert Condition(metric="*", direction="gap").matches(MetricChange("error_rate", "gap"))
    rules = load_rules()
    # an error-rate gap is not an error burst
    assert classify(rules, [MetricChange("error_rate", "gap")]).name == "collection_gap"  # type: ignore[union-attr]

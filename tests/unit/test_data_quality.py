"""Data-quality anomalies (issue 19, item 8): collection gap, stuck value, counter reset — found on
planted data and typed as such, not as a latency degradation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.incidents.data_quality import find_data_quality
from telewatch.incidents.types import MetricChange, classify, load_rules, quality_changes
from telewatch.services.incidents import list_incidents, update_incidents
from telewatch.store import repo
from telewatch.store.db import Store

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


def _incident_type(store: Store, web: pd.Series, anomaly: tuple[pd.Timestamp, pd.Timestamp]) -> str | None:
    """Store web_response_ms (``web``) and apdex, one anomaly of web_response_ms over ``anomaly``
    (above its usual value, as detection stores it), group incidents and return the one incident's type."""
    rng = np.random.default_rng(9)
    apdex = pd.Series(np.clip(0.95 + 0.01 * rng.normal(size=IDX.size), 0, 1), index=IDX).round(4)
    cur = store.cursor()
    ids = {}
    for name, unit, values in (("web_response_ms", "ms", web), ("apdex", "score", apdex)):
        ids[name] = repo.upsert_metric(cur, name=name, unit=unit, group="web")
        repo.write_points(cur, ids[name], values)
    start, end = anomaly
    cur.execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected,"
        " lower, upper) VALUES (?, 'novelty', ?, ?, ?, 9.0, ?, 120.0, 100.0, 140.0)",
        [
            ids["web_response_ms"],
            start.tz_localize(None),
            end.tz_localize(None),
            start.tz_localize(None),
            float(web.loc[start]),
        ],
    )
    update_incidents(store, now=IDX[-1])
    (incident,) = list_incidents(store)
    return incident.type


def test_an_incident_of_a_gap_then_stuck_values_is_typed_as_a_collection_problem(store: Store) -> None:
    """Wired into incident typing: the RedLab case (a collection gap, then 14 identical readings at a
    high value) is a collection gap, not a latency degradation."""
    series = _latency()
    t0 = 2 * 1440 + 600
    series.iloc[t0 : t0 + 14] = 260.0  # 14 identical readings, twice the usual
    series = series.drop(series.index[t0 - 30 : t0])  # after 30 minutes without points
    assert _incident_type(store, series, (IDX[t0], IDX[t0 + 13])) == "collection_gap"


def test_the_same_rise_with_no_collection_problem_stays_a_latency_degradation(store: Store) -> None:
    series = _latency()
    t0 = 2 * 1440 + 600
    series.iloc[t0 : t0 + 14] = 260.0 + np.arange(14)  # a real rise: the values vary
    assert _incident_type(store, series, (IDX[t0], IDX[t0 + 13])) == "latency_degradation"


def test_a_metric_that_is_often_missing_does_not_make_every_incident_a_collection_gap() -> None:
    """An error share written only when there were errors: a third of its minutes missing, gaps of up
    to ~10 minutes at night. A burst with a 4-minute gap beside it is an error burst, not a
    collection gap; a gap longer than any the day saw still is one."""
    from telewatch.incidents.types import metric_quality_changes

    rng = np.random.default_rng(5)
    idx = pd.date_range("2024-05-14", periods=1440, freq="1min", tz="UTC")
    values = pd.Series(np.abs(rng.normal(0.0003, 0.0001, idx.size)), index=idx)
    kept = rng.random(idx.size) > 0.33
    kept[200:210] = False  # a 10-minute hole at night
    burst = idx[1400]
    kept[1395:1399] = False  # four minutes missing just before the burst
    kept[1399:1404] = True
    values[1399:1404] = 0.06
    series = values[kept]
    assert metric_quality_changes("error", series, burst, burst + pd.Timedelta(minutes=3)) == []
    longer = series.drop(series.index[(series.index >= idx[1380]) & (series.index < idx[1399])])
    assert [c.direction for c in metric_quality_changes("error", longer, burst, burst)] == ["gap"]

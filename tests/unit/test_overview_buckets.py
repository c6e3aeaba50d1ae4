"""The overview's 24-hour sparklines: buckets no finer than a metric's own step, so that an hourly metric
draws one line; short gaps bridged, real gaps (longer than a few steps) kept as breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.services import overview
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.web.routes import sparkline

END = pd.Timestamp("2024-05-03 00:00", tz="UTC")


def _metric(store: Store, name: str, freq: str, periods: int, drop: list[int] | None = None) -> int:
    idx = pd.date_range(end=END, periods=periods, freq=freq)
    values = pd.Series(100 + 10 * np.sin(np.arange(periods) / 5), index=idx)
    if drop:
        values = values.drop(values.index[drop])
    with store.transaction(series=True) as tx:
        mid = repo.upsert_metric(tx, name=name)
        repo.write_points(tx, mid, values)
    return mid


def _spark(store: Store, metric_id: int) -> list[float | None]:
    rows = {r.metric.id: r for r in overview.summarize_metrics(store)}
    return rows[metric_id].spark


def test_an_hourly_metric_is_one_connected_line(store: Store) -> None:
    mid = _metric(store, "nab_like_hourly", "1h", 72)
    spark = _spark(store, mid)
    assert len(spark) == 24  # one bucket per hour, not 48 half-empty ones
    assert None not in spark
    svg = sparkline(spark)
    assert svg.count("<polyline") == 1
    assert svg.count("<circle") == 0
    # (the old fixed 30-minute buckets left every other bucket empty: 24 one-point "lines")
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 24


def test_a_missing_hour_is_bridged_but_a_six_hour_hole_breaks_the_line(store: Store) -> None:
    one = _metric(store, "one_missing", "1h", 72, drop=[60])
    hole = _metric(store, "hole", "1h", 72, drop=list(range(55, 61)))
    bridged = _spark(store, one)
    assert None not in bridged
    assert sparkline(bridged).count("<polyline") == 1
    broken = _spark(store, hole)
    assert broken.count(None) == 6
    assert sparkline(broken).count("<polyline") == 2


def test_minute_and_half_hour_metrics_keep_48_buckets_and_real_gaps(store: Store) -> None:
    minute = _metric(store, "per_minute", "1min", 2 * 1440, drop=list(range(2000, 2180)))  # 3 hours missing
    half = _metric(store, "half_hourly", "30min", 200)
    spark = _spark(store, minute)
    assert len(spark) == 48
    assert 5 <= spark.count(None) <= 7  # a 3-hour hole in 30-minute buckets stays a gap
    assert sparkline(spark).count("<polyline") == 2
    half_spark = _spark(store, half)
    assert len(half_spark) == 48
    # the window's first bucket is filled too (the last point ends the last bucket)
    assert None not in half_spark
    assert sparkline(half_spark).count("<polyline") == 1


def test_the_last_bucket_holds_the_last_points(store: Store) -> None:
    idx = pd.date_range(end=END, periods=3 * 24, freq="1h")
    values = pd.Series(1.0, index=idx)
    values.iloc[-1] = 25.0
    with store.transaction(series=True) as tx:
        mid = repo.upsert_metric(tx, name="spike_at_end")
        repo.write_points(tx, mid, values)
    spark = _spark(store, mid)
    assert spark[-1] == 25.0
    assert spark[:-1] == [1.0] * 23
